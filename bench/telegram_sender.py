"""Telegram sender benchmark: the outbox drained by the real Sender through the
real TelegramTransport and python-telegram-bot's HTTP client into the fake Bot
API server, which runs in a child process (as Telegram would be elsewhere), so
its own work is not counted against the sender.

Phase 1, throughput: 5,000 messages to 5,000 chats with no limits anywhere (the
server enforces none; the transport's pace is switched off). Prints messages/s
and the ratio to 1,000/s.

Phase 2, pace: the server enforces Telegram's limits (30/s for the bot, 1/s per
private chat after a burst of 3, 20/min per group) and the transport paces
itself as in production: 810 messages to 270 people (3 each, back to back) and
90 to 10 groups, so the bot's 30/s binds. Prints the achieved rate, the ratio to
30/s (target >= 0.95) and the 429s the server answered.

Both phases compare what the server accepted with the outbox: lost (a row
marked sent that never arrived, or a row never sent), duplicated, and out of
order within a chat. Exit status 0 when both complete with none lost or
duplicated.

Run: python -m bench.telegram_sender [--quick]   (--quick: 500 and 90 messages)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from anywhere: bench/ and tests/ live in the repo root

from bot.app import App  # noqa: E402
from bot.channels.telegram.channel import TelegramSettings, build_application  # noqa: E402
from bot.channels.telegram.transport import CHANNEL, TelegramTransport  # noqa: E402
from bot.clock import SystemClock, iso  # noqa: E402
from bot.store import outbox  # noqa: E402
from bot.store.outbox import NewMessage  # noqa: E402
from tests.telegram.fakebotapi import FakeBotAPI  # noqa: E402

TARGET_RATE = 1000.0  # phase 1, messages/s
TARGET_PACE = 0.95  # phase 2, share of the allowed rate
ALLOWED_RATE = 30.0  # Telegram: about 30 messages/s per bot
FIRST_CHAT = 100_000_000
FIRST_GROUP = -1_001_000_000_000


# -- the fake Bot API, in a child process ------------------------------------------------


def serve_fake_api(pipe: Connection, limits: bool) -> None:
    """Child process: run FakeBotAPI; answer "report" with what it accepted, stop on "stop"."""
    asyncio.run(_fake_api(pipe, limits))


async def _fake_api(pipe: Connection, limits: bool) -> None:
    async with FakeBotAPI() as api:
        if limits:
            api.enforce_limits()
        pipe.send((api.token, api.root_url))
        while (await asyncio.to_thread(pipe.recv)) != "stop":
            sent = [(m.chat_id, m.text or m.caption or "") for m in api.sent]
            pipe.send((sent, list(api.accepted_sends), api.rejected_429))


@dataclass
class Report:
    sent: list[tuple[int, str]]  # (chat, text) in the order the server accepted them
    accepted_at: list[float]  # time.monotonic() of each accepted send (limits on)
    rejected_429: int


@dataclass
class FakeServer:
    process: multiprocessing.process.BaseProcess
    pipe: Connection
    token: str
    root_url: str

    @classmethod
    def start(cls, *, limits: bool) -> FakeServer:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve_fake_api, args=(theirs, limits), daemon=True)
        process.start()
        token, root_url = ours.recv()
        return cls(process, ours, token, root_url)

    def report(self) -> Report:
        self.pipe.send("report")
        return Report(*self.pipe.recv())

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(timeout=10)


# -- the sender against it ----------------------------------------------------------------


class Unpaced(TelegramTransport):
    """Phase 1 measures the sender's own speed: no pace of ours either."""

    per_second = 0.0

    def limit(self, address: str | None) -> tuple[float, float]:
        return 0.0, 0.0


@dataclass
class Outcome:
    count: int
    seconds: float
    lost: int
    duplicated: int
    out_of_order: int
    rejected_429: int
    retried_rows: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds


async def queue(app: App, messages: list[tuple[int, str]]) -> None:
    now = iso(app.sender.clock.now())

    def write(conn: Any) -> None:
        for n, (chat, text) in enumerate(messages):
            message = NewMessage(None, CHANNEL, str(chat), text, f"bench:{n}")
            outbox.enqueue(conn, message, now)

    await app.db.transaction(write)


async def unfinished(app: App) -> int:
    return int(
        await app.db.read(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
            ).fetchone()[0]
        )
    )


def compare(messages: list[tuple[int, str]], report: Report) -> tuple[int, int, int]:
    """(lost, duplicated, out of order within a chat): what the server accepted
    against what was queued."""
    queued, received = Counter(messages), Counter(report.sent)
    lost = sum((queued - received).values())
    duplicated = sum((received - queued).values())
    expected: dict[int, list[str]] = defaultdict(list)
    arrived: dict[int, list[str]] = defaultdict(list)
    for chat, text in messages:
        expected[chat].append(text)
    for chat, text in report.sent:
        arrived[chat].append(text)
    out_of_order = sum(1 for chat in expected if arrived[chat] != expected[chat])
    return lost, duplicated, out_of_order


