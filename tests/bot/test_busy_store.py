"""A busy database (an import, a backup, an admin's sqlite3 shell holding the
write lock) is waited out: every event that arrives meanwhile is processed
once the lock goes away, and nobody's reply is lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from bot.app import App
from bot.engine import Outcome
from bot.model import InboundKind
from bot.store import db as store_db

# SQLite's write lock and its writer thread's wait.
pytestmark = pytest.mark.sqlite_only

NAMES = ("张伟", "刘强", "李静", "王建国")


def hold_write_lock(path: str, seconds: float, taken: threading.Event) -> threading.Thread:
    """Another connection takes the write lock (BEGIN IMMEDIATE) and keeps it."""

    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        threading.Event().wait(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_events_during_a_held_write_lock_are_all_processed_afterwards(
    app: App, person, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lock held well past SQLite's own busy timeout: the old code gave up on it.
    await app.db.transaction(
        lambda conn: conn.execute(f"PRAGMA busy_timeout={store_db.BUSY_TIMEOUT_MS // 10}")
    )
    people = [await person(name) for name in NAMES]
    taken = threading.Event()
    holder = hold_write_lock(app.db.path, 1.5, taken)
    await asyncio.to_thread(taken.wait, 5)

    outcomes = await asyncio.gather(
        *(app.engine.handle(someone.inbound(InboundKind.COMMAND, "/help")) for someone in people)
    )
    await asyncio.to_thread(holder.join, 5)

    assert outcomes == [Outcome.HANDLED] * len(people)
    for someone in people:
        replies = await someone.replies()
        assert len(replies) == 1 and "/check" in replies[0]


def test_only_lock_refusals_count_as_busy() -> None:
    assert store_db.is_busy(sqlite3.OperationalError("database is locked"))
    assert store_db.is_busy(sqlite3.OperationalError("database table is locked"))
    assert not store_db.is_busy(sqlite3.OperationalError("no such table: x"))
    assert not store_db.is_busy(ValueError("locked"))
