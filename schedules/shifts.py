"""Shift-aware pre-shift check nudges (REGULATIONS §1.1): at each shift start
every worker on shift gets a prompt with a button that starts the check; some
minutes later those who have not done it get one nudge; later each supervisor
gets the picture for their unit. People on leave, and people no longer on the
roster, are left alone. A change of a unit's shifts or time zone re-plans its
reminders (and its sub-units') in the transaction that makes it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bot.calendar import WorkCalendar, shift_starts_on
from bot.checklists import load_all
from bot.clock import iso, local_date, local_time_text, parse_iso
from bot.engine import Visitor
from bot.i18n import t
from bot.model import Button, Staff
from bot.store import calendars, checklists, people, reminders
from bot.store.reminders import Reminder
from schedules.runner import Kind

CHECKLIST = "preshift"
PLAN_DAYS = 2  # today and tomorrow, in each unit's local time


def calendar_for(conn: sqlite3.Connection, unit_id: int, default_timezone: str) -> WorkCalendar:
    timezone = people.unit_timezone(conn, unit_id, default_timezone)
    row = calendars.calendar_row(conn, unit_id)
    if row is None:
        return WorkCalendar(timezone=timezone)
    starts = tuple(time.fromisoformat(s) for s in row["shift_starts"].split(",") if s)
    return WorkCalendar(timezone=timezone, shift_starts=starts, every_day=bool(row["every_day"]))


def offsets(conn: sqlite3.Connection, unit_id: int) -> tuple[timedelta, timedelta]:
    row = calendars.calendar_row(conn, unit_id)
    nudge, digest = (row["nudge_minutes"], row["digest_minutes"]) if row else (30, 60)
    return timedelta(minutes=nudge), timedelta(minutes=digest)


def make_planner(default_timezone: str) -> Callable[..., int]:
    def plan(conn: sqlite3.Connection, *, now: datetime) -> int:
        """Reminder rows for every staffed unit's shifts today and tomorrow."""
        return sum(
            _plan_unit(conn, unit_id, now, default_timezone, range(PLAN_DAYS))
            for unit_id in calendars.staffed_units(conn)
        )

    return plan


def _plan_unit(
    conn: sqlite3.Connection, unit_id: int, now: datetime, default_timezone: str, days: range
) -> int:
    """The unit's reminders still ahead for its shifts on local days `days` from today."""
    calendar = calendar_for(conn, unit_id, default_timezone)
    nudge, digest = offsets(conn, unit_id)
    today = local_date(now, calendar.timezone)
    planned = 0
    for day in (today + timedelta(days=n) for n in days):
        for start in shift_starts_on(calendar, day):
            target = {"unit": unit_id, "date": day.isoformat(), "start": iso(start)}
            for kind, due in (
                ("shift_prompt", start),
                ("shift_nudge", start + nudge),
                ("shift_digest", start + digest),
            ):
                if due > now:
                    planned += reminders.schedule(
                        conn,
                        kind=kind,
                        due_at=iso(due),
                        target=target,
                        key=f"{_stamp(unit_id)}{iso(start)}:{kind}",
                        now=iso(now),
                        # Withdrawn by a change that has since been undone: wanted again.
                        revive=True,
                    )
    return planned


def _stamp(unit_id: int) -> str:
    """Where the keys of a unit's shift reminders start."""
    return f"shift:{unit_id}:"


@dataclass(frozen=True, slots=True)
class ShiftSettings:
    """A unit's shifts as an admin sets them."""

    starts: tuple[time, ...]
    every_day: bool
    nudge_minutes: int
    digest_minutes: int


