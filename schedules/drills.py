"""Drill reminders (REGULATIONS §4): everyone in the drill's area is told in
advance (3 days and 1 hour before), the organiser is reminded, and a yearly
compliance watch tells admins of units with fewer than two drills planned by
1 March or none done by 1 July."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from bot.engine import Visitor
from bot.i18n import t
from bot.store import drills, notices, people, reminders
from bot.store.reminders import Reminder
from schedules.calendar import exact_moment
from schedules.clock import iso, local_date, local_time_text, parse_iso
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


def plan(conn: sqlite3.Connection, drill_id: int, at: datetime, now: datetime) -> int:
    """Schedule a new drill's notices; returns how many will go out."""
    planned = 0
    for ahead in _advance():
        due = at - ahead
        if due > now:
            hours = int(ahead.total_seconds() // 3600)
            planned += reminders.schedule(
                conn,
                kind="drill_notice",
                due_at=iso(due),
                target={"drill": drill_id},
                key=f"drill:{drill_id}:notice:{hours}h",
                now=iso(now),
            )
    return planned


def _planned(visitor: Visitor, reminder: Reminder) -> sqlite3.Row | None:
    drill = drills.get(visitor.conn, int(reminder.target["drill"]))
    if drill is None or drill["state"] != "planned" or parse_iso(drill["at"]) <= visitor.now:
        return None  # cancelled, recorded, or its time has passed: telling now helps nobody
    return drill


def notice(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    drill = _planned(visitor, reminder)
    if drill is None:
        return False
    unit_id = int(drill["unit_id"])
    zone = visitor.unit_timezone(unit_id)
    when = local_time_text(parse_iso(drill["at"]), zone)
    area = people.unit_path(visitor.conn, unit_id)
    recipients = set(notices.subtree_staff(visitor.conn, unit_id)) | {int(drill["organiser_id"])}
    for staff_id in sorted(recipients):
        person = people.staff_by_id(visitor.conn, staff_id)
        if person is None or not person.active:
            continue
        organiser = staff_id == int(drill["organiser_id"])
        visitor.notify(
            person,
            "drill.organiser_reminder" if organiser else "drill.notice",
            idempotency_key=f"{reminder.key}:{staff_id}",
            when=when,
            area=area,
            kind=visitor_kind(person.language, str(drill["kind"])),
            drill=drill["id"],
        )
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
