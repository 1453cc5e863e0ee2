"""Desk benchmark: its pages through HTTP on the registers benchmark's
database (bench/registers.py: 200 units, 10,000 people, 1,000,000 checklist
answers, 100,000 hazards, 5,000 incidents).

The desk runs as `frontline run` serves it (`serve_desk` on a local port,
read connections beside the writer); a client signed in as a safety officer and as
the supervisor of the 1,000-person department asks for:

1. Today (`/`) for the safety officer: every unit (target p95 < 150 ms);
2. the register with a filter and a search, for the supervisor (< 100 ms);
3. a hazard card, for the supervisor (< 50 ms);
4. the four fixes set from the card by the supervisor: the POST, the
   register's action in one transaction, its outbox row, the 303 (< 100 ms).

Server time is the desk's own Server-Timing header, measured around the
handler; the client's round trip is printed beside it.

With --db postgresql://… (or `--db postgresql`: a throwaway cluster for the
run) the same again on a fresh PostgreSQL database after SQLite's, and each
figure side by side (target: PostgreSQL's p95 at most 1.5 times SQLite's).

Run: python -m bench.web [--quick] [--db postgresql[://…]]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.registers import NOW, WORDS, p95, seeded, side_by_side
from bot.clock import FakeClock, iso
from bot.store import desk as desk_store
from bot.web.app import opened, serve_desk
from bot.web.tokens import csrf_token, digest

TARGETS = {"today": 150.0, "register": 100.0, "card": 50.0, "assign": 100.0}
SUPERVISOR, OFFICER = 1, 3  # bench/registers.py's people
DEPARTMENT = 2  # the supervisor's, of 1,000 people


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def timed(client: aiohttp.ClientSession, url: str, cookie: str) -> tuple[float, float, int]:
    """(server ms, round trip ms, body bytes) of one GET."""
    started = time.perf_counter()
    async with client.get(url, headers={"Cookie": f"frontline_desk={cookie}"}) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {body[:200]!r}")
        server = float(response.headers["Server-Timing"].split("dur=")[1])
    return server, (time.perf_counter() - started) * 1000, len(body)


async def timed_post(
    client: aiohttp.ClientSession, url: str, cookie: str, form: dict[str, str]
) -> tuple[float, float, int]:
    """(server ms, round trip ms, body bytes) of one form POST, which must be a 303."""
    started = time.perf_counter()
    async with client.post(
        url,
        data={"csrf": csrf_token(cookie), **form},
        headers={"Cookie": f"frontline_desk={cookie}"},
        allow_redirects=False,
    ) as response:
        body = await response.read()
        if response.status != 303:
            raise RuntimeError(f"{url}: {response.status} {body[-300:]!r}")
        server = float(response.headers["Server-Timing"].split("dur=")[1])
    return server, (time.perf_counter() - started) * 1000, len(body)


async def run(scale: float, rounds: int, target: str | None = None) -> dict[str, float]:
    """Each figure's server p95 (ms) by its name, on a SQLite file or at `target`."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock(NOW)
        app, counts, seconds = await seeded(
            target or Path(folder) / "registers.db", Path(folder), scale
        )
        print(
            f"seeded {counts['units']} units, {counts['staff']:,} people,"
            f" {counts['answers']:,} checklist answers, {counts['hazards']:,} hazards"
            f" ({counts['open']:,} open), {counts['incidents']:,} incidents"
            f" in {seconds:.1f} s"
        )

        def sessions(conn: object) -> list[str]:
            for staff_id in (SUPERVISOR, OFFICER):
                desk_store.start_session(
                    conn,  # type: ignore[arg-type]
                    id_hash=digest(f"bench-{staff_id}"),
                    staff_id=staff_id,
                    now=iso(NOW),
                )
            rows = conn.execute(  # type: ignore[attr-defined]
                "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT u.id FROM units u"
                " JOIN tree t ON u.parent_id = t.id) SELECT h.number FROM hazards h"
                " WHERE h.unit_id IN (SELECT id FROM tree) ORDER BY h.id DESC LIMIT 50",
                (DEPARTMENT,),
            ).fetchall()
            return [str(row[0]) for row in rows]

        def assignable(conn: object) -> tuple[list[str], int]:
            """Open hazards of the supervisor's department, and one of its people."""
            rows = conn.execute(  # type: ignore[attr-defined]
                "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT u.id FROM units u"
                " JOIN tree t ON u.parent_id = t.id) SELECT h.number FROM hazards h"
                " WHERE h.unit_id IN (SELECT id FROM tree) AND h.status IN ('open', 'assigned')"
                " ORDER BY h.id DESC LIMIT ?",
                (DEPARTMENT, rounds + 1),
            ).fetchall()
            person = conn.execute(  # type: ignore[attr-defined]
                "SELECT id FROM staff WHERE unit_id = ? AND active = 1 AND id != ? LIMIT 1",
                (DEPARTMENT, SUPERVISOR),
            ).fetchone()
            return [str(row[0]) for row in rows], int(person[0])

        numbers = await app.db.transaction(sessions)
        open_numbers, responsible = await app.db.transaction(assignable)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        async with opened(
            app.db,
            web_url=base,
            clock=clock,
            default_timezone="Asia/Shanghai",
            default_language="zh-CN",
            media_dir=Path(folder) / "media",
            drills_per_year=2,
        ) as the_desk:
            stop, started = asyncio.Event(), asyncio.Event()
            serving = asyncio.create_task(
                serve_desk(the_desk, f"127.0.0.1:{port}", stop, started=started)
            )
            await asyncio.wait_for(started.wait(), 10)
            try:
                async with aiohttp.ClientSession() as client:
                    figures = await measure(client, base, numbers, rounds)
                    figures.update(await measure_assign(client, base, open_numbers, responsible))
            finally:
                stop.set()
                await serving
        await app.close()
    return figures


