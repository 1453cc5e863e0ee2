"""Pipeline benchmark: 1,000 people each complete a pre-shift check (half of
them report one problem, half two, each with a description and a skipped
photo): 10,000 inbound events through engine, store and outbox on a fresh
database. Prints events/s and per-event latency (p50/p99), and the ratio to
the targets (2,000 events/s, p99 under 10 ms).

With --desk-load the database first gets the registers benchmark's data
(bench/registers.py, `--desk-scale` of it) and the desk is served on it in
the same process, as `frontline run` serves it; a client in another process
loads the register with a filter and a search (as bench/web.py does) flat
out over HTTP while the events run: the issue's target is the same p99 under
10 ms. The pages' figures are printed beside it. With --desk-process the
desk runs in a process of its own on the same database instead (as
`frontline web` does), so that its rendering does not share the bot's
interpreter.

With --db postgresql://… (or `--db postgresql`: a throwaway cluster for the
run) the same events run on PostgreSQL too, after SQLite's single process: for
each count in --processes, that many processes (each an App, as `frontline run`
is) on one fresh database, each driving its own share of the people, started
together. Targets: one PostgreSQL process at least half SQLite's events/s;
throughput growing with processes up to the machine's cores; p99 under 20 ms.

Run: python -m bench.pipeline [--people 1000] [--concurrency 8]
         [--desk-load [--desk-scale 0.1] [--desk-process]]
         [--db postgresql[://…] [--processes 1,2,4]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bot import roster
from bot.app import App
from bot.clock import Clock, FakeClock, iso
from bot.model import Inbound, InboundKind
from bot.store import desk as desk_store
from bot.store import people
from bot.store.db import Database
from bot.web.app import opened, serve_desk
from bot.web.tokens import digest

CHANNEL = "bench"
TARGET_RATE = 2000.0
TARGET_P99_MS = 10.0
PG_TARGET_SHARE = 0.5  # of SQLite's events/s, one PostgreSQL process
PG_TARGET_P99_MS = 20.0
START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def write_roster(path: Path, count: int, mark: str = "") -> None:
    """`mark`: set before names and units, so that these people are new
    beside another benchmark's (the desk's data)."""
    phone = "13" if not mark else "15"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone", "unit", "roles", "employee_no"])
        for team in range(count // 50 + 1):
            writer.writerow(
                [
                    f"{mark}班长{team}",
                    f"{phone}9{team:08d}",
                    f"{mark}中心/部门{team // 5}/班组{team}",
                    "主管",
                    f"S{team}",
                ]
            )
        for n in range(count):
            team = n // 50
            writer.writerow(
                [
                    f"{mark}员工{n}",
                    f"{phone}8{n:08d}",
                    f"{mark}中心/部门{team // 5}/班组{team}",
                    "员工",
                    f"E{n}",
                ]
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


COUNTS = (
    "SELECT (SELECT COUNT(*) FROM checklist_runs WHERE completed_at IS NOT NULL),"
    " (SELECT COUNT(*) FROM checklist_answers), (SELECT COUNT(*) FROM hazards),"
    " (SELECT COUNT(*) FROM outbox)"
)
# bench/registers.py's supervisor of the 1,000-person department (unit 2).
DESK_SUPERVISOR = 1
DESK_COOKIE = f"bench-{DESK_SUPERVISOR}"


async def run(
    people_count: int,
    concurrency: int,
    desk_scale: float | None = None,
    desk_process: bool = False,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        roster_file = base / "roster.csv"
        write_roster(roster_file, people_count, mark="" if desk_scale is None else "流水")
        clock = FakeClock(START)
        app = await App.open(base / "bench.db", {}, clock=clock)
        if desk_scale is not None:
            await seed_registers(app, desk_scale)
        before = await app.db.read(lambda c: c.execute(COUNTS).fetchone())
        await roster.import_roster_file(
            app.db, roster_file, deactivate_missing=False, default_language="zh-CN", now=clock.now()
        )

        share = await app.db.transaction(lambda conn: bind(conn, clock, 0, 1))
        latencies: list[float] = []
        outcomes: dict[str, int] = {}

        load: dict[str, float] = {}
        loaded = desk_in_process if not desk_process else desk_beside
        async with loaded(app, clock, base, desk_scale is not None, load):
            started = time.perf_counter()
            await drive(app, share, concurrency, latencies, outcomes)
            elapsed = time.perf_counter() - started

        after = await app.db.read(lambda c: c.execute(COUNTS).fetchone())
        counts = [a - b for a, b in zip(after, before, strict=True)]
        await app.close()
    latencies.sort()
    events = len(latencies)
    return {
        **load,
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


def bind(conn, clock: Clock, index: int, of: int) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """Share `index` of `of` of the roster's workers, each bound to the bench
    channel: (person's number in the script, staff id)."""
    ids = [
        r[0] for r in conn.execute("SELECT id FROM staff WHERE employee_no LIKE 'E%' ORDER BY id")
    ]
    share = list(enumerate(ids))[index::of]
    for _, staff_id in share:
        people.bind_identity(conn, CHANNEL, f"u{staff_id}", staff_id, iso(clock.now()))
    return share


async def drive(
    app: App,
    share: list[tuple[int, int]],
    concurrency: int,
    latencies: list[float],
    outcomes: dict[str, int],
) -> None:
    """Each person of `share` through their script, `concurrency` of them at once."""
    gate = asyncio.Semaphore(concurrency)

    async def one_person(index: int, staff_id: int) -> None:
        async with gate:
            for number, (kind, text) in enumerate(script(index)):
                inbound = Inbound(CHANNEL, f"u{staff_id}", f"{staff_id}-{number}", kind, text)
                started = time.perf_counter()
                outcome = await app.engine.handle(inbound)
                latencies.append(time.perf_counter() - started)
                outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1

    await asyncio.gather(*(one_person(i, s) for i, s in share))


class ChildFailed(Exception):
    """One of run_postgresql's processes stopped without its figures (its error is on stderr)."""


async def run_postgresql(
    url: str, people_count: int, concurrency: int, processes: int
) -> dict[str, float]:
    """`processes` children on the fresh database `url`, after the roster is
    imported here: each binds its share, says ready, waits for the go line on
    its stdin, drives its share and writes its figures to a JSON file of its
    own (every latency: 10,000 events' worth is more than a pipe's line limit)."""
    with tempfile.TemporaryDirectory() as folder:
        roster_file = Path(folder) / "roster.csv"
        write_roster(roster_file, people_count)
        clock = FakeClock(START)
        app = await App.open(url, {}, clock=clock, media_dir=Path(folder) / "media")
        before = await app.db.read(lambda c: c.execute(COUNTS).fetchone())
        await roster.import_roster_file(
            app.db, roster_file, deactivate_missing=False, default_language="zh-CN", now=clock.now()
        )
        reports_at = [Path(folder) / f"report-{n}.json" for n in range(processes)]
        children = [
            await _child(
                "--child",
                url,
                str(n),
                str(processes),
                str(concurrency),
                str(reports_at[n]),
                stdin=True,
            )
            for n in range(processes)
        ]
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
        for child in children:
            assert child.stdin is not None
            await child.stdin.drain()
        lines = []
        for child in children:
            assert child.stdout is not None
            lines.append(await child.stdout.readline())
            await child.wait()
        failed = [
            n
            for n, c in enumerate(children)
            if c.returncode != 0 or lines[n].strip() != b"done" or not reports_at[n].is_file()
        ]
        if failed:
            await app.close()
            raise ChildFailed(f"process {', '.join(map(str, failed))} of {processes} failed")
        reports = [json.loads(path.read_text(encoding="utf-8")) for path in reports_at]
        after = await app.db.read(lambda c: c.execute(COUNTS).fetchone())
        counts = [a - b for a, b in zip(after, before, strict=True)]
        await app.close()
    latencies = sorted(x for report in reports for x in report["latencies"])
    events = len(latencies)
    elapsed = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    return {
        "events": events,
        "seconds": elapsed,
        "rate": events / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(events * 0.99) - 1] * 1000,
        "handled": sum(r["outcomes"].get("handled", 0) for r in reports),
        "reruns": sum(r["reruns"] for r in reports),
        "completed_runs": counts[0],
        "answers": counts[1],
        "hazards": counts[2],
        "outbox_rows": counts[3],
    }


