"""Chasing the 15-day report (REGULATIONS §3): on days 7, 12, 14 and 15 after
an incident the unit's supervisors and the safety officers are reminded that
the investigation report and the work-injury application are due. Each
reminder checks first that the report is still not recorded as submitted."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Visitor
from bot.i18n import t
from bot.incident_rules import REPORT_DAYS, reminder_moments
from bot.model import Button, Role, Staff
from bot.store import incidents, people, reminders
from bot.store.reminders import Reminder
from schedules.runner import Kind

KIND = "incident_report_due"


def plan(
    conn: sqlite3.Connection, incident_id: int, occurred: datetime, timezone: str, now: datetime
) -> int:
    """Schedule an incident's report reminders (in the transaction that
    registers it); days already past are skipped. Returns how many."""
    planned = 0
    for day, due in reminder_moments(occurred, timezone).items():
        if due > now:
            planned += reminders.schedule(
                conn,
                kind=KIND,
                due_at=iso(due),
                target={"incident": incident_id, "day": day},
                key=f"incident:{incident_id}:report:day{day}",
                now=iso(now),
            )
    return planned


def stop(conn: sqlite3.Connection, incident_id: int) -> None:
    """The report is in: no more reminders."""
    reminders.cancel(conn, f"incident:{incident_id}:report:")


def recipients(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    """The unit's supervisors, then the safety officers, each once."""
    found: dict[int, Staff] = {}
    for person in [
        *people.supervisors_for_unit(conn, unit_id),
        *people.with_role(conn, Role.SAFETY_OFFICER),
    ]:
        found.setdefault(person.id, person)
    return list(found.values())


def report_due(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    incident = incidents.get(visitor.conn, int(reminder.target["incident"]))
    if incident is None or incident["report_submitted_at"] is not None:
        return False
    day = int(reminder.target["day"])
    unit_id = int(incident["unit_id"])
    zone = visitor.unit_timezone(unit_id)
    number = str(incident["number"])
    key = "incident.reminder_today" if day >= REPORT_DAYS else "incident.reminder"
    for person in recipients(visitor.conn, unit_id):
        visitor.notify(
            person,
            key,
            idempotency_key=f"{reminder.key}:{person.id}",
            buttons=[
                [
                    Button(t(person.language, "incident.btn_open"), f"/incident {number}"),
                    Button(t(person.language, "incident.btn_report"), f"/incident {number} report"),
                ]
            ],
            number=number,
            unit=people.unit_path(visitor.conn, unit_id),
            deadline=local_time_text(parse_iso(incident["report_due_at"]), zone),
            days=REPORT_DAYS - day,
        )
    return True


KINDS = {KIND: Kind(report_due)}
