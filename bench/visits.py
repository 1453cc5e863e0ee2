"""Home-visits benchmark, two figures:

1. 2,000 care workers each completing a visit through the engine: /visit,
   the client, check-in by location, three services, an observation with
   readings, check-out (confirmed: the visit is short on the bench's clock)
   with location and the no-gifts confirmation (16 events each, 8 workers
   typing at once). Prints events/s and p99.
2. A supervisor's `/visits` on 1,000,000 stored visits: p95 under 50 ms.

Run: python -m bench.visits [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import App
from bot.clock import FakeClock, iso
from bot.model import Inbound, InboundKind

CHANNEL = "bench"
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
HOME = (31.2304, 121.4737)
TARGET_VIEW_MS = 50.0


def seed_people(conn: sqlite3.Connection, workers: int) -> None:
    """A centre with 20 teams of care workers, a supervisor, one client per worker."""
    now = iso(NOW)
    conn.execute(
        "INSERT INTO units (id, name, path, timezone, created_at)"
        " VALUES (1, '长者服务中心', '长者服务中心', 'Asia/Shanghai', ?)",
        (now,),
    )
    conn.executemany(
        "INSERT INTO units (id, parent_id, name, path, created_at) VALUES (?, 1, ?, ?, ?)",
        ((team + 2, f"组{team}", f"长者服务中心/组{team}", now) for team in range(20)),
    )
    conn.execute(
        "INSERT INTO staff (id, name, phone, unit_id, roles, language, created_at, updated_at)"
        " VALUES (1, '主管', '+8613900000000', 1, 'supervisor', 'zh-CN', ?, ?)",
        (now, now),
    )
    conn.executemany(
        "INSERT INTO staff (id, name, phone, unit_id, roles, language, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'care_worker', 'zh-CN', ?, ?)",
        ((n + 2, f"护理员{n}", f"+86138{n:08d}", n % 20 + 2, now, now) for n in range(workers)),
    )
    conn.executemany(
        "INSERT INTO channel_identities (channel, user_id, staff_id) VALUES (?, ?, ?)",
        [(CHANNEL, "sup", 1)] + [(CHANNEL, f"w{n + 2}", n + 2) for n in range(workers)],
    )
    plan = json.dumps(["meal", "health_check", "cleaning"])
    conn.executemany(
        "INSERT INTO clients (id, number, name, address, lat, lon, unit_id, services,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                n + 1,
                f"K{n:06d}",
                f"老人{n}",
                f"幸福路 {n} 号",
                HOME[0] + (n % 100) * 0.001,
                HOME[1],
                n % 20 + 2,
                plan,
                now,
                now,
            )
            for n in range(workers)
        ),
    )
    conn.executemany(
        "INSERT INTO client_workers (client_id, staff_id) VALUES (?, ?)",
        ((n + 1, n + 2) for n in range(workers)),
    )


def script(worker: int) -> list[tuple[InboundKind, str, dict[str, object]]]:
    """One worker's visit. Each event moves the conversation on by one
    version, so buttons carry the version the bot showed."""
    client = worker - 1
    here = {"lat": HOME[0] + (client - 1) % 100 * 0.001 + 0.0002, "lon": HOME[1]}
    steps: list[tuple[InboundKind, str, dict[str, object]]] = [
        (InboundKind.COMMAND, "/visit", {}),
        (InboundKind.ACTION, f"c{client}", {}),
        (InboundKind.LOCATION, "", here),
        (InboundKind.ACTION, "services", {}),
        (InboundKind.ACTION, "s:meal", {}),
        (InboundKind.ACTION, "s:health_check", {}),
        (InboundKind.ACTION, "s:cleaning", {}),
        (InboundKind.ACTION, "done", {}),
        (InboundKind.ACTION, "observe", {}),
        (InboundKind.TEXT, "精神好，饮食正常，居家整洁", {}),
        (InboundKind.ACTION, "skip", {}),
        (InboundKind.TEXT, "血压 128/82 心率 70", {}),
        (InboundKind.ACTION, "checkout", {}),
        # The fake clock stands still: the visit is minutes old, so check-out asks first.
        (InboundKind.ACTION, "confirm", {}),
        (InboundKind.LOCATION, "", here),
        (InboundKind.ACTION, "confirm", {}),
    ]
    return [
        (kind, f"v{n}:{text}" if kind is InboundKind.ACTION else text, data)
        for n, (kind, text, data) in enumerate(steps)
    ]


async def visits_through_the_engine(workers: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock(NOW)
        app = await App.open(Path(folder) / "visits.db", {}, clock=clock)
        await app.db.transaction(lambda conn: seed_people(conn, workers))
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        gate = asyncio.Semaphore(concurrency)

        async def one(worker: int) -> None:
            async with gate:
                for number, (kind, text, data) in enumerate(script(worker)):
                    inbound = Inbound(CHANNEL, f"w{worker}", f"{worker}-{number}", kind, text, data)
                    started = time.perf_counter()
                    outcome = await app.engine.handle(inbound)
                    latencies.append(time.perf_counter() - started)
                    outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(n + 2) for n in range(workers)))
        elapsed = time.perf_counter() - started
        done, services, notes = await app.db.read(
            lambda c: c.execute(
                "SELECT (SELECT COUNT(*) FROM visits WHERE state = 'done'),"
                " (SELECT COUNT(*) FROM visits WHERE json_array_length(services) = 3),"
                " (SELECT COUNT(*) FROM visit_notes)"
            ).fetchone()
        )
        await app.close()
    latencies.sort()
    return {
        "events": len(latencies),
        "seconds": elapsed,
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "handled": outcomes.get("handled", 0),
        "done": done,
        "services": services,
        "notes": notes,
    }


def seed_history(conn: sqlite3.Connection, count: int, workers: int) -> None:
    """`count` finished visits over the past two years, some with exceptions."""
    rng = random.Random(11)
    span = 2 * 365 * 24 * 60
    rows = []
    for n in range(count):
        worker = n % workers + 2
        start = NOW - timedelta(minutes=rng.randint(60, span))
        rows.append(
            (
                worker - 1,
                worker,
                (worker - 2) % 20 + 2,
                iso(start),
                rng.uniform(5, 150),
                "far" if n % 40 == 0 else None,
                "gps_poor" if n % 40 == 0 else None,
                iso(start + timedelta(minutes=rng.randint(20, 120))),
                rng.uniform(5, 150),
                '["meal","cleaning"]',
                iso(start),
            )
        )
        if len(rows) == 50_000:
            _insert_visits(conn, rows)
            rows = []
    _insert_visits(conn, rows)
    conn.execute("ANALYZE")


def _insert_visits(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    conn.executemany(
        "INSERT INTO visits (client_id, worker_id, unit_id, state, checkin_at,"
        " checkin_distance_m, checkin_exception, checkin_reason, checkout_at,"
        " checkout_distance_m, services, no_gifts, gifts, created_at)"
        " VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, 1, 'none', ?)",
        rows,
    )


async def supervisor_view(stored: int, workers: int, rounds: int) -> tuple[list[float], str]:
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock(NOW)
        app = await App.open(Path(folder) / "history.db", {}, clock=clock)
        await app.db.transaction(lambda conn: seed_people(conn, workers))
        started = time.perf_counter()
        await app.db.transaction(lambda conn: seed_history(conn, stored, workers))
        print(f"seeded            {stored:,} visits in {time.perf_counter() - started:.1f} s")
        samples = []
        for n in range(rounds):
            inbound = Inbound(
                CHANNEL, "sup", f"view-{n}", InboundKind.COMMAND, f"/visits {n % 3 + 1}"
            )
            begun = time.perf_counter()
            await app.engine.handle(inbound)
            samples.append((time.perf_counter() - begun) * 1000)
        shown = await app.db.read(
            lambda c: c.execute(
                "SELECT text FROM outbox WHERE address = 'sup' ORDER BY id DESC LIMIT 1"
            ).fetchone()[0]
        )
        await app.close()
    return samples, str(shown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 workers, 50,000 stored visits")
    parser.add_argument("--concurrency", type=int, default=8, help="workers typing at once")
    args = parser.parse_args()
    workers = 200 if args.quick else 2000
    stored = 50_000 if args.quick else 1_000_000
    with tempfile.NamedTemporaryFile(suffix=".log") as log_file:
        logging.basicConfig(filename=log_file.name, level=logging.INFO)
        result = asyncio.run(visits_through_the_engine(workers, args.concurrency))
        print(f"visits            {workers} workers, {result['events']:.0f} events")
        print(f"throughput        {result['rate']:.0f} events/s ({result['seconds']:.2f} s)")
        print(f"latency           p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms")
        print(
            f"register          {result['done']:.0f} visits done, {result['services']:.0f} with"
            f" 3 services, {result['notes']:.0f} observations"
        )
        samples, shown = asyncio.run(supervisor_view(stored, 1000, 30 if args.quick else 200))
    p95 = statistics.quantiles(samples, n=20)[18]
    print(f"/visits           p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms")
    print(f"  shown           {' | '.join(shown.splitlines()[:4])}")
    print(f"ratio /visits     {TARGET_VIEW_MS / p95:.2f} (target >= 1.00: p95 < 50 ms)")
    ok = result["done"] == workers and result["handled"] == result["events"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