async def child(url: str, index: int, of: int, concurrency: int, report_to: Path) -> None:
    """One of run_postgresql's processes. Its clock (time.monotonic) is the
    machine's, so the parent can compare starts and finishes across processes."""
    clock = FakeClock(START)
    with tempfile.TemporaryDirectory() as folder:
        app = await App.open(url, {}, clock=clock, media_dir=Path(folder) / "media")
        share = await app.db.transaction(lambda conn: bind(conn, clock, index, of))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        started = time.monotonic()
        await drive(app, share, concurrency, latencies, outcomes)
        finished = time.monotonic()
        reruns = getattr(app.db, "reruns", 0)
        await app.close()
    report = {
        "latencies": latencies,
        "outcomes": outcomes,
        "started": started,
        "finished": finished,
        "reruns": reruns,
    }
    report_to.write_text(json.dumps(report), encoding="utf-8")
    print("done", flush=True)


def expected(people_count: int) -> dict[str, int]:
    """What the scripts must leave in the registers, whichever engine ran them."""
    scripts = [script(n) for n in range(people_count)]
    return {
        "events": sum(len(s) for s in scripts),
        "completed_runs": people_count,
        "answers": 6 * people_count,
        "hazards": sum(1 for s in scripts for _, text in s if text.endswith(":problem")),
    }


