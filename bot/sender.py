"""The sender drains the outbox: a queue per address, served fairly at the
channel's pace, with retries for transient failures (for as long as a long
outage lasts) and a final mark for permanent ones. It is the only code that
hands messages to channels, and it never sends a row twice."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol

from bot.clock import Clock, iso, parse_iso, woken
from bot.i18n import t
from bot.model import Outbound
from bot.store import media, outbox, people
from bot.store.db import Database
from bot.store.outbox import NewMessage

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Try again later (network trouble, a 5xx, a flood limit). `outage`: the
    channel itself is unreachable (not a limit on one chat)."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, outage: bool | None = None
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.outage = retry_after is None if outage is None else outage


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
    """When to try a row again. Transient failures (no network, 5xx, flood
    limits) are retried with capped backoff for `give_up_after`: a channel's
    outage of a day loses nothing. Only permanent answers fail a row at once."""

    give_up_after: timedelta = timedelta(hours=48)
    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    min_seconds: float = 1.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt; never zero, so a retry is never
        claimed again inside the drain that failed it."""
        if retry_after is not None:
            return max(self.min_seconds, retry_after)
        backoff = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, min(attempts, 30) - 1))
        return backoff * random.uniform(0.8, 1.2)


# A channel that has failed every attempt this long is reported to admins.
OUTAGE_ALERT_AFTER = timedelta(minutes=10)
# While a channel is down one row at a time probes it, this often at most.
PROBE_SECONDS = (1.0, 60.0)


