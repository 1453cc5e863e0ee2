"""The scheduler: fires due reminder rows. The database is the source of
truth; APScheduler only decides when to look (every half second) and when to
plan ahead. Each reminder is acted on and marked in one transaction, so it
fires exactly once across crashes; what fell due while the process was down
is handled at start by its kind's rule (sent late, or dropped and counted)."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from bot.clock import Clock, iso, parse_iso
from bot.engine import Visitor
from bot.store import reminders
from bot.store.db import Database
from bot.store.reminders import Reminder

log = logging.getLogger(__name__)

# Fired later than this after its due time, a reminder counts as late.
LATE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Kind:
    """What one kind of reminder does. `fire` queues its messages through the
    visitor and returns False when the reminder no longer applies (the hazard
    was closed, the person left), which drops it."""

    fire: Callable[[Visitor, Reminder, bool], bool]
    # A reminder this late is dropped (and counted), not fired: a nudge for a
    # shift that has ended helps nobody. None: always fire, marked late.
    drop_if_late_by: timedelta | None = None


@dataclass
class Tally:
    fired: int = 0
    late: int = 0
    dropped: int = 0
    failed: int = 0
    lateness: list[float] = field(default_factory=list)  # seconds, fired ones


def quiet_apscheduler() -> None:
    """APScheduler logs every run of a job at INFO ("Running job ...", "executed
    successfully"): four lines a second for looking, which is not news; what a
    look fires is logged by us. Its warnings and errors still show, and a level
    an operator set for its loggers is left alone."""
    aps = logging.getLogger("apscheduler")
    if aps.level == logging.NOTSET:
        aps.setLevel(logging.WARNING)


# Plans reminder rows ahead of time (shift prompts for the next days ...).
Planner = Callable[..., int]  # (conn, *, now) -> reminders planned


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        kinds: dict[str, Kind],
        *,
        planners: list[Planner] | None = None,
        language: str = "zh-CN",
        timezone: str,
        on_commit: Callable[[], None] | None = None,
        batch: int = 500,
    ) -> None:
        self.db = db
        self.clock = clock
        self.kinds = kinds
        self.planners = planners or []
        self.language = language
        self.timezone = timezone
        self.on_commit = on_commit
        self.batch = batch
        self.tally = Tally()
        # The channels this deployment delivers on (None: any); see Visitor.served.
        self.served: Collection[str] | None = None
        self._aps: AsyncIOScheduler | None = None

    # -- life cycle ---------------------------------------------------------------------
    async def start(self, tick_seconds: float = 0.5, plan_minutes: float = 10) -> None:
        """Catch up on what fell due while down, plan ahead, then keep looking."""
        await self.plan()
        await self.tick()
        quiet_apscheduler()
        self._aps = AsyncIOScheduler()
        self._aps.add_job(
            self.tick, "interval", seconds=tick_seconds, max_instances=1, coalesce=True
        )
        self._aps.add_job(
            self.plan, "interval", minutes=plan_minutes, max_instances=1, coalesce=True
        )
        self._aps.start()

    async def stop(self) -> None:
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)

    # -- work ---------------------------------------------------------------------------
    async def plan(self) -> int:
        now = self.clock.now()
        planned = 0
        for planner in self.planners:
            planned += await self.db.transaction(functools.partial(planner, now=now))
        if planned:
            log.info("planned reminders=%s", planned)
        return planned

    async def tick(self) -> Tally:
        """Fire everything due now, in batches; returns this tick's tally."""
        tally = Tally()
        while True:
            count, batch = await self.db.transaction(
                functools.partial(self._fire_batch, now=self.clock.now())
            )
            self._add(batch, into=tally)
            tally.lateness += batch.lateness
            if count and self.on_commit:
                self.on_commit()
            if count < self.batch:
                break
        self._add(tally)
        return tally

    def _fire_batch(self, conn: sqlite3.Connection, now: datetime) -> tuple[int, Tally]:
        """A batch with its own tally: on PostgreSQL a colliding transaction is
        rerun, and only the attempt that committed may count."""
        tally = Tally()
        return self._fire_due(conn, now, tally), tally

    def _fire_due(self, conn: sqlite3.Connection, now: datetime, tally: Tally) -> int:
        due = reminders.due(conn, iso(now), self.batch)
        for reminder in due:
            self._fire_one(conn, reminder, now, tally)
        return len(due)

    def _fire_one(
        self, conn: sqlite3.Connection, reminder: Reminder, now: datetime, tally: Tally
    ) -> None:
        lateness = now - parse_iso(reminder.due_at)
        late = lateness > LATE_AFTER
        kind = self.kinds.get(reminder.kind)
        if kind is None:
            log.error("reminder of unknown kind id=%s kind=%s", reminder.id, reminder.kind)
            reminders.finish(conn, reminder.id, "failed", iso(now), late)
            tally.failed += 1
            return
        if kind.drop_if_late_by is not None and lateness > kind.drop_if_late_by:
            reminders.finish(conn, reminder.id, "dropped", iso(now), late)
            tally.dropped += 1
            return
        visitor = Visitor(
            conn,
            channel="system",
            user_id="",
            address="",
            key_prefix=f"reminder:{reminder.id}",
            now=now,
            language=self.language,
            default_timezone=self.timezone,
            served=self.served,
        )
        conn.execute("SAVEPOINT reminder")
        try:
            applies = kind.fire(visitor, reminder, late)
            visitor._flush()
        except Exception:
            conn.execute("ROLLBACK TO reminder")
            log.exception("reminder failed id=%s kind=%s", reminder.id, reminder.kind)
            reminders.finish(conn, reminder.id, "failed", iso(now), late)
            tally.failed += 1
        else:
            reminders.finish(conn, reminder.id, "done" if applies else "dropped", iso(now), late)
            if applies:
                tally.fired += 1
                tally.late += int(late)
                tally.lateness.append(lateness.total_seconds())
            else:
                tally.dropped += 1
        conn.execute("RELEASE reminder")

    def _add(self, tally: Tally, into: Tally | None = None) -> None:
        into = into or self.tally
        into.fired += tally.fired
        into.late += tally.late
        into.dropped += tally.dropped
        into.failed += tally.failed
