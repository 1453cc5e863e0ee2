"""The weekly picture: each Monday at 08:00 in their unit's time zone, every
supervisor gets the previous Monday–Sunday of their unit and the units below
it, as a short text and one chart. One reminder per supervisor per week."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from bot.calendar import exact_moment
from bot.clock import iso, local_date
from bot.engine import Visitor
from bot.i18n import t
from bot.model import Role, UserError
from bot.stats import compose, week_of
from bot.store import people, reminders
from bot.store.reminders import Reminder
from schedules.runner import Kind

KIND = "weekly_picture"
SEND_AT = time(8, 0)


def make_planner(default_timezone: str) -> Callable[..., int]:
    def plan(conn: sqlite3.Connection, *, now: datetime) -> int:
        """This Monday's send (while it is still Monday) and next Monday's."""
        planned = 0
        for supervisor in people.with_role(conn, Role.SUPERVISOR):
            zone = people.unit_timezone(conn, supervisor.unit_id, default_timezone)
            today = local_date(now, zone)
            monday = week_of(today).first
            mondays = [monday + timedelta(days=7)]
            if today == monday:
                mondays.insert(0, monday)
            for day in mondays:
                planned += _schedule(conn, supervisor.id, day, zone, now)
        return planned

    return plan


def _schedule(
    conn: sqlite3.Connection, staff_id: int, monday: date, zone: str, now: datetime
) -> int:
    try:
        due = exact_moment(monday, SEND_AT, zone)
    except UserError:  # 08:00 skipped or repeated by a clock change: nothing sensible to send
        return 0
    return int(
        reminders.schedule(
            conn,
            kind=KIND,
            due_at=iso(max(due, now)),
            target={"staff": staff_id, "monday": monday.isoformat()},
            key=f"weekly:{staff_id}:{monday.isoformat()}",
            now=iso(now),
        )
    )


def send(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    person = people.staff_by_id(visitor.conn, int(reminder.target["staff"]))
    if person is None or not person.active or not person.has(Role.SUPERVISOR):
        return False
    zone = visitor.unit_timezone(person.unit_id)
    week = week_of(date.fromisoformat(str(reminder.target["monday"])) - timedelta(days=7))
    text, chart = compose(
        visitor.conn,
        language=person.language,
        unit_ids=people.subtree_units(visitor.conn, person.unit_id),
        scope=people.unit_path(visitor.conn, person.unit_id),
        period=week,
        timezone=zone,
        now=visitor.now,
    )
    visitor.notify_text(
        person,
        f"{text}\n{t(person.language, 'stats.weekly')}",
        idempotency_key=f"{reminder.key}:{person.id}",
        attachments=(chart,),
    )
    return True


# Late by more than a day (the service was down over Monday): the week is stale news.
KINDS = {KIND: Kind(send, drop_if_late_by=timedelta(days=1))}