def check(name: str, result: dict[str, float], wanted: dict[str, int]) -> bool:
    """Print and say whether `result`'s counts are the ones wanted; every event handled."""
    wrong = [
        f"{key} {result[key]:.0f} (expected {value})"
        for key, value in wanted.items()
        if result[key] != value
    ]
    if result["handled"] != result["events"]:
        wrong.append(f"handled {result['handled']:.0f} of {result['events']:.0f} events")
    if wrong:
        print(f"COUNTS WRONG, {name}: " + "; ".join(wrong))
    return not wrong


async def seed_registers(app: App, scale: float) -> None:
    """The registers benchmark's data, and a desk session for its supervisor."""
    from bench.registers import NOW, seed

    started = time.perf_counter()
    counts = await app.db.transaction(lambda conn: seed(conn, scale))
    await app.db.transaction(
        lambda conn: desk_store.start_session(
            conn, id_hash=digest(DESK_COOKIE), staff_id=DESK_SUPERVISOR, now=iso(NOW)
        )
    )
    print(
        f"desk data         {counts['answers']:,} answers, {counts['hazards']:,} hazards,"
        f" {counts['incidents']:,} incidents (seeded in {time.perf_counter() - started:.1f} s)"
    )


@contextlib.asynccontextmanager
async def desk_in_process(
    app: App, clock: FakeClock, folder: Path, wanted: bool, load: dict[str, float]
) -> AsyncIterator[None]:
    """The desk served in this process on the same database, as `frontline
    run` serves it, and a client in another loading its register pages flat
    out, while the body runs; the client's figures go into `load`."""
    if not wanted:
        yield
        return
    from bench.web import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with _opened_desk(app.db, clock, folder, url) as the_desk:
        stop, started = asyncio.Event(), asyncio.Event()
        serving = asyncio.create_task(serve_desk(the_desk, f"127.0.0.1:{port}", stop, started))
        await asyncio.wait_for(started.wait(), 10)
        try:
            async with _client(url, load):
                yield
        finally:
            stop.set()
            await serving


@contextlib.asynccontextmanager
async def desk_beside(
    app: App, clock: FakeClock, folder: Path, wanted: bool, load: dict[str, float]
) -> AsyncIterator[None]:
    """The desk in a process of its own on the same database file (as
    `frontline web` runs it), and the client loading it."""
    if not wanted:
        yield
        return
    from bench.web import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    desk = await _child("--desk-serve", str(app.db.path), url)
    try:
        async with _client(url, load):
            yield
    finally:
        desk.send_signal(signal.SIGTERM)
        await desk.wait()


def _opened_desk(db: Database, clock: Clock, folder: Path, url: str):  # type: ignore[no-untyped-def]
    return opened(
        db,
        web_url=url,
        clock=clock,
        default_timezone="Asia/Shanghai",
        default_language="zh-CN",
        media_dir=folder / "media",
        drills_per_year=2,
    )


