"""Annual fire-safety training (REGULATIONS §4): 30 days before a year has
passed since a person's last recorded training, they and their supervisor are
reminded; someone with no training on record is flagged to their supervisor
at once (a new hire must be trained before their first shift)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from bot.calendar import exact_moment
from bot.clock import iso
from bot.engine import Visitor
from bot.store import people, reminders, trainings
from bot.store.reminders import Reminder
from schedules.runner import Kind

KIND = "fire"
VALID_FOR = timedelta(days=365)
WARN_BEFORE = timedelta(days=30)
REMIND_AT = time(9, 0)


def make_planner(default_timezone: str) -> Callable[..., int]:
    def plan(conn: sqlite3.Connection, *, now: datetime) -> int:
        planned = 0
        for staff_id, last in trainings.last_held(conn, KIND).items():
            if last is None:
                planned += reminders.schedule(
                    conn,
                    kind="training_missing",
                    due_at=iso(now),
                    target={"staff": staff_id},
                    key=f"training:{staff_id}:missing",
                    now=iso(now),
                )
                continue
            zone = people.unit_timezone(conn, _unit(conn, staff_id), default_timezone)
            warn_day = date.fromisoformat(last) + VALID_FOR - WARN_BEFORE
            due = exact_moment(warn_day, REMIND_AT, zone)
            planned += reminders.schedule(
                conn,
                kind="training_due",
                due_at=iso(max(due, now)),
                target={"staff": staff_id, "last": last},
                key=f"training:{staff_id}:{last}:due",
                now=iso(now),
            )
        return planned

    return plan


def _unit(conn: sqlite3.Connection, staff_id: int) -> int:
    person = people.staff_by_id(conn, staff_id)
    return person.unit_id if person else 0


def missing(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    person = people.staff_by_id(visitor.conn, int(reminder.target["staff"]))
    if person is None or not person.active:
        return False
    if trainings.latest(visitor.conn, person.id, KIND) is not None:
        return False  # trained in the meantime
    for supervisor in people.supervisors_for_unit(visitor.conn, person.unit_id):
        if supervisor.id != person.id:
            visitor.notify(
                supervisor,
                "training.missing",
                idempotency_key=f"{reminder.key}:{supervisor.id}",
                name=person.name,
                unit=people.unit_path(visitor.conn, person.unit_id),
            )
    return True


def due(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    person = people.staff_by_id(visitor.conn, int(reminder.target["staff"]))
    if person is None or not person.active:
        return False
    if trainings.latest(visitor.conn, person.id, KIND) != reminder.target["last"]:
        return False  # a newer training is on record
    expires = (date.fromisoformat(str(reminder.target["last"])) + VALID_FOR).isoformat()
    visitor.notify(
        person, "training.due", idempotency_key=f"{reminder.key}:{person.id}", expires=expires
    )
    for supervisor in people.supervisors_for_unit(visitor.conn, person.unit_id):
        if supervisor.id != person.id:
            visitor.notify(
                supervisor,
                "training.due_supervisor",
                idempotency_key=f"{reminder.key}:{supervisor.id}",
                name=person.name,
                expires=expires,
            )
    return True


KINDS = {"training_missing": Kind(missing), "training_due": Kind(due)}
