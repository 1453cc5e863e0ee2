"""Schedules benchmark, three figures with their targets:

1. start-up with 100,000 pending reminders (open the database, plan, catch
   up): under 2 s;
2. 1,000 reminders due in the same second, fired by the running scheduler
   (APScheduler ticking on the wall clock): p99 lateness from due time to the
   committed outbox row under 1 s;
3. a notice to 10,000 people through the /notice conversation: every outbox
   row committed in under 2 s (the time of the final "send" press).

Run: python -m bench.schedules [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot import roster
from bot.app import App
from bot.clock import iso, parse_iso
from bot.engine import Visitor
from bot.model import Inbound, InboundKind
from bot.store import people, reminders
from bot.store.reminders import Reminder
from schedules.runner import Kind

CHANNEL = "bench"


def write_roster(path: Path, workers: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone", "unit", "roles", "employee_no"])
        writer.writerow(["管理员", "13700000000", "中心", "管理员", "A0"])
        for n in range(workers):
            writer.writerow([f"员工{n}", f"138{n:08d}", f"中心/部门{n % 20}", "员工", f"E{n}"])


def ping(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    """A bench kind: one outbox row for the admin."""
    admin = people.staff_by_id(visitor.conn, 1)
    assert admin is not None
    visitor.notify(admin, "shift.nudge", idempotency_key=f"ping:{reminder.id}")
    return True


async def startup(folder: Path, count: int) -> float:
    path = folder / "startup.db"
    app = await App.open(path, {})
    later = iso(datetime.now(UTC) + timedelta(days=30))
    now = iso(datetime.now(UTC))

    def fill(conn: sqlite3.Connection) -> None:
        for n in range(count):
            reminders.schedule(
                conn, kind="notice_reread", due_at=later, target={"notice": n}, key=f"n{n}", now=now
            )

    await app.db.transaction(fill)
    await app.close()
    started = time.perf_counter()
    app = await App.open(path, {})
    await app.scheduler.start()
    pending = await app.db.read(reminders.pending_count)
    elapsed = time.perf_counter() - started
    await app.scheduler.stop()
    await app.close()
    assert pending >= count, pending  # the planners add their own (the drill watch)
    return elapsed


async def burst(folder: Path, count: int) -> list[float]:
    path = folder / "burst.db"
    roster_file = folder / "burst.csv"
    write_roster(roster_file, 1)
    app = await App.open(path, {})
    await roster.import_roster_file(
        app.db,
        roster_file,
        deactivate_missing=False,
        default_language="zh-CN",
        now=datetime.now(UTC),
    )
    app.scheduler.kinds["bench_ping"] = Kind(ping)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)

    def fill(conn: sqlite3.Connection) -> None:
        for n in range(count):
            reminders.schedule(
                conn, kind="bench_ping", due_at=iso(due), target={}, key=f"p{n}", now=iso(due)
            )

    await app.db.transaction(fill)
    await app.scheduler.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = await app.db.read(reminders.pending_count)
        if left == 0:
            break
        await asyncio.sleep(0.05)
    await app.scheduler.stop()
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT created_at FROM outbox WHERE idempotency_key LIKE 'ping:%'"
        ).fetchall()
    )
    await app.close()
    assert len(rows) == count, len(rows)
    return sorted((parse_iso(row[0]) - due).total_seconds() for row in rows)


async def notice(folder: Path, count: int) -> tuple[float, int]:
    path = folder / "notice.db"
    roster_file = folder / "notice.csv"
    write_roster(roster_file, count)
    app = await App.open(path, {})
    await roster.import_roster_file(
        app.db,
        roster_file,
        deactivate_missing=False,
        default_language="zh-CN",
        now=datetime.now(UTC),
    )
    await app.db.transaction(
        lambda c: people.bind_identity(c, CHANNEL, "admin", 1, iso(datetime.now(UTC)))
    )
    events = iter(range(1_000_000))

    async def say(kind: InboundKind, text: str) -> float:
        started = time.perf_counter()
        await app.engine.handle(Inbound(CHANNEL, "admin", f"e{next(events)}", kind, text))
        return time.perf_counter() - started

    async def press(value: str) -> float:
        version = await app.db.read(
            lambda c: c.execute("SELECT version FROM conversations WHERE staff_id = 1").fetchone()[
                0
            ]
        )
        return await say(InboundKind.ACTION, f"v{version}:{value}")

    await say(InboundKind.COMMAND, "/notice")
    await press("all")
    await say(InboundKind.TEXT, "今晚 20:00 全员消防演练，请提前熟悉疏散路线。")
    await press("skip")
    elapsed = await press("send")
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM outbox WHERE idempotency_key LIKE 'notice:%'"
        ).fetchone()[0]
    )
    await app.close()
    return elapsed, int(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for CI")
    args = parser.parse_args()
    pending, due, recipients = (10_000, 200, 1_000) if args.quick else (100_000, 1_000, 10_000)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        start_seconds = asyncio.run(startup(base, pending))
        lateness = asyncio.run(burst(base, due))
        notice_seconds, rows = asyncio.run(notice(base, recipients))
    p50 = statistics.median(lateness)
    p99 = lateness[max(0, int(len(lateness) * 0.99) - 1)]
    print(
        f"start-up          {pending} pending reminders: {start_seconds:.2f} s"
        f"  ratio {2.0 / start_seconds:.1f} (target >= 1: under 2 s)"
    )
    print(
        f"burst             {due} due in one second: lateness p50 {p50:.3f} s,"
        f" p99 {p99:.3f} s, max {lateness[-1]:.3f} s"
        f"  ratio {1.0 / max(p99, 1e-3):.1f} (target >= 1: p99 under 1 s)"
    )
    print(
        f"notice            to everyone ({recipients} workers; not the sender): {rows} rows in"
        f" {notice_seconds:.2f} s  ratio {2.0 / notice_seconds:.1f} (target >= 1: under 2 s)"
    )
    return 0 if rows == recipients else 1  # the sender is not among the recipients


if __name__ == "__main__":
    sys.exit(main())
