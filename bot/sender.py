"""The sender drains the outbox: per channel, at the channel's pace, with
retries for transient failures and a final mark for permanent ones. It is the
only code that hands messages to channels, and it never sends a row twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Protocol

from bot.i18n import t
from bot.model import Outbound
from bot.store import outbox, people
from bot.store.db import Database
from bot.store.outbox import NewMessage
from schedules.clock import Clock, iso

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Try again later (network trouble, a 5xx, a flood limit)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (a malformed request, an unknown chat)."""


class Unreachable(PermanentError):
    """The channel will not deliver to this address any more (the person
    blocked the bot). The identity is marked unreachable and admins are told once."""


class Transport(Protocol):
    """A channel's way out. `deliver` returns the channel's message id."""

    name: str
    # Messages per second for the whole channel (0: no limit).
    per_second: float

    def limit(self, address: str | None) -> tuple[float, float]:
        """(messages per second, burst) for one address; (0, 0) for no limit."""
        ...

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Retry:
    max_attempts: int = 8
    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    min_seconds: float = 1.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt; never zero, so a retry is never
        claimed again inside the drain that failed it."""
        if retry_after is not None:
            return max(self.min_seconds, retry_after)
        backoff = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, attempts - 1))
        return backoff * random.uniform(0.8, 1.2)


class Bucket:
    """A token bucket: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def wait(self) -> float:
        """Take a token; return how long to wait before using it (0: now)."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def ready_in(self) -> float:
        """How long until a token is there (0: now), without taking it."""
        if self.rate <= 0:
            return 0.0
        tokens = min(self.burst, self.tokens + (time.monotonic() - self.stamp) * self.rate)
        # A hair short of a token is a token: float dust must not keep a sender waiting.
        return 0.0 if tokens >= 1 - 1e-9 else (1 - tokens) / self.rate


class _Pace:
    """A channel's pace: one bucket for the channel, one per address."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        # No saved-up burst for the channel: a full second of tokens on top of the
        # rate would let twice the per-second limit out in the first second.
        self.channel = Bucket(transport.per_second, 1.0)
        self.addresses: dict[str | None, Bucket] = {}

    async def acquire(self, address: str | None, *, personal: bool = True) -> None:
        """Wait for the channel's pace and, if `personal`, the address's."""
        if not personal:
            wait = self.channel.wait()
            if wait > 0:
                await asyncio.sleep(wait)
            return
        bucket = self.addresses.get(address)
        if bucket is None:
            bucket = self.addresses[address] = Bucket(*self.transport.limit(address))
        # The address's token is taken when the message goes, not before the wait
        # for the channel: its bucket must count the time the message really left.
        while (wait := bucket.ready_in()) > 0:
            await asyncio.sleep(wait)
        wait = self.channel.wait()
        if wait > 0:
            await asyncio.sleep(wait)
        bucket.wait()  # the address's token, now that the message goes

    def backlogged(self, address: str | None) -> bool:
        """Whether the next message to `address` would have to wait for its limit."""
        bucket = self.addresses.get(address)
        return bucket is not None and bucket.ready_in() > 0


