"""Chasing hazard deadlines (REGULATIONS §2): a reminder to the responsible
person before the deadline (2 hours for a general hazard, 24 for a major one),
an overdue message and escalation to the unit's supervisors at the deadline,
and to the parent unit's supervisors and the safety officers a day later.
Every reminder checks first that the hazard is still the responsible
person's to act on (not closed, not waiting for acceptance). A new deadline
(an approved extension, a rectification order) replaces the old reminders;
planning them is the register's (`bot.hazards.plan`), firing them is here."""

from __future__ import annotations

from bot.clock import local_time_text, parse_iso
from bot.engine import Visitor
from bot.hazard_rules import nearest_others
from bot.hazards import plan as plan  # handlers/incident_card.py plans through here
from bot.model import Role, Staff
from bot.store import hazards, people
from bot.store.hazards import Hazard
from bot.store.reminders import Reminder
from schedules.runner import Kind

# States in which the deadline is the responsible person's (or, before the
# four fixes, the supervisors') to meet.
CHASED = frozenset({"open", "assigned", "in_progress", "extension_requested"})


def _open_hazard(visitor: Visitor, reminder: Reminder) -> Hazard | None:
    hazard = hazards.get(visitor.conn, int(reminder.target["hazard"]))
    return hazard if hazard is not None and hazard.status in CHASED else None


def _responsible(visitor: Visitor, hazard: Hazard) -> list[Staff]:
    if hazard.responsible_id:
        person = people.staff_by_id(visitor.conn, hazard.responsible_id)
        if person is not None and person.active:
            return [person]
    return people.supervisors_for_unit(visitor.conn, hazard.unit_id)


def _tell(visitor: Visitor, recipients: list[Staff], key: str, hazard: Hazard, kind: str) -> None:
    deadline = parse_iso(hazard.deadline_at)
    tz = visitor.unit_timezone(hazard.unit_id)
    unit = people.unit_path(visitor.conn, hazard.unit_id)
    seen: set[int] = set()
    for person in recipients:
        if person.id in seen:
            continue
        seen.add(person.id)
        visitor.notify(
            person,
            key,
            idempotency_key=f"hazard:{hazard.id}:{kind}:{hazard.deadline_at}:{person.id}",
            hazard=hazard.number,
            description=hazard.description,
            unit=unit,
            deadline=local_time_text(deadline, tz),
        )


def due_soon(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    hazard = _open_hazard(visitor, reminder)
    if hazard is None:
        return False
    _tell(visitor, _responsible(visitor, hazard), "deadline.due_soon", hazard, "due_soon")
    return True


def overdue(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    hazard = _open_hazard(visitor, reminder)
    if hazard is None:
        return False
    chased = _responsible(visitor, hazard)
    _tell(visitor, chased, "deadline.overdue", hazard, "overdue")
    _tell(visitor, _above(visitor, hazard, chased), "deadline.escalated", hazard, "escalated")
    return True


def _above(visitor: Visitor, hazard: Hazard, chased: list[Staff]) -> list[Staff]:
    """Who is told that the people chased have let the deadline pass: the
    nearest supervisors up the tree other than them, else the safety officers;
    never someone about their own lateness."""
    return nearest_others(
        people.chain_supervisors(visitor.conn, hazard.unit_id),
        people.with_role(visitor.conn, Role.SAFETY_OFFICER),
        {person.id for person in chased},
    )


def escalate(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    hazard = _open_hazard(visitor, reminder)
    if hazard is None:
        return False
    unit_id = hazard.unit_id
    chain = people.unit_chain(visitor.conn, unit_id)
    above: list[Staff] = []
    if len(chain) > 1:
        above = people.supervisors_for_unit(visitor.conn, int(chain[1]["id"]))
    officers = people.with_role(visitor.conn, Role.SAFETY_OFFICER)
    chased = {person.id for person in _responsible(visitor, hazard)}
    told = [s for s in above + officers if s.id not in chased]
    _tell(visitor, told, "deadline.escalated_up", hazard, "escalated_up")
    return True


KINDS = {
    "hazard_due_soon": Kind(due_soon),
    "hazard_overdue": Kind(overdue),
    "hazard_escalate": Kind(escalate),
}
