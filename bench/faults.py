"""Faults benchmark: what a first week in production does to the bot, measured.

Prints, each with its target:

- replies lost under a held write lock: `frontline run` as a child process
  answering people on the fake Bot API while another connection holds
  BEGIN IMMEDIATE for 8 s (target 0 lost, 0 doubled);
- doubled sends with a second process: a second `frontline run` started on the
  same database in the middle of a burst of 300 messages (target 0);
- messages failed after a 6-minute outage: the fake Bot API stopped (connections
  refused) for six minutes of the sender's clock, then back (target 0 failed,
  all delivered in order per chat);
- another person's reply latency behind a 200-message backlog to one chat,
  real pace (target p99 < 1 s);
- tap-to-next-question: a person answering the pre-shift check at one tap per
  1.5 s through the real `serve()` (target median < 300 ms).

Run: python -m bench.faults [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from anywhere: bench/ and tests/ live in the repo root

from bot import roster  # noqa: E402
from bot.app import App, serve  # noqa: E402
from bot.channels.telegram.channel import TelegramSettings, build_application  # noqa: E402
from bot.channels.telegram.transport import CHANNEL, TelegramTransport  # noqa: E402
from bot.clock import FakeClock, SystemClock, iso  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.store import outbox, people  # noqa: E402
from bot.store.outbox import NewMessage  # noqa: E402
from tests.telegram.fakebotapi import FakeBotAPI, callback_update, text_update  # noqa: E402

BASE_USER = 9000


async def seed(db: Path, bound: int) -> list[int]:
    """The demo organisation, `bound` of its people signed in on Telegram."""
    from importlib import resources

    app = await App.open(db, {})
    try:
        demo = resources.files("bot.data").joinpath("demo_roster.csv")
        with resources.as_file(demo) as path:
            await roster.import_roster_file(
                app.db,
                path,
                deactivate_missing=False,
                default_language="zh-CN",
                now=SystemClock().now(),
            )
        ids = await app.db.read(
            lambda conn: [r[0] for r in conn.execute("SELECT id FROM staff ORDER BY id")]
        )
        now = iso(SystemClock().now())

        def bind(conn: sqlite3.Connection) -> None:
            for staff_id in ids[:bound]:
                people.bind_identity(conn, CHANNEL, str(BASE_USER + staff_id), staff_id, now)

        await app.db.transaction(bind)
    finally:
        await app.close()
    return [BASE_USER + staff_id for staff_id in ids[:bound]]


async def queue_burst(db: Path, count: int) -> list[str]:
    app = await App.open(db, {})
    texts = [f"通知 #{n:04d}" for n in range(count)]
    try:
        now = iso(SystemClock().now())

        def queue(conn: sqlite3.Connection) -> None:
            for n, text in enumerate(texts):
                message = NewMessage(None, CHANNEL, str(70000 + n), text, f"burst:{n}")
                outbox.enqueue(conn, message, now)

        await app.db.transaction(queue)
    finally:
        await app.close()
    return texts


def frontline_run(
    api: FakeBotAPI, db: Path, log: Path
) -> asyncio.Future[asyncio.subprocess.Process]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")},
        "PYTHONPATH": str(ROOT),
        "FRONTLINE_TELEGRAM_TOKEN": api.token,
        "FRONTLINE_TELEGRAM_API_URL": api.root_url,
        "FRONTLINE_TELEGRAM_POLL_TIMEOUT": "1",
        "FRONTLINE_LOG_LEVEL": "WARNING",
    }
    return asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--db",
            str(db),
            env=env,
            cwd=db.parent,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
    )


def helps(api: FakeBotAPI, user: int) -> int:
    return sum((m.text or "").startswith("您可以使用") for m in api.messages_to(user))


async def held_lock(folder: Path, seconds: float) -> tuple[int, int]:
    """(lost, doubled) replies of 10 people who wrote while the lock was held."""
    db = folder / "lock.db"
    users = await seed(db, 10)
    async with FakeBotAPI() as api:
        process = await frontline_run(api, db, folder / "lock.log")
        try:
            await api.wait_for_call("getUpdates", timeout=30)
            taken, release = threading.Event(), threading.Event()

            def hold() -> None:
                conn = sqlite3.connect(db, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                taken.set()
                release.wait(seconds)
                conn.execute("ROLLBACK")
                conn.close()

            threading.Thread(target=hold, daemon=True).start()
            await asyncio.to_thread(taken.wait, 10)
            for user in users:
                api.push_update(text_update(user, "/help"))
            await asyncio.sleep(seconds)
            release.set()
            with contextlib.suppress(TimeoutError):
                await api._wait_until(lambda: all(helps(api, u) for u in users), 30)
            await asyncio.sleep(0.5)
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
        got = [helps(api, user) for user in users]
    return sum(1 for n in got if n == 0), sum(n - 1 for n in got if n > 1)


async def second_process(folder: Path, count: int) -> tuple[int, int, int]:
    """(second's exit status, lost, doubled) for a burst with a second run started mid-way."""
    db = folder / "second.db"
    await seed(db, 0)
    texts = await queue_burst(db, count)
    async with FakeBotAPI() as api:
        api.delay(0.01)
        first = await frontline_run(api, db, folder / "first.log")
        try:
            await api.wait_for_sent(count=count // 10, timeout=60)
            second = await frontline_run(api, db, folder / "second.log")
            status = await asyncio.wait_for(second.wait(), 30)
            await api.wait_for_sent(count=count, timeout=120)
            await asyncio.sleep(0.5)
        finally:
            first.send_signal(signal.SIGTERM)
            await first.wait()
        counts = Counter(m.text for m in api.sent)
    lost = sum(1 for text in texts if counts[text] == 0)
    doubled = sum(n - 1 for n in counts.values() if n > 1)
    return status, lost, doubled


async def outage(folder: Path, minutes: int, chats: int) -> tuple[int, int, int, int]:
    """(failed, delivered, queued, chats out of order) after the channel was down."""
    clock = FakeClock(SystemClock().now())
    async with FakeBotAPI() as api:
        settings = TelegramSettings(token=api.token, api_url=api.root_url)
        bot = build_application(settings).bot
        async with bot:
            app = await App.open(
                folder / "outage.db", {CHANNEL: TelegramTransport(bot, folder)}, clock=clock
            )
            try:
                queued: list[tuple[int, str]] = []

                def queue(conn: sqlite3.Connection) -> None:
                    for n in range(chats * 3):
                        chat = 80000 + n % chats
                        text = f"{chat}: #{n // chats}"
                        queued.append((chat, text))
                        outbox.enqueue(
                            conn,
                            NewMessage(None, CHANNEL, str(chat), text, f"o:{n}"),
                            iso(clock.now()),
                        )

                await api.stop()  # connections refused from now on
                await app.db.transaction(queue)
                end = clock.now() + timedelta(minutes=minutes)
                while clock.now() < end:
                    await app.sender.drain(CHANNEL)
                    clock.advance(timedelta(seconds=10))
                await api.start()  # back, on the same port
                for _ in range(60):
                    await app.sender.drain(CHANNEL)
                    left = await app.db.read(
                        lambda c: c.execute(
                            "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"
                        ).fetchone()[0]
                    )
                    if not left:
                        break
                    clock.advance(timedelta(seconds=10))
                failed = await app.db.read(
                    lambda c: c.execute(
                        "SELECT COUNT(*) FROM outbox WHERE status = 'failed'"
                    ).fetchone()[0]
                )
            finally:
                await app.close()
        arrived: dict[int, list[str]] = {}
        for m in api.sent:
            arrived.setdefault(int(m.chat_id), []).append(m.text or "")
        expected: dict[int, list[str]] = {}
        for chat, text in queued:
            expected.setdefault(chat, []).append(text)
        disorder = sum(1 for chat in expected if arrived.get(chat) != expected[chat])
        delivered = sum(len(v) for v in arrived.values())
    return failed, delivered, len(queued), disorder


async def backlog_latency(folder: Path, backlog: int, probes: int) -> list[float]:
    """Seconds from queueing another person's reply to Telegram receiving it,
    while one chat has `backlog` messages waiting for its pace."""
    async with FakeBotAPI() as api:
        settings = TelegramSettings(token=api.token, api_url=api.root_url)
        bot = build_application(settings).bot
        async with bot:
            app = await App.open(
                folder / "backlog.db",
                {CHANNEL: TelegramTransport(bot, folder)},
                clock=SystemClock(),
            )
            runner = asyncio.create_task(app.sender.run())
            latencies: list[float] = []
            try:
                now = iso(SystemClock().now())

                def flood(conn: sqlite3.Connection) -> None:
                    for n in range(backlog):
                        message = NewMessage(None, CHANNEL, "424242", f"backlog {n}", f"b:{n}")
                        outbox.enqueue(conn, message, now)

                await app.db.transaction(flood)
                app.sender.wake()
                await api.wait_for_sent(424242, count=3, timeout=10)
                for n in range(probes):
                    chat = 90000 + n
                    queued_at = time.monotonic()
                    message = NewMessage(
                        None, CHANNEL, str(chat), f"reply {n}", f"r:{n}", priority=0
                    )
                    await app.db.transaction(
                        lambda conn, m=message: outbox.enqueue(conn, m, iso(SystemClock().now()))
                    )
                    app.sender.wake()
                    await api.wait_for_sent(chat, count=1, timeout=10)
                    latencies.append(time.monotonic() - queued_at)
                    await asyncio.sleep(0.2)
                behind = backlog - len(api.messages_to(424242))
                assert behind > 0, "the backlog drained before the probes: not a backlog"
            finally:
                await app.sender.stop(grace_seconds=1)
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
                await app.close()
    return latencies


async def taps(folder: Path, count: int, every: float) -> list[float]:
    """Seconds from a tap to the next question arriving at Telegram, through `serve()`."""
    db = folder / "taps.db"
    await seed(db, 20)
    conn = sqlite3.connect(db)
    (zhang,) = conn.execute("SELECT id FROM staff WHERE name = '张伟'").fetchone()
    conn.close()
    user = BASE_USER + zhang  # a worker of 保安部/一班
    async with FakeBotAPI() as api:
        settings = load_settings(
            db=db, telegram_token=api.token, telegram_api_url=api.root_url, telegram_poll_timeout=1
        )
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(settings, stop, started=started))
        latencies: list[float] = []
        try:
            await asyncio.wait_for(started.wait(), 30)
            api.push_update(text_update(user, "/check"))
            await api._wait_until(lambda: _question(api, user, 1) is not None, 10)
            for item in range(1, count + 1):
                asked = _question(api, user, item)
                assert asked is not None
                await asyncio.sleep(every)
                button = asked.reply_markup["inline_keyboard"][0][0]  # type: ignore[index]
                pressed = time.monotonic()
                api.push_update(
                    callback_update(
                        user,
                        button["callback_data"],
                        asked.message_id,
                        message_text=asked.text or "",
                    )
                )
                await api._wait_until(lambda i=item: _question(api, user, i + 1) is not None, 10)
                latencies.append(time.monotonic() - pressed)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    return latencies


def _question(api: FakeBotAPI, user: int, item: int):  # type: ignore[no-untyped-def]
    """The latest message or edit to `user` showing item `item` with its buttons."""
    marker = f"第 {item}/"
    for record in reversed([*api.sent, *api.edits]):
        if record.chat_id == user and marker in (record.text or "") and record.reply_markup:
            return record
    return None


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(quick: bool) -> None:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "media").mkdir()
        seconds = 2.0 if quick else 8.0
        lost, doubled = await held_lock(folder, seconds)
        print(
            f"held write lock {seconds:.0f} s, 10 people write: lost {lost},"
            f" doubled {doubled}  (target 0, 0)"
        )

        burst = 100 if quick else 300
        status, lost, doubled = await second_process(folder, burst)
        print(
            f"second frontline run mid-burst of {burst}: it exited {status}; lost {lost},"
            f" doubled {doubled}  (target exit 2, 0, 0)"
        )

        failed, delivered, queued, disorder = await outage(folder, 6, 20 if quick else 100)
        print(
            f"6-minute outage: failed {failed}, delivered {delivered}/{queued},"
            f" chats out of order {disorder}  (target 0, all, 0)"
        )

        latencies = await backlog_latency(folder, 200, 5 if quick else 20)
        print(
            f"reply behind a 200-message backlog: p50 {p(latencies, 0.5) * 1000:.0f} ms,"
            f" p99 {p(latencies, 0.99) * 1000:.0f} ms  (target p99 < 1000 ms;"
            f" ratio {p(latencies, 0.99) / 1.0:.2f} of the target)"
        )

        tapped = await taps(folder, 5, 1.5)  # the check has six items: five taps move on
        median = statistics.median(tapped)
        print(
            f"tap to next question at one tap per 1.5 s: median {median * 1000:.0f} ms,"
            f" max {max(tapped) * 1000:.0f} ms  (target median < 300 ms;"
            f" ratio {median / 0.3:.2f} of the target)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run for CI")
    asyncio.run(main(parser.parse_args().quick))