class Sender:
    """Delivers due outbox rows. Messages to one address go one at a time, in
    the order they were queued; different addresses go side by side, up to
    `parallel` at once, within the channel's pace."""

    def __init__(
        self,
        db: Database,
        transports: Mapping[str, Transport],
        clock: Clock,
        *,
        retry: Retry | None = None,
        batch: int = 200,
        parallel: int = 16,
    ) -> None:
        self.db = db
        self.transports = dict(transports)
        self.clock = clock
        self.retry = retry or Retry()
        self.batch = batch
        self.parallel = parallel
        self._wake = asyncio.Event()
        self._paces = {name: _Pace(transport) for name, transport in self.transports.items()}

    def wake(self) -> None:
        """Called when a transaction has queued rows: look now, not at the next tick."""
        self._wake.set()

    async def run(self, idle_seconds: float = 1.0) -> None:
        """Drain forever; sleeps until woken or `idle_seconds` pass (for retries)."""
        while True:
            self._wake.clear()
            sent = 0
            for channel in self.transports:
                sent += await self.drain(channel)
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle_seconds)

    async def drain(self, channel: str, address: str | None = None) -> int:
        """Deliver every due row of one channel (optionally one address);
        return how many were handed over successfully."""
        delivered = 0
        while True:
            rows = await self.db.transaction(
                partial(
                    outbox.claim_due,
                    channel=channel,
                    now=iso(self.clock.now()),
                    limit=self.batch,
                    address=address,
                )
            )
            if not rows:
                return delivered
            queues: dict[str | None, list[Outbound]] = {}
            for row in rows:
                queues.setdefault(row.address, []).append(row)
            gate = asyncio.Semaphore(self.parallel)
            results = await asyncio.gather(
                *(self._deliver_in_order(channel, queue, gate) for queue in queues.values())
            )
            delivered += sum(results)

    async def _deliver_in_order(
        self, channel: str, queue: list[Outbound], gate: asyncio.Semaphore
    ) -> int:
        """One address's rows, oldest first. Once one waits for a retry, the
        later ones wait with it: a person reads messages in the order queued.
        Where the channel drops what exceeds its limits (`merges`), plain
        messages that pile up behind the address's limit go as one."""
        transport = self.transports[channel]
        pace = self._paces[channel]
        delivered = 0
        index = 0
        async with gate:
            while index < len(queue):
                group = [queue[index]]
                if getattr(transport, "merges", False) and pace.backlogged(queue[index].address):
                    group = mergeable_run(queue, index)
                # Where the limit counts messages, not calls, editing one is free.
                free = getattr(transport, "free_edits", False) and group[0].replaces_id is not None
                await pace.acquire(group[0].address, personal=not free)
                result = await self._deliver(transport, merged(group), group)
                index += len(group)
                if result is True:
                    delivered += len(group)
                elif result is not False:
                    later = queue[index:]
                    if later:
                        await self.db.transaction(partial(_postpone, rows=later, until=result))
                    break
        return delivered

    async def _deliver(
        self, transport: Transport, row: Outbound, rows: list[Outbound] | None = None
    ) -> bool | str:
        """True if delivered, False if failed for good, else the time of the retry.
        `rows`: the outbox rows `row` stands for, when several were merged into it."""
        every = rows or [row]
        replaces = None
        if row.replaces_id is not None:
            replaces = await self.db.read(
                lambda conn: outbox.channel_message_id(conn, row.replaces_id or 0)
            )
        try:
            message_id = await transport.deliver(row, replaces)
        except TransientError as exc:
            if row.attempts >= self.retry.max_attempts:
                await self._fail(every, f"gave up after {row.attempts} attempts: {exc}")
                return False
            delay = self.retry.delay(row.attempts, exc.retry_after)
            later = iso(self.clock.now() + timedelta(seconds=delay))
            reason = str(exc)

            def retry(conn: sqlite3.Connection) -> None:
                for one in every:
                    outbox.mark_retry(conn, one.id, reason, later)

            await self.db.transaction(retry)
            log.warning(
                "delivery retry channel=%s outbox=%s attempt=%s in=%.1fs reason=%s",
                transport.name,
                row.id,
                row.attempts,
                delay,
                exc,
            )
            return later
        except Unreachable as exc:
            await self._fail(every, str(exc), unreachable=True)
            return False
        except PermanentError as exc:
            await self._fail(every, str(exc))
            return False
        except Exception as exc:  # a bug in a transport: keep the row, tell the admins' log
            log.exception("delivery crashed channel=%s outbox=%s", transport.name, row.id)
            await self._fail(every, f"{type(exc).__name__}: {exc}")
            return False
        sent_at = iso(self.clock.now())

        def sent(conn: sqlite3.Connection) -> None:
            for one in every:
                outbox.mark_sent(conn, one.id, message_id, sent_at)

        await self.db.transaction(sent)
        log.info(
            "delivered channel=%s outbox=%s staff=%s attempt=%s merged=%s",
            transport.name,
            row.id,
            row.staff_id,
            row.attempts,
            len(every),
        )
        return True

    async def _fail(self, rows: list[Outbound], error: str, *, unreachable: bool = False) -> None:
        now = iso(self.clock.now())
        row = rows[0]

        def mark(conn: sqlite3.Connection) -> None:
            for one in rows:
                outbox.mark_failed(conn, one.id, error)
            if unreachable and row.channel and row.address:
                _report_unreachable(conn, row.channel, row.address, now)

        await self.db.transaction(mark)
        log.error("delivery failed channel=%s outbox=%s error=%s", row.channel, row.id, error)


# Merged messages: at most this many, this long together.
MERGE_MAX_ROWS = 20
MERGE_MAX_CHARS = 1500
MERGE_SEPARATOR = "\n——\n"


def _plain(row: Outbound) -> bool:
    return not row.buttons and not row.attachments and row.replaces_id is None


def mergeable_run(queue: list[Outbound], start: int) -> list[Outbound]:
    """The plain rows from `start` on that can go as one message (at least the first)."""
    run = [queue[start]]
    if not _plain(queue[start]):
        return run
    size = len(queue[start].text)
    for row in queue[start + 1 : start + MERGE_MAX_ROWS]:
        size += len(MERGE_SEPARATOR) + len(row.text)
        if not _plain(row) or size > MERGE_MAX_CHARS:
            break
        run.append(row)
    return run


def merged(rows: list[Outbound]) -> Outbound:
    """One message carrying the texts of several, oldest first."""
    if len(rows) == 1:
        return rows[0]
    return replace(rows[0], text=MERGE_SEPARATOR.join(row.text for row in rows))


def _postpone(conn: sqlite3.Connection, rows: list[Outbound], until: str) -> None:
    for row in rows:
        outbox.postpone(conn, row.id, until)


def _report_unreachable(conn: sqlite3.Connection, channel: str, address: str, now: str) -> None:
    """Mark the identity unreachable; the first time, tell every admin."""
    person = people.mark_unreachable(conn, channel, address)
    if person is None:
        return
    for admin in people.admins(conn):
        if admin.id == person.id:
            continue
        route = people.reachable_channel(conn, admin.id)
        outbox.enqueue(
            conn,
            NewMessage(
                staff_id=admin.id,
                channel=route[0] if route else None,
                address=route[1] if route else None,
                text=t(admin.language, "admin.unreachable", name=person.name, channel=channel),
                idempotency_key=f"unreachable:{channel}:{address}:{now}:{admin.id}",
            ),
            now,
        )