async def _child(*args: str, stdin: bool = False) -> asyncio.subprocess.Process:
    """This benchmark's own module in another process, once it says it is ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.pipeline",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.PIPE if stdin else None,
    )
    assert process.stdout is not None
    ready = await asyncio.wait_for(process.stdout.readline(), 120)
    if ready.strip() != b"ready":
        raise RuntimeError(f"{args[0]}: {ready!r}")
    return process


@contextlib.asynccontextmanager
async def _client(url: str, load: dict[str, float]) -> AsyncIterator[None]:
    client = await _child("--desk-client", url)
    assert client.stdout is not None
    try:
        yield
    finally:
        client.send_signal(signal.SIGTERM)
        figures = (await client.stdout.read()).decode().split()
        await client.wait()
    load.update(
        pages=float(figures[0]),
        pages_seconds=float(figures[1]),
        page_server_p95_ms=float(figures[2]),
        page_trip_p95_ms=float(figures[3]),
    )


async def desk_serve(path: str, url: str) -> None:
    """The desk alone on `path`, serving `url` until SIGTERM."""
    from bench.registers import NOW

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    db = await Database.open(path)
    with tempfile.TemporaryDirectory() as folder:
        async with _opened_desk(db, FakeClock(NOW), Path(folder), url) as the_desk:
            started = asyncio.Event()
            serving = asyncio.create_task(
                serve_desk(the_desk, url.removeprefix("http://"), stop, started)
            )
            await asyncio.wait_for(started.wait(), 10)
            print("ready", flush=True)
            await serving
    await db.close()


def register_url(base: str, n: int) -> str:
    """bench/web.py's register page: the department, a status, a severity, a search, a page."""
    from bench.registers import WORDS

    searches = [word[1:5] for word in WORDS]
    statuses, severities = ["active", "closed", ""], ["", "general"]
    return (
        f"{base}/hazards?unit=2&status={statuses[n % 3]}&severity={severities[n % 2]}"
        f"&q={searches[n % len(searches)]}&page={n % 3 + 1}"
    )


