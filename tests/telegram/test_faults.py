"""`frontline run` as a real process under the faults of a first week in
production: a database held busy by someone else, a kill -9 in the middle,
a second process on the same database, an update nobody can parse, a bad
token, Telegram unreachable at start, SIGTERM mid-burst. The fake Bot API
server runs in the test; the bot is a child process talking to it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import import_demo

from bot.app import App
from bot.clock import SystemClock, iso
from bot.store import outbox, people
from bot.store.outbox import NewMessage
from tests.telegram.fakebotapi import FakeBotAPI, text_update

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 10
BASE_USER = 9000  # Telegram user id of staff member n: BASE_USER + n


async def seed(db: Path, bound: int = PEOPLE) -> list[int]:
    """The demo organisation with `bound` people signed in on Telegram; their user ids."""
    app = await App.open(db, {})
    try:
        org = await import_demo(app)
        ids = sorted(org.values())[:bound]
        now = iso(SystemClock().now())

        def bind(conn: sqlite3.Connection) -> None:
            for staff_id in ids:
                people.bind_identity(conn, "telegram", str(BASE_USER + staff_id), staff_id, now)

        await app.db.transaction(bind)
    finally:
        await app.close()
    return [BASE_USER + staff_id for staff_id in ids]


class Run:
    """One `frontline run` child process."""

    def __init__(self, api: FakeBotAPI, db: Path, **env: str) -> None:
        self.api = api
        self.db = db
        self.stderr_path = db.parent / f"run-{id(self)}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")},
            "PYTHONPATH": str(ROOT),
            "FRONTLINE_TELEGRAM_TOKEN": api.token,
            "FRONTLINE_TELEGRAM_API_URL": api.root_url,
            "FRONTLINE_TELEGRAM_POLL_TIMEOUT": "1",
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Run:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--db",
            str(self.db),
            cwd=self.db.parent,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.stderr_path.open("wb"),
        )
        return self

    @property
    def log(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def stop(self) -> int:
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else 0
        self.signal(signal.SIGTERM)
        return await self.wait()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def runs() -> AsyncIterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        if run.process is not None and run.process.returncode is None:
            run.process.kill()
            await run.process.wait()


async def launch(runs: list[Run], api: FakeBotAPI, db: Path, **env: str) -> Run:
    run = await Run(api, db, **env).start()
    runs.append(run)
    return run


def hold_write_lock(db: Path, released: threading.Event, taken: threading.Event) -> None:
    """Another connection (an import, a backup, a sqlite3 shell) holds the write lock."""

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        released.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    threading.Thread(target=hold, daemon=True).start()
    taken.wait(10)


def helps(api: FakeBotAPI, user: int) -> list[str]:
    """The answers to /help a person received (reminders may arrive beside them)."""
    return [m.text or "" for m in api.messages_to(user) if (m.text or "").startswith("您可以使用")]


async def wait_for_help(api: FakeBotAPI, user: int, timeout: float = 30) -> None:
    await api._wait_until(lambda: bool(helps(api, user)), timeout)


async def test_updates_during_a_held_write_lock_are_all_answered_afterwards(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    users = await seed(db)
    await launch(runs, api, db)
    await api.wait_for_call("getUpdates", timeout=30)
    released, taken = threading.Event(), threading.Event()
    await asyncio.to_thread(hold_write_lock, db, released, taken)
    try:
        for user in users:
            api.push_update(text_update(user, "/help"))
        # Held for longer than SQLite's own busy timeout: the old bot dropped them here.
        await asyncio.sleep(2.5)
        assert not any(helps(api, user) for user in users)
    finally:
        released.set()
    for user in users:
        await wait_for_help(api, user)
    assert all(len(helps(api, user)) == 1 for user in users)
    assert "database busy" in runs[0].log


async def test_killed_while_the_database_is_busy_loses_nothing(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    users = await seed(db)
    first = await launch(runs, api, db)
    await api.wait_for_call("getUpdates", timeout=30)
    released, taken = threading.Event(), threading.Event()
    await asyncio.to_thread(hold_write_lock, db, released, taken)
    try:
        for user in users:
            api.push_update(text_update(user, "/help"))
        await asyncio.sleep(1.5)  # the long poll hands the batch over; the writer waits
        first.process.kill()  # type: ignore[union-attr]
        await first.wait()
    finally:
        released.set()
    await launch(runs, api, db)
    for user in users:
        await wait_for_help(api, user)
    await asyncio.sleep(0.5)  # nothing more arrives
    assert [len(helps(api, user)) for user in users] == [1] * len(users)


async def test_a_second_run_on_the_same_database_refuses_and_changes_nothing(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    users = await seed(db)
    first = await launch(runs, api, db)
    await api.wait_for_call("getUpdates", timeout=30)
    # Rows the first process is delivering must stay its own.
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO outbox (staff_id, channel, address, text, idempotency_key, status,"
        " next_attempt_at, created_at) VALUES (NULL, 'telegram', '1', 'x', 'k', 'sending', '', '')"
    )
    conn.commit()
    conn.close()
    second = await launch(runs, api, db)
    assert await second.wait() == 2
    lines = [line for line in second.log.splitlines() if line.strip()]
    assert len(lines) == 1 and "another frontline run holds" in lines[0], second.log
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM outbox WHERE idempotency_key = 'k'").fetchone() == (
        "sending",
    )
    conn.close()
    # The first carries on.
    api.push_update(text_update(users[0], "/help"))
    await wait_for_help(api, users[0])
    assert first.process is not None and first.process.returncode is None


async def test_an_update_that_cannot_be_parsed_is_skipped_with_one_line(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    users = await seed(db)
    run = await launch(runs, api, db)
    await api.wait_for_call("getUpdates", timeout=30)
    poison = {
        "update_id": api.next_update_id(),
        # A message whose sender lacks required fields, carrying a name and text.
        "message": {
            "message_id": 1,
            "chat": {"id": users[0], "type": "private"},
            "from": {"id": users[0], "first_name": "张秘密"},
            "text": "机密",
        },
    }
    api.push_update(poison)
    api.push_update(text_update(users[0], "/help"))
    await wait_for_help(api, users[0])
    await run.stop()
    warnings = [line for line in run.log.splitlines() if "cannot be parsed" in line]
    assert len(warnings) == 1 and f"event={poison['update_id']}" in warnings[0]
    assert "CRITICAL" not in run.log and "张秘密" not in run.log and "机密" not in run.log
    polls = [call for call in api.requests if call.method == "getUpdates"]
    assert polls[-1].params.get("allowed_updates") == ["message", "callback_query"]


async def test_sigterm_mid_burst_finishes_what_is_in_flight_and_restart_doubles_nothing(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    await seed(db, bound=0)
    app = await App.open(db, {})
    texts = [f"通知 #{n:03d}" for n in range(150)]
    try:
        now = iso(SystemClock().now())

        def queue(conn: sqlite3.Connection) -> None:
            for n, text in enumerate(texts):
                outbox.enqueue(
                    conn,
                    NewMessage(None, "telegram", str(7000 + n), text, f"burst:{n}"),
                    now,
                )

        await app.db.transaction(queue)
    finally:
        await app.close()
    api.delay(0.05)  # each call takes a while, so that many are in flight
    run = await launch(runs, api, db)
    await api.wait_for_sent(count=20, timeout=30)
    run.signal(signal.SIGTERM)
    assert await run.wait(timeout=20) == 0
    api.delay(0)
    await launch(runs, api, db)
    await api.wait_for_sent(count=len(texts), timeout=60)
    await asyncio.sleep(0.5)
    counts = Counter(m.text for m in api.sent)
    assert set(counts) == set(texts)
    assert max(counts.values()) == 1, [t for t, c in counts.items() if c > 1]


async def test_a_refused_token_stops_with_one_line_that_hides_it(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    await seed(db, bound=0)
    wrong = "999:WRONG-SECRET-TOKEN"
    run = await launch(runs, api, db, FRONTLINE_TELEGRAM_TOKEN=wrong)
    assert await run.wait() == 2
    lines = [line for line in run.log.splitlines() if line.strip()]
    assert lines[-1] == "bad setting FRONTLINE_TELEGRAM_TOKEN: Telegram refused the token"
    assert "Traceback" not in run.log and "WRONG-SECRET" not in run.log


async def test_telegram_unreachable_at_start_is_retried_and_nothing_fails(
    api: FakeBotAPI, tmp_path: Path, runs: list[Run]
) -> None:
    db = tmp_path / "frontline.db"
    users = await seed(db)
    app = await App.open(db, {})
    try:
        staff_id = users[0] - BASE_USER
        await app.db.transaction(
            lambda conn: outbox.enqueue(
                conn,
                NewMessage(staff_id, "telegram", str(users[0]), "queued before start", "early"),
                iso(SystemClock().now()),
            )
        )
    finally:
        await app.close()
    api.fail_next("getMe", 502, times=2)
    run = await launch(runs, api, db)
    await api.wait_for_sent(users[0], count=1, timeout=30)
    assert run.process is not None and run.process.returncode is None
    await run.stop()
    attempts = [line for line in run.log.splitlines() if "unreachable at start" in line]
    assert len(attempts) == 2
    # The sender waited for the transport: the first delivery went at the first try.
    assert "delivery retry" not in run.log
    conn = sqlite3.connect(db)
    assert conn.execute(
        "SELECT attempts FROM outbox WHERE idempotency_key = 'early'"
    ).fetchone() == (1,)
    conn.close()


def test_run_help_names_every_channel(capsys: pytest.CaptureFixture[str]) -> None:
    from bot import cli

    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    shown = capsys.readouterr().out
    assert "WeCom" in shown and "Telegram" in shown and "SQLite" in shown
