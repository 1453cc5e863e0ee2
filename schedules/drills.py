"""Drill reminders (REGULATIONS §4): everyone in the drill's area is told in
advance (3 days and 1 hour before, or at once when the drill is planned at
shorter notice), the organiser is reminded, and a yearly compliance watch
tells admins of units with fewer than two drills planned by 1 March or none
done by 1 July."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.calendar import exact_moment
from bot.clock import iso, local_date, local_time_text, parse_iso
from bot.engine import Visitor
from bot.i18n import t
from bot.model import Staff
from bot.store import drills, notices, people, reminders
from bot.store.reminders import Reminder
from schedules.duties import drill_rules
from schedules.runner import Kind

WATCH_AT = time(9, 0)


def _advance() -> tuple[timedelta, ...]:
    rules = drill_rules()
    return tuple(
        ahead
        for ahead in (
            timedelta(days=rules.notice_days_before),
            timedelta(hours=rules.notice_hours_before),
        )
        if ahead
    )


@dataclass(frozen=True, slots=True)
class Announcement:
    """What planning a drill set going: how many people in the area were told
    at once (an advance notice whose time had already passed), how many the
    area holds, and when the notices still to come go out."""

    told_now: int
    audience: int
    later: tuple[datetime, ...]


def plan(visitor: Visitor, drill_id: int, at: datetime) -> Announcement:
    """Schedule a new drill's advance notices; a notice whose time has already
    passed goes out now, once however many have passed, so that a drill
    planned at short notice is still announced."""
    now = visitor.now
    later: list[datetime] = []
    passed = False
    for ahead in _advance():
        due = at - ahead
        if due <= now:
            passed = True
            continue
        hours = int(ahead.total_seconds() // 3600)
        reminders.plan(
            visitor.conn,
            kind="drill_notice",
            due_at=iso(due),
            target={"drill": drill_id},
            key=f"drill:{drill_id}:notice:{hours}h",
            now=iso(now),
        )
        later.append(due)
    drill = drills.get(visitor.conn, drill_id)
    assert drill is not None  # just planned in this transaction
    audience = [p for p in _audience(visitor.conn, drill) if p.id != int(drill["organiser_id"])]
    told = tell(visitor, drill, f"drill:{drill_id}:notice:now") if passed else 0
    return Announcement(told_now=told, audience=len(audience), later=tuple(sorted(later)))


def _planned(visitor: Visitor, reminder: Reminder) -> sqlite3.Row | None:
    drill = drills.get(visitor.conn, int(reminder.target["drill"]))
    if drill is None or drill["state"] != "planned" or parse_iso(drill["at"]) <= visitor.now:
        return None  # cancelled, recorded, or its time has passed: telling now helps nobody
    return drill


def _audience(conn: sqlite3.Connection, drill: sqlite3.Row) -> list[Staff]:
    """Everyone in the drill's area, and its organiser."""
    found = set(notices.subtree_staff(conn, int(drill["unit_id"]))) | {int(drill["organiser_id"])}
    people_found = (people.staff_by_id(conn, staff_id) for staff_id in sorted(found))
    return [person for person in people_found if person is not None and person.active]


def tell(visitor: Visitor, drill: sqlite3.Row, key: str, *, organiser: bool = False) -> int:
    """Announce the drill to everyone in its area (and remind the organiser,
    with `organiser`); returns how many people of the area were told."""
    unit_id = int(drill["unit_id"])
    zone = visitor.unit_timezone(unit_id)
    when = local_time_text(parse_iso(drill["at"]), zone)
    area = people.unit_path(visitor.conn, unit_id)
    told = 0
    for person in _audience(visitor.conn, drill):
        is_organiser = person.id == int(drill["organiser_id"])
        if is_organiser and not organiser:
            continue
        visitor.notify(
            person,
            "drill.organiser_reminder" if is_organiser else "drill.notice",
            idempotency_key=f"{key}:{person.id}",
            when=when,
            area=area,
            kind=visitor_kind(person.language, str(drill["kind"])),
            drill=drill["id"],
        )
        told += 0 if is_organiser else 1
    return told


def notice(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    drill = _planned(visitor, reminder)
    if drill is None:
        return False
    tell(visitor, drill, reminder.key, organiser=True)
    return True


def visitor_kind(language: str, kind: str) -> str:
    return t(language, f"drill.kind_{kind}")


def make_watch_planner(default_timezone: str) -> Callable[..., int]:
    def plan_watch(conn: sqlite3.Connection, *, now: datetime) -> int:
        """The compliance checks of this year and next, in the default time zone
        (the watch looks at every unit at once)."""
        planned = 0
        year = local_date(now, default_timezone).year
        for check_year in (year, year + 1):
            rules = drill_rules()
            for name, (month, day) in (
                ("planned", rules.month_day("planned_by")),
                ("done", rules.month_day("done_by")),
            ):
                due = exact_moment(date(check_year, month, day), WATCH_AT, default_timezone)
                if due > now:
                    planned += reminders.schedule(
                        conn,
                        kind="drill_watch",
                        due_at=iso(due),
                        target={"year": check_year, "check": name},
                        key=f"drill-watch:{check_year}:{name}",
                        now=iso(now),
                    )
        return planned

    return plan_watch


def watch(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    """Units with staff that fall short: fewer than two drills planned, or none done."""
    year = int(reminder.target["year"])
    check = str(reminder.target["check"])
    minimum = drill_rules().min_planned
    short: list[str] = []
    for unit in drills.units(visitor.conn):
        if not people.members(visitor.conn, int(unit["id"])):
            continue
        chain = [int(row["id"]) for row in people.unit_chain(visitor.conn, int(unit["id"]))]
        if check == "planned":
            if drills.count_for_year(visitor.conn, chain, year, done=False) < minimum:
                short.append(str(unit["path"]))
        elif drills.count_for_year(visitor.conn, chain, year, done=True) == 0:
            short.append(str(unit["path"]))
    if not short:
        return True
    for admin in people.admins(visitor.conn):
        visitor.notify(
            admin,
            f"drill.watch_{check}",
            idempotency_key=f"{reminder.key}:{admin.id}",
            year=year,
            units="\n".join(short),
            minimum=minimum,
        )
    return True


KINDS = {
    "drill_notice": Kind(notice),
    "drill_watch": Kind(watch),
}