async def desk_client(base: str, parallel: int = 2) -> None:
    """Load register pages, `parallel` at a time, until SIGTERM; then print
    pages, seconds, server p95 and round-trip p95 (ms) on one line."""
    from bench.registers import p95
    from bench.web import timed

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server: list[float] = []
    trips: list[float] = []
    async with aiohttp.ClientSession() as session:
        await timed(session, register_url(base, 0), DESK_COOKIE)
        print("ready", flush=True)
        started = time.perf_counter()

        async def load(offset: int) -> None:
            n = offset
            while not stop.is_set():
                took, trip, _ = await timed(session, register_url(base, n), DESK_COOKIE)
                server.append(took)
                trips.append(trip)
                n += parallel

        await asyncio.gather(*(load(i) for i in range(parallel)))
    seconds = time.perf_counter() - started
    print(len(server), f"{seconds:.3f}", f"{p95(server):.2f}", f"{p95(trips):.2f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="people typing at once")
    parser.add_argument(
        "--desk-load",
        action="store_true",
        help="while a client loads the desk's register pages flat out on the same database",
    )
    parser.add_argument(
        "--desk-scale",
        type=float,
        default=0.1,
        help="of the registers benchmark's data (1.0: 1,000,000 answers, 100,000 hazards)",
    )
    parser.add_argument(
        "--desk-process",
        action="store_true",
        help="with --desk-load: the desk in a process of its own (as `frontline web`)",
    )
    parser.add_argument(
        "--db",
        metavar="postgresql[://…]",
        help="then on PostgreSQL too: this server (its user creates databases), or"
        " `postgresql`: a throwaway cluster for the run",
    )
    parser.add_argument(
        "--processes",
        default="1",
        help="with --db: the process counts to run on PostgreSQL, e.g. 1,2,4",
    )
    parser.add_argument("--desk-client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--desk-serve", nargs=2, metavar=("DB", "URL"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--child", nargs=5, metavar=("URL", "N", "OF", "AT_ONCE", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.db and args.desk_load:
        parser.error("--db runs without --desk-load")
    if args.child:
        url, index, of, at_once, report_to = args.child
        logging.basicConfig(filename=os.devnull, level=logging.INFO)
        asyncio.run(child(url, int(index), int(of), int(at_once), Path(report_to)))
        return 0
    if args.desk_client:
        asyncio.run(desk_client(args.desk_client))
        return 0
    if args.desk_serve:
        asyncio.run(desk_serve(*args.desk_serve))
        return 0
    # Log as production does (one INFO line per event), to a file, not the terminal.
    with tempfile.NamedTemporaryFile(suffix=".log") as log_file:
        logging.basicConfig(filename=log_file.name, level=logging.INFO)
        result = asyncio.run(
            run(
                args.people,
                args.concurrency,
                args.desk_scale if args.desk_load else None,
                args.desk_process,
            )
        )
    if args.desk_load:
        pages = result["pages"]
        print(
            f"desk load         {pages:.0f} register pages (filter + search) in"
            f" {result['pages_seconds']:.1f} s = {pages / result['pages_seconds']:.0f} pages/s;"
            f" server p95 {result['page_server_p95_ms']:.1f} ms,"
            f" round trip p95 {result['page_trip_p95_ms']:.1f} ms"
        )
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
    under = ""
    if args.desk_load:
        under = (
            f" under desk load, desk {'in its own process' if args.desk_process else 'in process'}"
        )
    print(
        f"ratio p99         {TARGET_P99_MS / result['p99_ms']:.2f}"
        f" (target >= 1.00: p99 < 10 ms{under})"
    )
    if args.db:
        wanted = {**expected(args.people), "outbox_rows": int(result["outbox_rows"])}
        ok = check("sqlite", result, {k: v for k, v in wanted.items() if k != "outbox_rows"})
        counts = [int(n) for n in args.processes.split(",")]
        return 0 if compare_postgresql(args, result, counts, wanted) and ok else 1
    ok = result["completed_runs"] == args.people and result["handled"] == result["events"]
    return 0 if ok else 1


def compare_postgresql(
    args: argparse.Namespace, sqlite: dict[str, float], counts: list[int], wanted: dict[str, int]
) -> bool:
    """Each process count on a fresh PostgreSQL database, printed beside SQLite's
    single process with the ratios to the targets; False if any counts are wrong."""
    from bench import databases

    ok = True
    results: dict[int, dict[str, float]] = {}
    print()
    print(f"PostgreSQL ({args.db}), {os.cpu_count()} cores, {args.concurrency} people at once each")
    print(f"  sqlite      1 process : {line(sqlite)}")
    with databases.server(args.db) as server:
        for processes in counts:
            try:
                with databases.fresh(server) as url:
                    result = asyncio.run(
                        run_postgresql(url, args.people, args.concurrency, processes)
                    )
            except ChildFailed as exc:
                print(f"  postgresql {processes} processes: FAILED ({exc}; its traceback above)")
                ok = False
                continue
            results[processes] = result
            ok = check(f"postgresql, {processes} processes", result, wanted) and ok
            print(
                f"  postgresql {processes} process{'es' if processes > 1 else '  '}:"
                f" {line(result)}; {result['reruns']:.0f} reruns"
            )
    if 1 in results:
        share = results[1]["rate"] / sqlite["rate"]
        print(
            f"ratio 1 process / sqlite   {share:.2f}"
            f" (target >= {PG_TARGET_SHARE:.2f}: half SQLite's events/s)"
        )
    previous = None
    for processes, result in sorted(results.items()):
        if previous is not None:
            growth = result["rate"] / results[previous]["rate"]
            within = "within" if processes <= (os.cpu_count() or 1) else "beyond"
            print(
                f"ratio {processes} / {previous} processes   {growth:.2f}"
                f" (target > 1.00 up to the cores; {processes} is {within} {os.cpu_count()})"
            )
        previous = processes
    for processes, result in sorted(results.items()):
        print(
            f"ratio p99 {processes} process{'es' if processes > 1 else '  '}"
            f"  {PG_TARGET_P99_MS / result['p99_ms']:.2f}"
            f" (target >= 1.00: p99 < {PG_TARGET_P99_MS:.0f} ms)"
        )
    print(f"counts            {'as expected' if ok else 'WRONG OR MISSING (above)'}: {wanted}")
    return ok


def line(result: dict[str, float]) -> str:
    return (
        f"{result['events']:.0f} events in {result['seconds']:.2f} s ="
        f" {result['rate']:.0f} events/s; p50 {result['p50_ms']:.2f} ms,"
        f" p99 {result['p99_ms']:.2f} ms; {result['outbox_rows']:.0f} outbox rows"
    )


if __name__ == "__main__":
    sys.exit(main())
