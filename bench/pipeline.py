"""Pipeline benchmark: 1,000 people each complete a pre-shift check (half of
them report one problem, half two, each with a description and a skipped
photo): 10,000 inbound events through engine, store and outbox on a fresh
database. Prints events/s and per-event latency (p50/p99), and the ratio to
the targets (2,000 events/s, p99 under 10 ms).

Run: python -m bench.pipeline [--people 1000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot import roster
from bot.app import App
from bot.clock import FakeClock, iso
from bot.model import Inbound, InboundKind
from bot.store import people

CHANNEL = "bench"
TARGET_RATE = 2000.0
TARGET_P99_MS = 10.0


def write_roster(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone", "unit", "roles", "employee_no"])
        for team in range(count // 50 + 1):
            writer.writerow(
                [
                    f"班长{team}",
                    f"139{team:08d}",
                    f"中心/部门{team // 5}/班组{team}",
                    "主管",
                    f"S{team}",
                ]
            )
        for n in range(count):
            team = n // 50
            writer.writerow(
                [f"员工{n}", f"138{n:08d}", f"中心/部门{team // 5}/班组{team}", "员工", f"E{n}"]
            )


def script(person: int) -> list[tuple[InboundKind, str]]:
    """One person's events. Each one moves the conversation on by exactly one
    version, so button actions carry the version the bot would have shown."""
    problems = {1} if person % 2 else {1, 4}
    events: list[tuple[InboundKind, str]] = [(InboundKind.COMMAND, "/check")]
    for item in range(6):
        if item in problems:
            events.append((InboundKind.ACTION, f"v{len(events)}:problem"))
            events.append((InboundKind.TEXT, f"第{item + 1}项有问题：防护罩松动，编号{person}"))
            events.append((InboundKind.ACTION, f"v{len(events)}:skip"))
        else:
            events.append((InboundKind.ACTION, f"v{len(events)}:ok"))
    return events


async def run(people_count: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        roster_file = base / "roster.csv"
        write_roster(roster_file, people_count)
        clock = FakeClock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
        app = await App.open(base / "bench.db", {}, clock=clock)
        await roster.import_roster_file(
            app.db, roster_file, deactivate_missing=False, default_language="zh-CN", now=clock.now()
        )

        def bind(conn) -> list[int]:  # type: ignore[no-untyped-def]
            ids = [r[0] for r in conn.execute("SELECT id FROM staff WHERE employee_no LIKE 'E%'")]
            for staff_id in ids:
                people.bind_identity(conn, CHANNEL, f"u{staff_id}", staff_id, iso(clock.now()))
            return ids

        staff_ids = await app.db.transaction(bind)
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        gate = asyncio.Semaphore(concurrency)

        async def one_person(index: int, staff_id: int) -> None:
            async with gate:
                for number, (kind, text) in enumerate(script(index)):
                    inbound = Inbound(CHANNEL, f"u{staff_id}", f"{staff_id}-{number}", kind, text)
                    started = time.perf_counter()
                    outcome = await app.engine.handle(inbound)
                    latencies.append(time.perf_counter() - started)
                    outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_person(i, s) for i, s in enumerate(staff_ids)))
        elapsed = time.perf_counter() - started

        counts = await app.db.read(
            lambda c: c.execute(
                "SELECT (SELECT COUNT(*) FROM checklist_runs WHERE completed_at IS NOT NULL),"
                " (SELECT COUNT(*) FROM checklist_answers), (SELECT COUNT(*) FROM hazards),"
                " (SELECT COUNT(*) FROM outbox)"
            ).fetchone()
        )
        await app.close()
    latencies.sort()
    events = len(latencies)
    return {
        "events": events,
        "seconds": elapsed,
        "rate": events / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(events * 0.99) - 1] * 1000,
        "handled": outcomes.get("handled", 0),
        "completed_runs": counts[0],
        "answers": counts[1],
        "hazards": counts[2],
        "outbox_rows": counts[3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="people typing at once")
    args = parser.parse_args()
    # Log as production does (one INFO line per event), to a file, not the terminal.
    with tempfile.NamedTemporaryFile(suffix=".log") as log_file:
        logging.basicConfig(filename=log_file.name, level=logging.INFO)
        result = asyncio.run(run(args.people, args.concurrency))
    print(f"events            {result['events']:.0f} ({result['handled']:.0f} handled)")
    print(f"people at once    {args.concurrency}")
    print(f"elapsed           {result['seconds']:.2f} s")
    print(f"throughput        {result['rate']:.0f} events/s")
    print(f"latency p50       {result['p50_ms']:.2f} ms")
    print(f"latency p99       {result['p99_ms']:.2f} ms")
    print(
        f"register          {result['completed_runs']:.0f} completed runs,"
        f" {result['answers']:.0f} answers, {result['hazards']:.0f} hazards,"
        f" {result['outbox_rows']:.0f} outbox rows"
    )
    print(f"ratio throughput  {result['rate'] / TARGET_RATE:.2f} (target >= 1.00: 2,000 events/s)")
    print(f"ratio p99         {TARGET_P99_MS / result['p99_ms']:.2f} (target >= 1.00: p99 < 10 ms)")
    ok = result["completed_runs"] == args.people and result["handled"] == result["events"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
