"""Recurring duties from the regulations (daily inspection, monthly fire
inspection and meeting, quarterly specialist inspection, the year-end
meeting), defined in `duties.toml`: each owner is reminded when a period
starts, the duty is recorded against the occurrence it answers, and what is
not done by the deadline is escalated to the supervisor above the owner."""

from __future__ import annotations

import sqlite3
import tomllib
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.calendar import WorkCalendar, exact_moment, is_working_day
from bot.checklists import Text, load_all
from bot.clock import iso, local_date, local_time_text, parse_iso
from bot.engine import Visitor
from bot.i18n import t
from bot.model import Button, Role, Staff
from bot.store import duties, people, reminders
from bot.store.reminders import Reminder
from schedules.runner import Kind
from schedules.shifts import calendar_for

Cadence = Literal["daily", "monthly", "quarterly", "yearly"]


class Duty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    cadence: Cadence
    owner_role: Role
    checklist: str | None = None
    remind_at: time
    due_at: time
    title: Text


class DrillRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_planned: int = Field(default=2, ge=1, le=12)
    planned_by: str = Field(default="03-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
    done_by: str = Field(default="07-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
    notice_days_before: int = Field(default=3, ge=0, le=30)
    notice_hours_before: int = Field(default=1, ge=0, le=48)

    def month_day(self, which: str) -> tuple[int, int]:
        month, day = getattr(self, which).split("-")
        return int(month), int(day)


@cache
def _raw() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("duties.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def drill_rules() -> DrillRules:
    return DrillRules.model_validate(_raw().get("drills", {}))


@cache
def load() -> dict[str, Duty]:
    raw = _raw()
    found = {d.id: d for d in (Duty.model_validate(item) for item in raw["duty"])}
    checklists = load_all()
    for duty in found.values():
        if duty.checklist is not None and duty.checklist not in checklists:
            raise ValueError(f"duty {duty.id}: no checklist {duty.checklist!r}")
    return found


def periods(cadence: Cadence, today: date) -> Iterator[tuple[str, date, date]]:
    """(key, first day, last day) of the current period and the next."""
    if cadence == "daily":
        for day in (today, today + timedelta(days=1)):
            yield day.isoformat(), day, day
        return
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[cadence]
    first_month = ((today.month - 1) // months) * months + 1
    start = date(today.year, first_month, 1)
    for _ in range(2):
        end_month = start.month + months - 1
        end = _month_end(start.year, end_month)
        if cadence == "monthly":
            key = f"{start.year}-{start.month:02d}"
        elif cadence == "quarterly":
            key = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        else:
            key = str(start.year)
            start = date(start.year, 12, 1)  # the year-end meeting belongs to December
        yield key, start, end
        start = end + timedelta(days=1)


def _month_end(year: int, month: int) -> date:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return following - timedelta(days=1)


def _working_bounds(calendar: WorkCalendar, first: date, last: date) -> tuple[date, date]:
    start, end = first, last
    while start < last and not is_working_day(calendar, start):
        start += timedelta(days=1)
    while end > start and not is_working_day(calendar, end):
        end -= timedelta(days=1)
    return start, end


def make_planner(default_timezone: str) -> Callable[..., int]:
    def plan(conn: sqlite3.Connection, *, now: datetime) -> int:
        planned = 0
        for duty in load().values():
            for owner in owners(conn, duty):
                if duties.paused(conn, owner.unit_id, duty.id):
                    continue
                cadence = duties.cadence_for(conn, owner.unit_id, duty.id) or duty.cadence
                shaped = duty.model_copy(update={"cadence": cadence})
                planned += _plan_owner(conn, shaped, owner, now, default_timezone)
        return planned

    return plan


def owners(conn: sqlite3.Connection, duty: Duty) -> list[Staff]:
    """The role's holders, except in units where an admin named someone else."""
    named = duties.owner_overrides(conn, duty.id)
    found = {p.id: p for p in people.with_role(conn, duty.owner_role) if p.unit_id not in named}
    for staff_id in named.values():
        person = people.staff_by_id(conn, staff_id)
        if person is not None and person.active:
            found[person.id] = person
    return list(found.values())


def _plan_owner(
    conn: sqlite3.Connection, duty: Duty, owner: Staff, now: datetime, default_timezone: str
) -> int:
    calendar = calendar_for(conn, owner.unit_id, default_timezone)
    today = local_date(now, calendar.timezone)
    planned = 0
    for key, first, last in periods(duty.cadence, today):
        if duty.cadence == "daily" and not is_working_day(calendar, first):
            continue
        start_day, end_day = _working_bounds(calendar, first, last)
        starts = exact_moment(start_day, duty.remind_at, calendar.timezone)
        due = exact_moment(end_day, duty.due_at, calendar.timezone)
        if due <= now:
            continue
        occurrence = duties.occurrence(
            conn,
            duty=duty.id,
            staff_id=owner.id,
            period=key,
            starts_at=iso(starts),
            due_at=iso(due),
        )
        if occurrence is None:
            continue
        for kind, moment in (("duty_remind", max(starts, now)), ("duty_due", due)):
            planned += reminders.schedule(
                conn,
                kind=kind,
                due_at=iso(moment),
                target={"occurrence": occurrence},
                key=f"duty:{occurrence}:{kind}",
                now=iso(now),
            )
    return planned


def _open(visitor: Visitor, reminder: Reminder) -> tuple[Duty, Staff, sqlite3.Row] | None:
    row = duties.get(visitor.conn, int(reminder.target["occurrence"]))
    if row is None or row["done_at"]:
        return None
    duty = load().get(str(row["duty"]))
    owner = people.staff_by_id(visitor.conn, int(row["staff_id"]))
    if duty is None or owner is None or not owner.active:
        return None
    if duties.paused(visitor.conn, owner.unit_id, duty.id):
        return None
    return duty, owner, row


def button(duty: Duty, occurrence_id: int, language: str) -> Button:
    if duty.checklist is not None:
        command = load_all()[duty.checklist].command
        return Button(t(language, "duty.start_button"), f"/{command}")
    return Button(t(language, "duty.done_button"), f"/done {occurrence_id}")


def remind(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    found = _open(visitor, reminder)
    if found is None:
        return False
    duty, owner, row = found
    zone = visitor.unit_timezone(owner.unit_id)
    visitor.notify(
        owner,
        "duty.remind",
        idempotency_key=f"{reminder.key}:{owner.id}",
        buttons=[[button(duty, int(row["id"]), owner.language)]],
        title=duty.title.get(owner.language),
        due=local_time_text(parse_iso(row["due_at"]), zone),
    )
    return True


def overdue(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    """Not done by the deadline: tell the owner, escalate above them."""
    found = _open(visitor, reminder)
    if found is None:
        return False
    duty, owner, row = found
    above = [
        s for s in people.supervisors_for_unit(visitor.conn, owner.unit_id) if s.id != owner.id
    ]
    if not above:
        chain = people.unit_chain(visitor.conn, owner.unit_id)
        above = (
            people.supervisors_for_unit(visitor.conn, int(chain[1]["id"])) if len(chain) > 1 else []
        )
    if not above:
        above = [a for a in people.admins(visitor.conn) if a.id != owner.id]
    visitor.notify(
        owner,
        "duty.overdue",
        idempotency_key=f"{reminder.key}:{owner.id}",
        buttons=[[button(duty, int(row["id"]), owner.language)]],
        title=duty.title.get(owner.language),
    )
    for boss in above:
        visitor.notify(
            boss,
            "duty.escalated",
            idempotency_key=f"{reminder.key}:{boss.id}",
            title=duty.title.get(boss.language),
            name=owner.name,
            unit=people.unit_path(visitor.conn, owner.unit_id),
            period=row["period"],
        )
    duties.mark_escalated(visitor.conn, int(row["id"]), visitor.now_iso)
    return True


def checklist_done(conn: sqlite3.Connection, checklist: str, staff_id: int, now: str) -> None:
    """A completed checklist answers the owner's open duty that asks for it."""
    for duty in load().values():
        if duty.checklist == checklist:
            duties.complete(conn, duty.id, staff_id, now)


KINDS = {
    "duty_remind": Kind(remind, drop_if_late_by=timedelta(hours=12)),
    "duty_due": Kind(overdue),
}
