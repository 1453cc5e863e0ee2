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
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Protocol

from bot.model import Outbound
from bot.store import outbox
from bot.store.db import Database
from schedules.clock import Clock, iso

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Try again later (network trouble, a 5xx, a flood limit)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (the person blocked the bot, a malformed request)."""


class Transport(Protocol):
    """A channel's way out. `deliver` returns the channel's message id."""

    name: str
    # Pace: messages per second for the whole channel, and the least gap
    # between two messages to one address (0 means no limit).
    per_second: float
    per_address_gap: float

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


class _Pace:
    """Spaces deliveries: a channel-wide rate and a per-address gap."""

    def __init__(self, per_second: float, per_address_gap: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.gap = per_address_gap
        self.next_any = 0.0
        self.next_for: dict[str, float] = {}

    def wait_for(self, address: str | None) -> float:
        now = time.monotonic()
        ready = max(self.next_any, self.next_for.get(address or "", 0.0))
        return max(0.0, ready - now)

    def sent(self, address: str | None) -> None:
        now = time.monotonic()
        self.next_any = max(now, self.next_any) + self.interval
        if self.gap:
            self.next_for[address or ""] = now + self.gap


class Sender:
    def __init__(
        self,
        db: Database,
        transports: Mapping[str, Transport],
        clock: Clock,
        *,
        retry: Retry | None = None,
        batch: int = 100,
    ) -> None:
        self.db = db
        self.transports = dict(transports)
        self.clock = clock
        self.retry = retry or Retry()
        self.batch = batch
        self._wake = asyncio.Event()
        self._paces = {
            name: _Pace(t.per_second, t.per_address_gap) for name, t in self.transports.items()
        }

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
        transport = self.transports[channel]
        pace = self._paces[channel]
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
            # A person reads messages in the order they were queued: once one
            # waits for a retry, the later ones to the same address wait too.
            held_back: dict[str | None, str] = {}
            for row in rows:
                if row.address in held_back:
                    until = held_back[row.address]
                    await self.db.transaction(
                        partial(outbox.postpone, outbox_id=row.id, until=until)
                    )
                    continue
                wait = pace.wait_for(row.address)
                if wait:
                    await asyncio.sleep(wait)
                result = await self._deliver(transport, row)
                pace.sent(row.address)
                if result is True:
                    delivered += 1
                elif result is not False:
                    held_back[row.address] = result

    async def _deliver(self, transport: Transport, row: Outbound) -> bool | str:
        """True if delivered, False if failed for good, else the time of the retry."""
        replaces = None
        if row.replaces_id is not None:
            replaces = await self.db.read(
                lambda conn: outbox.channel_message_id(conn, row.replaces_id or 0)
            )
        try:
            message_id = await transport.deliver(row, replaces)
        except TransientError as exc:
            if row.attempts >= self.retry.max_attempts:
                await self._fail(row, f"gave up after {row.attempts} attempts: {exc}")
                return False
            delay = self.retry.delay(row.attempts, exc.retry_after)
            later = iso(self.clock.now() + timedelta(seconds=delay))
            reason = str(exc)
            await self.db.transaction(lambda conn: outbox.mark_retry(conn, row.id, reason, later))
            log.warning(
                "delivery retry channel=%s outbox=%s attempt=%s in=%.1fs reason=%s",
                transport.name,
                row.id,
                row.attempts,
                delay,
                exc,
            )
            return later
        except PermanentError as exc:
            await self._fail(row, str(exc))
            return False
        except Exception as exc:  # a bug in a transport: keep the row, tell the admins' log
            log.exception("delivery crashed channel=%s outbox=%s", transport.name, row.id)
            await self._fail(row, f"{type(exc).__name__}: {exc}")
            return False
        sent_at = iso(self.clock.now())
        await self.db.transaction(lambda conn: outbox.mark_sent(conn, row.id, message_id, sent_at))
        log.info(
            "delivered channel=%s outbox=%s staff=%s attempt=%s",
            transport.name,
            row.id,
            row.staff_id,
            row.attempts,
        )
        return True

    async def _fail(self, row: Outbound, error: str) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            outbox.mark_failed(conn, row.id, error)

        await self.db.transaction(mark)
        log.error("delivery failed channel=%s outbox=%s error=%s", row.channel, row.id, error)