@dataclass
class Health:
    """What the sender knows of one channel's reachability."""

    down_since: datetime | None = None
    probe_at: datetime | None = None
    probe_seconds: float = PROBE_SECONDS[0]
    reported: bool = False
    last_error: str = ""


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

    async def ready(self, address: str | None) -> None:
        """Wait until the address's own limit would let a message go."""
        bucket = self.addresses.get(address)
        while bucket is not None and (wait := bucket.ready_in()) > 0:
            await asyncio.sleep(wait)

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
    """Delivers due outbox rows. Each address has its own queue, served by its
    own worker: one message at a time, replies before notices, otherwise in
    the order queued; different addresses go side by side and share the
    channel's pace fairly, so one person's backlog never delays another's
    reply. Notices of one kind that pile up for one person go as one digest."""

    def __init__(
        self,
        db: Database,
        transports: Mapping[str, Transport],
        clock: Clock,
        *,
        retry: Retry | None = None,
        parallel: int = 16,
        workers: int = 512,
        ready: Collection[str] | None = None,
        media_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.transports = dict(transports)
        self.clock = clock
        self.retry = retry or Retry()
        # Bot API calls in flight at once, per channel.
        self.parallel = parallel
        # Addresses served at once, per channel (most of them wait for their pace).
        self.workers = workers
        # Channels whose transport is up; the others' rows wait (see `enable`).
        self.ready: set[str] = set(self.transports if ready is None else ready)
        self.media_dir = media_dir
        self.health = {name: Health() for name in self.transports}
        self._wake = asyncio.Event()
        self._paces = {name: _Pace(transport) for name, transport in self.transports.items()}
        self._gates = {name: asyncio.Semaphore(parallel) for name in self.transports}
        self._serving: dict[tuple[str, str], asyncio.Task[int]] = {}
        self._stopping = False
        # The channels this deployment runs (None: any). Rows queued for another
        # channel are routed again to one that reaches the person.
        self.served: Collection[str] | None = None
        self._rerouted_at = 0.0
        # The channels whose sender this process is (None: every channel). With
        # several processes on PostgreSQL one process at a time sends on a channel
        # (bot/roles.py): `take` and `give_up` follow that role.
        self.held: set[str] | None = None

    def wake(self) -> None:
        """Called when a transaction has queued rows: look now, not at the next tick."""
        self._wake.set()

    def enable(self, channel: str) -> None:
        """The channel's transport is ready (after its start-up): deliver its rows."""
        self.ready.add(channel)
        self.wake()

    def take(self, channel: str) -> None:
        """This process is now the channel's sender (its rows left in flight by
        the previous one are back in the queue: `App.recover`)."""
        if self.held is not None:
            self.held.add(channel)
        self.wake()

    def give_up(self, channel: str) -> None:
        """Another process sends on the channel now: claim nothing more for it
        (messages already claimed still go)."""
        if self.held is not None:
            self.held.discard(channel)

    def holds(self, channel: str) -> bool:
        return self.held is None or channel in self.held

    async def run(self, idle_seconds: float = 1.0) -> None:
        """Hand each address with due rows to a worker, until `stop`; sleeps
        until woken or `idle_seconds` pass (for retries)."""
        while not self._stopping:
            self._wake.clear()
            await self._reroute()
            for channel in [c for c in self.transports if c in self.ready and self.holds(c)]:
                await self._dispatch(channel)
            await woken(self._wake, idle_seconds)

    async def _reroute(self, every_seconds: float = 30.0) -> None:
        served = self.served
        if served is None or time.monotonic() - self._rerouted_at < every_seconds:
            return
        self._rerouted_at = time.monotonic()
        moved = await self.db.transaction(partial(outbox.reroute_unserved, served=served))
        if moved:
            log.warning("rows for channels this deployment does not run rerouted=%s", moved)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Take no new rows; let the deliveries in flight finish (at most
        `grace_seconds`), so that a clean restart sends nothing twice."""
        self._stopping = True
        self.wake()
        busy = list(self._serving.values())
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace_seconds)
            for task in late:
                task.cancel()
            if late:
                log.warning("sender stopped with %s deliveries unfinished", len(late))

    async def drain(self, channel: str, address: str | None = None) -> int:
        """Deliver every row of one channel (optionally one address) that is
        due now, and wait for it; return how many were handed over."""
        delivered = 0
        while True:
            if address is not None:
                return delivered + await self._serve(channel, address)
            heads = await self._find(channel, self.workers, busy=[])
            if not heads:
                return delivered
            done = await asyncio.gather(
                *(self._serve(channel, one, head) for one, head in heads.items())
            )
            if not sum(done):
                return delivered
            delivered += sum(done)

    async def _dispatch(self, channel: str) -> None:
        """Start a worker for each address of `channel` with a due row and none yet."""
        health = self.health[channel]
        now = self.clock.now()
        if health.down_since is not None:
            # Down: one probe at a time, not one failing call per person.
            if (health.probe_at and now < health.probe_at) or self._busy(channel):
                return
            room = 1
        else:
            room = self.workers - len(self._busy(channel))
        while room > 0:
            heads = await self._find(channel, room, busy=self._busy(channel))
            if not heads:
                return
            for address, head in heads.items():
                task = asyncio.create_task(self._serve(channel, address, head))
                self._serving[(channel, address)] = task
                task.add_done_callback(partial(self._served, (channel, address)))
            room -= len(heads)

    async def _find(self, channel: str, limit: int, busy: list[str]) -> dict[str, Head]:
        """Addresses with a due row, each with its first message already claimed
        where the address's pace lets it go now (one transaction for them all)."""
        pace = self._paces[channel]
        waiting = frozenset(
            address
            for address, bucket in pace.addresses.items()
            if address is not None and bucket.ready_in() > 0
        )
        return await self.db.transaction(
            partial(
                _claim_heads,
                channel=channel,
                now=iso(self.clock.now()),
                limit=limit,
                busy=busy,
                waiting=waiting,
            )
        )

    def _busy(self, channel: str) -> list[str]:
        return [address for (name, address) in self._serving if name == channel]

    def _served(self, key: tuple[str, str], task: asyncio.Task[int]) -> None:
        self._serving.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("sender worker failed channel=%s", key[0], exc_info=task.exception())
        self.wake()  # rows may have come for this address while it finished

    async def _serve(self, channel: str, address: str, head: Head | None = None) -> int:
        """One address's rows, one message at a time, until none is due.
        `head`: its first message, if the dispatcher claimed it already."""
        transport = self.transports[channel]
        pace = self._paces[channel]
        delivered = 0
        first = head.first if head else None
        while first or (not self._stopping and self.holds(channel)):
            if first:
                group, first = first, None
            elif head is not None and not head.more and delivered:
                break  # that was all; rows queued since wake the dispatcher
            else:
                # Rows that had to wait for the address's limit may go as one, where
                # the channel drops what exceeds it (`merges`).
                backlogged = getattr(transport, "merges", False) and pace.backlogged(address)
                # The address's own pace first: nothing is claimed while it waits.
                await pace.ready(address)
                group = await self.db.transaction(
                    partial(
                        _claim_next,
                        channel=channel,
                        address=address,
                        now=iso(self.clock.now()),
                        merge_any=backlogged,
                    )
                )
            if not group:
                break
            # Where the limit counts messages, not calls, editing one is free.
            free = getattr(transport, "free_edits", False) and group[0].replaces_id is not None
            await pace.acquire(address, personal=not free)
            async with self._gates[channel]:
                result = await self._deliver(transport, merged(group), group)
            if result is True:
                delivered += len(group)
            elif result is not False:
                break  # waiting for a retry: the rest waits behind it
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
        row = await self._with_media(transport, row)
        try:
            message_id = await transport.deliver(row, replaces)
        except TransientError as exc:
            return await self._retry_later(transport.name, row, every, exc)
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
        now = self.clock.now()
        sent_at = iso(now)
        health = self.health[transport.name]
        recovered = health.down_since is not None

        def sent(conn: sqlite3.Connection) -> None:
            for one in every:
                outbox.mark_sent(conn, one.id, message_id, sent_at)
            if recovered:
                outbox.retry_now(conn, transport.name, sent_at)
                if health.reported:
                    _tell_admins(conn, "delivery.channel_up", transport.name, sent_at, self.served)

        await self.db.transaction(sent)
        if recovered:
            log.warning(
                "channel reachable again channel=%s after=%.0fs",
                transport.name,
                (now - (health.down_since or now)).total_seconds(),
            )
            self.health[transport.name] = Health()
            self.wake()
        log.info(
            "delivered channel=%s outbox=%s staff=%s attempt=%s merged=%s",
            transport.name,
            row.id,
            row.staff_id,
            row.attempts,
            len(every),
        )
        return True

    async def _retry_later(
        self, channel: str, row: Outbound, every: list[Outbound], exc: TransientError
    ) -> bool | str:
        now = self.clock.now()
        queued = parse_iso(row.created_at) if row.created_at else now
        if now - queued >= self.retry.give_up_after:
            await self._fail(every, f"gave up after {row.attempts} attempts: {exc}")
            return False
        health = self.health[channel]
        report = False
        if exc.outage:
            if health.down_since is None:
                health.down_since = now
                log.warning("channel unreachable channel=%s error=%s", channel, exc)
            health.probe_at = now + timedelta(seconds=health.probe_seconds)
            health.probe_seconds = min(PROBE_SECONDS[1], health.probe_seconds * 2)
            health.last_error = str(exc)
            if not health.reported and now - health.down_since >= OUTAGE_ALERT_AFTER:
                health.reported = report = True
        delay = self.retry.delay(row.attempts, exc.retry_after)
        if exc.outage:
            delay = min(delay, PROBE_SECONDS[1])
        later = iso(now + timedelta(seconds=delay))
        reason = str(exc)

        def retry(conn: sqlite3.Connection) -> None:
            for one in every:
                outbox.mark_retry(conn, one.id, reason, later)
            if report:
                _tell_admins(
                    conn, "delivery.channel_down", channel, iso(now), self.served, error=reason
                )

        await self.db.transaction(retry)
        log.warning(
            "delivery retry channel=%s outbox=%s attempt=%s in=%.1fs reason=%s",
            channel,
            row.id,
            row.attempts,
            delay,
            exc,
        )
        return later

    async def _with_media(self, transport: Transport, row: Outbound) -> Outbound:
        """A stored photo that is gone: the channel's own copy where it keeps
        one (`keeps_files`), else the message without it and a note saying so."""
        if self.media_dir is None or not row.attachments:
            return row
        channel = transport.name
        keeps = getattr(transport, "keeps_files", False)
        kept: list[str] = []
        missing = 0
        for path in row.attachments:
            if path.startswith(REMOTE) or (self.media_dir / path).is_file():
                kept.append(path)
                continue
            remote: str | None = None
            if keeps:
                remote = await self.db.read(partial(media.file_id_for, channel=channel, path=path))
            log.warning(
                "media file missing channel=%s outbox=%s path=%s kept_copy=%s",
                channel,
                row.id,
                path,
                remote is not None,
            )
            if remote is not None:
                kept.append(REMOTE + remote)
            else:
                missing += 1
        if not missing:
            return replace(row, attachments=tuple(kept))
        language = await self.db.read(partial(people.language_of, staff_id=row.staff_id))
        note = t(language, "delivery.photo_missing", count=missing)
        return replace(row, attachments=tuple(kept), text=f"{row.text}\n{note}".strip())

    async def _fail(self, rows: list[Outbound], error: str, *, unreachable: bool = False) -> None:
        now = iso(self.clock.now())
        row = rows[0]

        def mark(conn: sqlite3.Connection) -> None:
            for one in rows:
                outbox.mark_failed(conn, one.id, error)
            if unreachable and row.channel and row.address:
                _report_unreachable(conn, row.channel, row.address, now, self.served)

        await self.db.transaction(mark)
        log.error("delivery failed channel=%s outbox=%s error=%s", row.channel, row.id, error)


# An attachment the channel keeps itself (its own file id), for a stored file that is gone.
REMOTE = "remote:"


def _claim_heads(
    conn: sqlite3.Connection,
    channel: str,
    now: str,
    limit: int,
    busy: list[str],
    waiting: frozenset[str],
) -> dict[str, Head]:
    """Addresses of `channel` with a due row (not `busy` ones), each with its
    next message claimed unless the address must wait for its pace first."""
    heads: dict[str, Head] = {}
    for address in outbox.due_addresses(conn, channel, now, limit, busy):
        if address in waiting:
            heads[address] = Head(None, more=True)
            continue
        group, more = _claim_run(conn, channel, address, now, merge_any=False)
        heads[address] = Head(group or None, more=more)
    return heads


@dataclass(frozen=True, slots=True)
class Head:
    """An address's first message, claimed by the dispatcher (None: the worker
    claims it once the address's pace allows), and whether more rows were due."""

    first: list[Outbound] | None
    more: bool


def _claim_next(
    conn: sqlite3.Connection, channel: str, address: str, now: str, merge_any: bool
) -> list[Outbound]:
    """Claim the next message of one address: one row, or the run of rows
    that go together as one digest."""
    return _claim_run(conn, channel, address, now, merge_any)[0]


def _claim_run(
    conn: sqlite3.Connection, channel: str, address: str, now: str, merge_any: bool
) -> tuple[list[Outbound], bool]:
    """The next message of one address, claimed, and whether more due rows
    were seen behind it."""
    rows = outbox.next_for(conn, channel, address, now, MERGE_MAX_ROWS)
    if not rows:
        return [], False
    group = outbox.claim(conn, digest_run(rows, merge_any=merge_any))
    return group, len(rows) > len(group)


# Merged messages: at most this many, this long together.
MERGE_MAX_ROWS = 20
MERGE_MAX_CHARS = 1500
MERGE_SEPARATOR = "\n——\n"


def _plain(row: Outbound) -> bool:
    return not row.buttons and not row.attachments and row.replaces_id is None


def digest_run(queue: list[Outbound], *, merge_any: bool = False) -> list[Outbound]:
    """The rows from the first on that go as one message (at least the first):
    plain notices of the first one's kind that piled up, or, where the channel
    drops what exceeds its limits (`merge_any`), any plain rows."""
    first = queue[0]
    run = [first]
    if not _plain(first) or (first.kind is None and not merge_any):
        return run
    size = len(first.text)
    for row in queue[1:MERGE_MAX_ROWS]:
        size += len(MERGE_SEPARATOR) + len(row.text)
        same = row.kind == first.kind and row.priority == first.priority
        if not _plain(row) or size > MERGE_MAX_CHARS or not (same or merge_any):
            break
        run.append(row)
    return run


def merged(rows: list[Outbound]) -> Outbound:
    """One message carrying the texts of several, oldest first."""
    if len(rows) == 1:
        return rows[0]
    return replace(rows[0], text=MERGE_SEPARATOR.join(row.text for row in rows))


def _tell_admins(
    conn: sqlite3.Connection,
    key: str,
    channel: str,
    now: str,
    served: Collection[str] | None,
    **params: str,
) -> None:
    """One message to every admin, on a channel other than `channel` where
    they have one (else it waits for that one to come back)."""
    for admin in people.admins(conn):
        route = people.reachable_channel(conn, admin.id, avoid=channel, served=served)
        outbox.queue(
            conn,
            NewMessage(
                staff_id=admin.id,
                channel=route[0] if route else None,
                address=route[1] if route else None,
                text=t(admin.language, key, channel=channel, **params),
                idempotency_key=f"{key}:{channel}:{now}:{admin.id}",
            ),
            now,
        )


def _report_unreachable(
    conn: sqlite3.Connection,
    channel: str,
    address: str,
    now: str,
    served: Collection[str] | None = None,
) -> None:
    """Mark the identity unreachable; the first time, tell every admin."""
    person = people.mark_unreachable(conn, channel, address)
    if person is None:
        return
    for admin in people.admins(conn):
        if admin.id == person.id:
            continue
        route = people.reachable_channel(conn, admin.id, served=served)
        outbox.queue(
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