def change_unit(
    conn: sqlite3.Connection,
    unit_id: int,
    *,
    settings: ShiftSettings | None = None,
    timezone: str | None = None,
    now: datetime,
    default_timezone: str,
) -> int:
    """Set a unit's shifts, its time zone or both, and re-plan at once: the
    prompts, nudges and digests planned for it and the units below it (which
    inherit both unless they set their own) are cancelled, and those of the
    new settings planned. Returns how many are planned."""
    if settings is not None:
        calendars.set_calendar(
            conn,
            unit_id,
            shift_starts=",".join(start.strftime("%H:%M") for start in settings.starts),
            every_day=settings.every_day,
            nudge_minutes=settings.nudge_minutes,
            digest_minutes=settings.digest_minutes,
            now=iso(now),
        )
    if timezone is not None:
        people.set_unit_timezone(conn, unit_id, timezone)
    return replan(conn, unit_id, now=now, default_timezone=default_timezone)


def replan(conn: sqlite3.Connection, unit_id: int, *, now: datetime, default_timezone: str) -> int:
    """Cancel the pending shift reminders of the unit and every unit below it,
    and plan them again from the settings as they stand. Planning starts from
    yesterday: a late shift's digest may fall after midnight."""
    below = people.subtree_units(conn, unit_id)
    for unit in below:
        reminders.cancel(conn, _stamp(unit))
    staffed = set(calendars.staffed_units(conn))
    return sum(
        _plan_unit(conn, unit, now, default_timezone, range(-1, PLAN_DAYS))
        for unit in below
        if unit in staffed
    )


def _on_shift(visitor: Visitor, reminder: Reminder) -> tuple[list[Staff], dict[int, list[str]]]:
    """Who of the unit is at work that day (not on leave), and who has checked."""
    unit_id = int(reminder.target["unit"])
    day = str(reminder.target["date"])
    staff = people.members(visitor.conn, unit_id)
    away = calendars.on_leave(visitor.conn, [s.id for s in staff], day)
    present = [s for s in staff if s.id not in away]
    done = checklists.completed_on(visitor.conn, CHECKLIST, [s.id for s in present], day)
    return present, done


def prompt(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    present, done = _on_shift(visitor, reminder)
    for person in present:
        if person.id in done:
            continue
        visitor.notify(
            person,
            "shift.prompt",
            idempotency_key=f"{reminder.key}:{person.id}",
            buttons=[[Button(t(person.language, "shift.start_button"), "/check")]],
        )
    return True


def nudge(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    present, done = _on_shift(visitor, reminder)
    for person in present:
        if person.id not in done:
            visitor.notify(
                person,
                "shift.nudge",
                idempotency_key=f"{reminder.key}:{person.id}",
                buttons=[[Button(t(person.language, "shift.start_button"), "/check")]],
            )
    return True


def digest(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    """The supervisors' picture: who checked, who reported problems, who has not."""
    unit_id = int(reminder.target["unit"])
    present, done = _on_shift(visitor, reminder)
    if not present:
        return False
    start = parse_iso(str(reminder.target["start"]))
    unit = people.unit_path(visitor.conn, unit_id)
    timezone = visitor.unit_timezone(unit_id)
    items = {item.key: item.text for item in load_all()[CHECKLIST].items}
    for supervisor in people.supervisors_for_unit(visitor.conn, unit_id):
        lang = supervisor.language
        separator = t(lang, "common.list_separator")
        problems = [
            t(
                lang,
                "shift.digest_problem",
                name=p.name,
                # Item texts may hold the list separator themselves (、).
                items=t(lang, "shift.digest_item_separator").join(
                    items[key].get(lang) if key in items else key for key in done[p.id]
                ),
            )
            for p in present
            if done.get(p.id)
        ]
        missing = [p.name for p in present if p.id not in done]
        visitor.notify(
            supervisor,
            "shift.digest",
            idempotency_key=f"{reminder.key}:{supervisor.id}",
            unit=unit,
            start=local_time_text(start, timezone),
            done=len(done),
            total=len(present),
            problems="".join(problems) or t(lang, "shift.digest_no_problems"),
            missing=separator.join(missing) or t(lang, "shift.digest_none_missing"),
        )
    return True


KINDS = {
    "shift_prompt": Kind(prompt, drop_if_late_by=timedelta(minutes=30)),
    "shift_nudge": Kind(nudge, drop_if_late_by=timedelta(minutes=30)),
    "shift_digest": Kind(digest, drop_if_late_by=timedelta(hours=8)),
}
