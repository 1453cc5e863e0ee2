"""Registers benchmark: the hazard views and repeat detection on a database
the size of a big site's few years of records.

Builds 200 units (a centre, 10 departments, 189 teams), 10,000 people (one
department with 1,000 of them), 1,000,000 checklist answers, 100,000 hazards
(most closed, some open, some overdue) and 5,000 incidents. Then, through the
engine as a phone would send them, times with their targets (p95 under 50 ms):

1. `/hazards` for the supervisor of the 1,000-person department (pages 1-5);
2. `/overdue` for the same supervisor, and for a safety officer (every unit);
3. a new report's last step (the severity press), which runs repeat
   detection against the unit's hazards and files the report or offers the
   match.

With --db postgresql://… (or `--db postgresql`: a throwaway cluster for the
run) the same again on a fresh PostgreSQL database after SQLite's, and each
figure side by side (target: PostgreSQL's p95 at most 1.5 times SQLite's).

Run: python -m bench.registers [--quick] [--db postgresql[://…]]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import App
from bot.clock import FakeClock, iso
from bot.hazard_rules import hazard_number
from bot.model import Inbound, InboundKind
from bot.store import copy as db_copy
from bot.store import people

CHANNEL = "bench"
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
TARGET_MS = 50.0
PG_TARGET_RATIO = 1.5
WORDS = [
    "消防通道堆放杂物",
    "灭火器压力不足",
    "配电箱门未关闭",
    "电线老化破损",
    "应急灯不亮",
    "楼梯扶手松动",
    "燃气软管老化",
    "叉车刹车异常",
    "宿舍私拉电线",
    "安全出口指示灯损坏",
]
CATEGORIES = ["fire", "electrical", "equipment", "housekeeping", "kitchen", "dormitory", "other"]
STATUSES = ["open", "assigned", "in_progress", "submitted"]


def seed(conn: sqlite3.Connection, scale: float) -> dict[str, int]:
    """Everything in one transaction with executemany: fast, and the figures
    are about reading it, not writing it."""
    rng = random.Random(7)
    now = iso(NOW)
    conn.execute(
        "INSERT INTO units (id, parent_id, name, path, timezone, created_at)"
        " VALUES (1, NULL, '中心', '中心', 'Asia/Shanghai', ?)",
        (now,),
    )
    units = [(1, None)]
    for d in range(10):
        dept = 2 + d
        conn.execute(
            "INSERT INTO units (id, parent_id, name, path, created_at) VALUES (?, 1, ?, ?, ?)",
            (dept, f"部门{d}", f"中心/部门{d}", now),
        )
        units.append((dept, 1))
    next_id = 12
    teams: dict[int, list[int]] = {}
    while next_id <= 200:
        dept = 2 + (next_id % 10)
        conn.execute(
            "INSERT INTO units (id, parent_id, name, path, created_at) VALUES (?, ?, ?, ?, ?)",
            (next_id, dept, f"班{next_id}", f"中心/部门{dept - 2}/班{next_id}", now),
        )
        teams.setdefault(dept, []).append(next_id)
        units.append((next_id, dept))
        next_id += 1
    # 1,000 people in 部门0 (id 2) and its teams; 9,000 elsewhere.
    staff_count = max(2000, int(10_000 * scale))
    staff_rows = []
    big = [2, *teams[2]]
    others = [u for u, _ in units if u not in big]
    for n in range(1, staff_count + 1):
        unit = big[n % len(big)] if n <= 1000 else others[n % len(others)]
        roles = "staff"
        if n == 1:
            unit, roles = 2, "supervisor"
        elif n == 3:
            unit, roles = 1, "safety_officer"
        staff_rows.append((n, f"员工{n}", f"+86138{n:08d}", unit, roles, "zh-CN", now, now))
    conn.executemany(
        "INSERT INTO staff (id, name, phone, unit_id, roles, language, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        staff_rows,
    )
    unit_of = {row[0]: row[3] for row in staff_rows}

    hazard_count = int(100_000 * scale)
    hazard_rows = []
    per_year: dict[int, int] = {}
    for n in range(1, hazard_count + 1):
        reporter = rng.randint(1, staff_count)
        created = NOW - timedelta(minutes=rng.randint(1, 3 * 365 * 24 * 60))
        per_year[created.year] = per_year.get(created.year, 0) + 1
        closed = rng.random() < 0.85
        status = "closed" if closed else rng.choice(STATUSES)
        deadline = created + timedelta(days=rng.choice([0, 1, 3, 7]))
        hazard_rows.append(
            (
                n,
                hazard_number(created.year, per_year[created.year]),
                unit_of[reporter],
                reporter,
                "report",
                rng.choice(WORDS) + f"（{n % 97} 号位置）",
                "general",
                status,
                iso(deadline),
                iso(created),
                rng.choice(CATEGORIES),
                f"位置{n % 50}",
                None if status == "open" else rng.randint(1, staff_count),
                iso(deadline) if closed else None,
            )
        )
    conn.executemany(
        "INSERT INTO hazards (id, number, unit_id, reported_by, source, description, severity,"
        " status, deadline_at, created_at, category, place, responsible_id, closed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        hazard_rows,
    )

    conn.executemany(
        "INSERT INTO register_counters (register, year, last) VALUES ('YH', ?, ?)",
        per_year.items(),
    )

    answers = int(1_000_000 * scale)
    runs = answers // 6
    conn.executemany(
        "INSERT INTO checklist_runs (id, checklist, staff_id, unit_id, local_date, started_at,"
        " completed_at) VALUES (?, 'preshift', ?, ?, ?, ?, ?)",
        (
            (
                n,
                (n % staff_count) + 1,
                unit_of[(n % staff_count) + 1],
                (NOW - timedelta(days=n // staff_count)).date().isoformat(),
                now,
                now,
            )
            for n in range(1, runs + 1)
        ),
    )
    items = ["equipment", "measures", "tools", "work_area", "ppe", "procedures"]
    conn.executemany(
        "INSERT INTO checklist_answers (run_id, item, answer, answered_at) VALUES (?, ?, ?, ?)",
        ((run, item, "ok", now) for run in range(1, runs + 1) for item in items),
    )

    incident_count = int(5_000 * scale)
    conn.executemany(
        "INSERT INTO incidents (number, unit_id, reported_by, occurred_at, place, kind,"
        " description, hurt_count, report_due_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                f"SG-{2026 - n % 3}-{n:04d}",
                unit_of[(n * 7) % staff_count + 1],
                (n * 7) % staff_count + 1,
                now,
                "车间",
                "near_miss",
                "险些被叉车撞到",
                0,
                iso(NOW + timedelta(days=15)),
                now,
            )
            for n in range(1, incident_count + 1)
        ),
    )
    conn.execute(
        "INSERT INTO channel_identities (channel, user_id, staff_id) VALUES (?, 'sup', 1)",
        (CHANNEL,),
    )
    conn.execute(
        "INSERT INTO channel_identities (channel, user_id, staff_id) VALUES (?, 'worker', 2)",
        (CHANNEL,),
    )
    conn.execute(
        "INSERT INTO channel_identities (channel, user_id, staff_id) VALUES (?, 'officer', 3)",
        (CHANNEL,),
    )
    conn.execute("ANALYZE")
    return {
        "units": len(units),
        "staff": staff_count,
        "answers": runs * 6,
        "hazards": hazard_count,
        "incidents": incident_count,
        "open": sum(1 for row in hazard_rows if row[7] != "closed"),
    }


class Phone:
    def __init__(self, app: App, user: str) -> None:
        self.app = app
        self.user = user
        self.events = 0

    async def send(self, kind: InboundKind, text: str) -> float:
        self.events += 1
        started = time.perf_counter()
        await self.app.engine.handle(
            Inbound(
                channel=CHANNEL,
                user_id=self.user,
                event_id=f"{self.user}:{self.events}",
                kind=kind,
                text=text,
            )
        )
        return (time.perf_counter() - started) * 1000

    async def button(self, value: str) -> float:
        version = await self.app.db.read(
            lambda c: c.execute(
                "SELECT version FROM conversations WHERE staff_id = ?",
                (people.staff_by_identity(c, CHANNEL, self.user).id,),  # type: ignore[union-attr]
            ).fetchone()[0]
        )
        return await self.send(InboundKind.ACTION, f"v{version}:{value}")


async def show(app: App, user: str, what: str) -> None:
    """Print the start of the last reply: proof the figures are of real work."""
    row = await app.db.read(
        lambda c: c.execute(
            "SELECT text FROM outbox WHERE channel = ? AND address = ? ORDER BY id DESC LIMIT 1",
            (CHANNEL, user),
        ).fetchone()
    )
    lines = str(row[0]).splitlines()
    print(f"  {what} -> " + " | ".join(lines[:3]) + f" ... ({len(lines)} lines)")


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) > 1 else samples[0]


async def timed(rounds: int, step: Callable[[int], Awaitable[float]]) -> list[float]:
    return [await step(n) for n in range(rounds)]


async def seeded(
    target: Path | str, folder: Path, scale: float
) -> tuple[App, dict[str, int], float]:
    """An App on `target` holding seed's data (with the seconds it took); on
    PostgreSQL, its identity sequences set past seed's explicit ids, as
    `frontline db copy` leaves them."""
    app = await App.open(target, {}, clock=FakeClock(NOW), media_dir=folder / "media")
    started = time.perf_counter()
    counts = await app.db.transaction(lambda conn: seed(conn, scale))
    if isinstance(target, str):
        await asyncio.to_thread(db_copy.sequences_past, target)
    return app, counts, time.perf_counter() - started


async def run(scale: float, rounds: int, target: str | None = None) -> dict[str, float]:
    """Each figure's p95 (ms) by its name, on a SQLite file or at `target`."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        app, counts, seconds = await seeded(
            target or Path(folder) / "registers.db", Path(folder), scale
        )
        print(
            f"seeded {counts['units']} units, {counts['staff']:,} people,"
            f" {counts['answers']:,} checklist answers, {counts['hazards']:,} hazards"
            f" ({counts['open']:,} open), {counts['incidents']:,} incidents"
            f" in {seconds:.1f} s"
        )
        supervisor, worker = Phone(app, "sup"), Phone(app, "worker")
        officer = Phone(app, "officer")
        figures = {}

        hazards_ms = await timed(
            rounds, lambda n: supervisor.send(InboundKind.COMMAND, f"/hazards {n % 5 + 1}")
        )
        await show(app, "sup", "/hazards")
        overdue_ms = await timed(
            rounds, lambda n: supervisor.send(InboundKind.COMMAND, f"/overdue {n % 3 + 1}")
        )
        await show(app, "sup", "/overdue")
        officer_ms = await timed(
            rounds, lambda n: officer.send(InboundKind.COMMAND, f"/overdue {n % 3 + 1}")
        )
        await show(app, "officer", "/overdue")

        async def report(n: int) -> float:
            await worker.send(InboundKind.COMMAND, "/hazard")
            await worker.send(InboundKind.TEXT, WORDS[n % len(WORDS)] + f"（{n % 97} 号位置）")
            await worker.send(InboundKind.TEXT, f"位置{n % 50}")
            await worker.button("done")
            await worker.button(CATEGORIES[n % len(CATEGORIES)])
            elapsed = await worker.button("general")  # repeat detection, then file or offer
            await worker.send(InboundKind.COMMAND, "/cancel")
            return elapsed

        report_ms = await timed(rounds, report)
        for name, samples in (
            ("/hazards (supervisor of 1,000 people)", hazards_ms),
            ("/overdue (same supervisor)", overdue_ms),
            ("/overdue (safety officer: every unit)", officer_ms),
            ("new report: repeat detection + filing", report_ms),
        ):
            figure = p95(samples)
            figures[name] = figure
            print(
                f"{name}: p50 {statistics.median(samples):.1f} ms, p95 {figure:.1f} ms"
                f" (target < {TARGET_MS:.0f} ms, {figure / TARGET_MS:.2f} of it), n={len(samples)}"
            )
        await app.close()
    return figures