async def measure(
    client: aiohttp.ClientSession, base: str, numbers: list[str], rounds: int
) -> dict[str, float]:
    officer, supervisor = f"bench-{OFFICER}", f"bench-{SUPERVISOR}"
    searches = [word[1:5] for word in WORDS]  # four characters: the trigram index
    severities = ["", "general"]
    statuses = ["active", "closed", ""]

    def register_url(n: int) -> str:
        return (
            f"{base}/hazards?unit=2&status={statuses[n % 3]}&severity={severities[n % 2]}"
            f"&q={searches[n % len(searches)]}&page={n % 3 + 1}"
        )

    cases = {
        "today": ("Today, safety officer (every unit)", lambda n: f"{base}/", officer),
        "register": (
            "register: unit filter + status + search, supervisor",
            register_url,
            supervisor,
        ),
        "card": (
            "hazard card, supervisor",
            lambda n: f"{base}/hazards/{numbers[n % len(numbers)]}",
            supervisor,
        ),
    }
    figures = {}
    for name, (title, url, cookie) in cases.items():
        await timed(client, url(0), cookie)  # templates compiled, caches warm
        samples = [await timed(client, url(n), cookie) for n in range(rounds)]
        server = [s for s, _, _ in samples]
        trip = [r for _, r, _ in samples]
        figure = p95(server)
        target = TARGETS[name]
        figures[name] = figure
        print(
            f"{title}: server p50 {statistics.median(server):.1f} ms, p95 {figure:.1f} ms"
            f" (target < {target:.0f} ms, {figure / target:.2f} of it);"
            f" round trip p95 {p95(trip):.1f} ms; {samples[-1][2]:,} bytes; n={len(samples)}"
        )
    return figures


async def measure_assign(
    client: aiohttp.ClientSession, base: str, numbers: list[str], responsible: int
) -> dict[str, float]:
    supervisor = f"bench-{SUPERVISOR}"
    form = {
        "responsible": str(responsible),
        "measure": "清理通道，张贴标识",
        "deadline": "2026-12-31T18:00",
        "funding": "300",
    }
    samples = [
        await timed_post(client, f"{base}/hazards/{number}/assign", supervisor, form)
        for number in numbers
    ]
    samples = samples[1:]  # the first: templates compiled, caches warm
    server = [s for s, _, _ in samples]
    figure = p95(server)
    target = TARGETS["assign"]
    print(
        f"four fixes from the card (POST, register action, outbox, 303), supervisor:"
        f" server p50 {statistics.median(server):.1f} ms, p95 {figure:.1f} ms"
        f" (target < {target:.0f} ms, {figure / target:.2f} of it);"
        f" round trip p95 {p95([r for _, r, _ in samples]):.1f} ms; n={len(samples)}"
    )
    return {"assign": figure}


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
    scale, rounds = (0.1, 20) if args.quick else (1.0, 100)
    figures = asyncio.run(run(scale, rounds))
    if not all(figure < TARGETS[name] for name, figure in figures.items()):
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