async def run_phase(
    messages: list[tuple[int, str]], *, limits: bool, folder: Path, timeout: float
) -> Outcome:
    server = FakeServer.start(limits=limits)
    try:
        settings = TelegramSettings(token=server.token, api_url=server.root_url)
        telegram_bot = build_application(settings).bot
        async with telegram_bot:
            kind = TelegramTransport if limits else Unpaced
            transport = kind(telegram_bot, folder)
            name = "paced" if limits else "unpaced"
            app = await App.open(folder / f"{name}.db", {CHANNEL: transport}, clock=SystemClock())
            try:
                await queue(app, messages)
                started = time.monotonic()
                if limits:
                    await drain_with_retries(app, timeout)
                else:
                    async with asyncio.timeout(timeout):
                        await app.sender.drain(CHANNEL)
                finished = time.monotonic()
                left = await unfinished(app)
                retried = await app.db.read(
                    lambda conn: conn.execute(
                        "SELECT COUNT(*) FROM outbox WHERE attempts > 1"
                    ).fetchone()[0]
                )
            finally:
                await app.close()
        report = server.report()
    finally:
        server.stop()
    if limits and report.accepted_at:
        finished = report.accepted_at[-1]  # the last message in, not our bookkeeping after it
    lost, duplicated, out_of_order = compare(messages, report)
    return Outcome(
        count=len(messages),
        seconds=finished - started,
        lost=lost + left,
        duplicated=duplicated,
        out_of_order=out_of_order,
        rejected_429=report.rejected_429,
        retried_rows=int(retried),
    )


async def drain_with_retries(app: App, timeout: float) -> None:
    """Run the sender as production does (retries come due on the clock) until
    the outbox is empty."""
    runner = asyncio.create_task(app.sender.run(idle_seconds=0.05))
    try:
        async with asyncio.timeout(timeout):
            while await unfinished(app):
                await asyncio.sleep(0.05)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


# -- the workloads ------------------------------------------------------------------------


def one_each(count: int) -> list[tuple[int, str]]:
    return [(FIRST_CHAT + n, f"通知 {n}：今日安全检查请于 10:00 前完成。") for n in range(count)]


def paced_workload(people: int, groups: int, rounds: int) -> list[tuple[int, str]]:
    """Three messages back to back to each person; every people/rounds people,
    one message to each group."""
    messages: list[tuple[int, str]] = []
    every = max(1, people // rounds)
    for n in range(people):
        chat = FIRST_CHAT + n
        messages += [(chat, f"员工 {n} 第 {k + 1}/3 条：请确认。") for k in range(3)]
        if n % every == every - 1 and n // every < rounds:
            round_ = n // every
            messages += [(FIRST_GROUP - g, f"群 {g} 通报 {round_}") for g in range(groups)]
    return messages


def correctness(outcome: Outcome) -> str:
    return (
        f"lost {outcome.lost}, duplicated {outcome.duplicated}, out of order {outcome.out_of_order}"
    )


async def main_async(quick: bool) -> bool:
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        first = one_each(500 if quick else 5000)
        phase1 = await run_phase(first, limits=False, folder=folder, timeout=120)
        ratio1 = phase1.rate / TARGET_RATE
        print(
            f"phase 1, no limits: {phase1.count} messages to {phase1.count} chats"
            f" in {phase1.seconds:.2f} s = {phase1.rate:.0f} messages/s;"
            f" ratio {ratio1:.2f} (target >= 1.00 at {TARGET_RATE:.0f}/s); {correctness(phase1)}"
        )

        people, groups, rounds = (27, 3, 3) if quick else (270, 10, 9)
        second = paced_workload(people, groups, rounds)
        phase2 = await run_phase(second, limits=True, folder=folder, timeout=120)
        ratio2 = phase2.rate / ALLOWED_RATE
        print(
            f"phase 2, Telegram's limits: {phase2.count} messages ({3 * people} to {people}"
            f" people, 3 each; {phase2.count - 3 * people} to {groups} groups)"
            f" in {phase2.seconds:.2f} s = {phase2.rate:.1f} messages/s of"
            f" {ALLOWED_RATE:.0f}/s allowed (the bot's limit binds);"
            f" ratio {ratio2:.3f} (target >= {TARGET_PACE});"
            f" 429s received {phase2.rejected_429} ({phase2.retried_rows} rows retried);"
            f" {correctness(phase2)}"
        )
    return all(p.lost == 0 and p.duplicated == 0 for p in (phase1, phase2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for CI")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    return 0 if asyncio.run(main_async(args.quick)) else 1


if __name__ == "__main__":
    sys.exit(main())