def side_by_side(sqlite: dict[str, float], postgresql: dict[str, float]) -> None:
    """Each figure on both engines and PostgreSQL's ratio to SQLite's."""
    print()
    for name, figure in sqlite.items():
        ratio = postgresql[name] / figure
        print(
            f"{name}: sqlite p95 {figure:.1f} ms, postgresql p95 {postgresql[name]:.1f} ms,"
            f" ratio {ratio:.2f} (target <= {PG_TARGET_RATIO:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, fewer rounds")
    parser.add_argument(
        "--db",
        metavar="postgresql[://…]",
        help="then on PostgreSQL too: this server (its user creates databases), or"
        " `postgresql`: a throwaway cluster for the run",
    )
    args = parser.parse_args()
    scale, rounds = (0.1, 30) if args.quick else (1.0, 200)
    figures = asyncio.run(run(scale, rounds))
    if not all(figure < TARGET_MS for figure in figures.values()):
        print("target missed", file=sys.stderr)
    if args.db:
        from bench import databases

        print(f"\nPostgreSQL ({args.db}):")
        with databases.server(args.db) as server, databases.fresh(server) as url:
            on_postgresql = asyncio.run(run(scale, rounds, url))
        side_by_side(figures, on_postgresql)
    sys.exit(0)


if __name__ == "__main__":
    main()
