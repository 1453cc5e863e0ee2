"""Several processes on one PostgreSQL database: two Databases (two pools, as two
`frontline run` processes would have) under two engines. One person's events never
run at once in any process, and the second sees what the first did; the same
update delivered to both is processed once; different people are not held up.

Where a test needs two events to meet, it holds the person's lock itself (as a
third process in the middle of an event would) until both are waiting for it, so
that nothing depends on timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from bot.app import App
from bot.clock import iso
from bot.engine import Ctx, Engine, Outcome, Router
from bot.model import Inbound, InboundKind
from bot.store import conversations, people
from bot.store.db import Database
from tests.conftest import CHANNEL, START, import_demo
from tests.postgresql import Cluster


class Counting:
    """A command that counts in the person's conversation, and watches how many of
    its runs overlap (across both engines: they share this test's threads)."""

    def __init__(self) -> None:
        self.runs = 0
        self.inside = 0
        self.most_inside = 0
        self._guard = threading.Lock()

    def command(self, ctx: Ctx, args: str) -> None:
        with self._guard:
            self.runs += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            seen = int(ctx.conversation.data.get("n", 0))
            ctx.goto("", "", n=seen + 1)
            ctx.say_text(str(seen + 1))
        finally:
            with self._guard:
                self.inside -= 1


@dataclass
class Two:
    url: str
    engines: tuple[Engine, Engine]
    counting: Counting
    users: dict[str, str]  # name -> channel user id


@pytest.fixture
async def two(postgresql_cluster: Cluster, clock: Any) -> AsyncIterator[Two]:
    url = postgresql_cluster.fresh()
    first = await App.open(url, {}, clock=clock)
    second = await Database.open(url)
    staff = await import_demo(first)
    users = {name: f"u{staff[name]}" for name in ("张伟", "刘强")}
    for name, user_id in users.items():
        await first.db.transaction(
            lambda conn, n=name, u=user_id: people.bind_identity(
                conn, CHANNEL, u, staff[n], iso(START)
            )
        )
    counting = Counting()
    router = Router(commands={"count": counting.command})

    def engine(db: Database) -> Engine:
        return Engine(db, router, clock, default_language="en", default_timezone="Asia/Shanghai")

    yield Two(url, (engine(first.db), engine(second)), counting, users)
    await second.close()
    await first.close()
    postgresql_cluster.drop(url)


def count(user_id: str, event_id: str) -> Inbound:
    return Inbound(
        channel=CHANNEL, user_id=user_id, event_id=event_id, kind=InboundKind.COMMAND, text="/count"
    )


class Holder:
    """A third connection holding a person's lock in a transaction of its own."""

    def __init__(self, url: str, user_id: str) -> None:
        self.url = url
        self.key = conversations.person_key(CHANNEL, user_id)
        self.conn = psycopg.connect(url)
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.key,))

    def waiting(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
        return int(row[0]) if row else 0

    async def until_waiting(self, n: int) -> None:
        for _ in range(1000):
            if await asyncio.to_thread(self.waiting) >= n:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"fewer than {n} transactions ever waited for the lock")

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


async def replies(db: Database, user_id: str) -> list[str]:
    rows = await db.read(
        lambda conn: conn.execute(
            "SELECT text FROM outbox WHERE address = ? ORDER BY id", (user_id,)
        ).fetchall()
    )
    return [row["text"] for row in rows]


async def meet(holder: Holder, *sends: Callable[[], Any]) -> list[Outcome]:
    """Start every send while the holder has the lock; release once all wait."""
    tasks = [asyncio.ensure_future(send()) for send in sends]
    try:
        await holder.until_waiting(len(sends))
    finally:
        holder.release()
    return list(await asyncio.wait_for(asyncio.gather(*tasks), 30))


async def test_one_update_delivered_to_two_processes_at_once_is_processed_once(two: Two) -> None:
    a, b = two.engines
    user = two.users["张伟"]
    update = count(user, "tg:1001")
    holder = Holder(two.url, user)

    outcomes = await meet(holder, lambda: a.handle(update), lambda: b.handle(update))

    assert sorted(outcomes) == sorted([Outcome.HANDLED, Outcome.DUPLICATE])
    assert two.counting.runs == 1
    assert await replies(a.db, user) == ["1"]


async def test_one_persons_events_on_two_processes_run_one_after_the_other(two: Two) -> None:
    a, b = two.engines
    user = two.users["张伟"]
    holder = Holder(two.url, user)

    outcomes = await meet(
        holder, lambda: a.handle(count(user, "e1")), lambda: b.handle(count(user, "e2"))
    )

    assert outcomes == [Outcome.HANDLED, Outcome.HANDLED]
    # The second saw the first's state; neither ran beside the other, nor twice.
    assert sorted(await replies(a.db, user)) == ["1", "2"]
    assert two.counting.most_inside == 1
    assert two.counting.runs == 2


async def test_another_persons_event_is_not_held_up(two: Two) -> None:
    a, b = two.engines
    busy, other = two.users["张伟"], two.users["刘强"]
    holder = Holder(two.url, busy)
    waiting = asyncio.ensure_future(a.handle(count(busy, "e1")))
    try:
        await holder.until_waiting(1)
        # 张伟's event is stuck behind the lock; 刘强's runs on both processes.
        assert await asyncio.wait_for(b.handle(count(other, "e2")), 30) is Outcome.HANDLED
        assert await asyncio.wait_for(a.handle(count(other, "e3")), 30) is Outcome.HANDLED
        assert not waiting.done()
    finally:
        holder.release()
    assert await asyncio.wait_for(waiting, 30) is Outcome.HANDLED
    assert await replies(a.db, other) == ["1", "2"]
    assert await replies(a.db, busy) == ["1"]


async def test_a_dead_holder_releases_the_person(two: Two) -> None:
    """A process that dies mid-event (its connection gone) leaves no lock behind."""
    a, _ = two.engines
    user = two.users["张伟"]
    holder = Holder(two.url, user)
    waiting = asyncio.ensure_future(a.handle(count(user, "e1")))
    await holder.until_waiting(1)
    holder.conn.pgconn.finish()  # the socket closed, as by a SIGKILL: no ROLLBACK sent
    assert await asyncio.wait_for(waiting, 30) is Outcome.HANDLED
    assert await replies(a.db, user) == ["1"]
