"""Roles held by one process at a time: of two processes on one PostgreSQL
database only one holds a role; a holder whose connection is lost knows it at its next
check; when the holder stops, the other takes the role over.
On SQLite the one process always holds every role."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bot.roles import Role
from bot.store import outbox
from bot.store.db import Database
from bot.store.leases import listen
from bot.store.outbox import NewMessage
from tests.postgresql import Cluster

RETRY = 0.02  # the retry period, short in tests


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(RETRY / 4)
    raise AssertionError(f"never: {what}")


async def test_on_sqlite_every_role_is_held(tmp_path: Path) -> None:
    events: list[str] = []

    async def taken() -> None:
        events.append("taken")

    async def lost() -> None:
        events.append("lost")

    role = Role(tmp_path / "frontline.db", "scheduler", retry=RETRY, on_taken=taken, on_lost=lost)
    task = asyncio.ensure_future(role.run())
    await until(role.held.is_set, "held")
    await asyncio.sleep(RETRY * 3)
    assert events == ["taken"]  # once, not at every check
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert events == ["taken", "lost"] and not role.held.is_set()


async def test_a_failed_take_over_gives_the_role_back_and_tries_again(
    postgresql_cluster: Cluster,
) -> None:
    url = postgresql_cluster.fresh()
    attempts: list[int] = []

    async def taken() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("the database is busy")

    a = Role(url, "scheduler", retry=RETRY, on_taken=taken)
    b = Role(url, "scheduler", retry=RETRY)
    first = asyncio.ensure_future(a.run())
    try:
        await until(a.held.is_set, "held at the second attempt")
        assert len(attempts) == 2
        # Between the attempts the lock was free: b could have had it. Now it cannot.
        second = asyncio.ensure_future(b.run())
        await asyncio.sleep(RETRY * 3)
        assert not b.held.is_set()
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        postgresql_cluster.drop(url)


async def test_one_holder_and_a_take_over_when_its_connection_is_lost(
    postgresql_cluster: Cluster,
) -> None:
    url = postgresql_cluster.fresh()
    a, b = Role(url, "sender:telegram", retry=RETRY), Role(url, "sender:telegram", retry=RETRY)
    other = Role(url, "scheduler", retry=RETRY)
    tasks = [asyncio.ensure_future(role.run()) for role in (a, b, other)]
    try:
        await until(lambda: a.held.is_set() or b.held.is_set(), "a holder")
        await until(other.held.is_set, "the other role held beside it")
        for _ in range(10):  # several retry periods: still one holder
            await asyncio.sleep(RETRY)
            assert a.held.is_set() != b.held.is_set()
        holder = a if a.held.is_set() else b
        pid = holder._lease.backend_pid if holder._lease else None
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The holder notices at its next check; the role is then free for either
        # (the old holder may take it again: it stopped its work meanwhile).
        await until(lambda: holder.losses == 1, "the holder knows it lost the role")
        await until(lambda: a.held.is_set() or b.held.is_set(), "a holder again")
        await asyncio.sleep(RETRY * 3)
        assert a.held.is_set() != b.held.is_set()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        postgresql_cluster.drop(url)


async def test_a_stopped_holder_hands_the_role_over(postgresql_cluster: Cluster) -> None:
    url = postgresql_cluster.fresh()
    a, b = Role(url, "scheduler", retry=RETRY), Role(url, "scheduler", retry=RETRY)
    first = asyncio.ensure_future(a.run())
    try:
        await until(a.held.is_set, "the first holds it")
        second = asyncio.ensure_future(b.run())
        await asyncio.sleep(RETRY * 3)
        assert not b.held.is_set()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert not a.held.is_set()
        await until(b.held.is_set, "the second takes over")
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
    finally:
        postgresql_cluster.drop(url)


async def test_rows_queued_by_any_process_are_heard_at_commit_and_not_on_rollback(
    postgresql_cluster: Cluster,
) -> None:
    url = postgresql_cluster.fresh()
    db = await Database.open(url)
    heard: list[float] = []
    listening = asyncio.ensure_future(listen(url, outbox.NOTIFY_CHANNEL, lambda: heard.append(1)))

    def queue(key: str, fail: bool) -> Callable[[sqlite3.Connection], None]:
        def work(conn: sqlite3.Connection) -> None:
            message = NewMessage(None, "telegram", "42", "hello", idempotency_key=key)
            outbox.enqueue(conn, message, "2026-12-03T00:00:00+00:00")
            if fail:
                raise RuntimeError("the unit of work fails after queueing")

        return work

    try:
        await until(lambda: len(heard) == 1, "the listener connected")  # called once at connect
        with pytest.raises(RuntimeError):
            await db.transaction(queue("a", fail=True))
        await db.transaction(queue("b", fail=False))
        await until(lambda: len(heard) == 2, "the commit heard")
        await asyncio.sleep(RETRY * 5)
        assert len(heard) == 2  # the rolled-back row was never announced
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await db.close()
        postgresql_cluster.drop(url)
