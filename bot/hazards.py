"""The hazard register's actions (REGULATIONS §2): the four fixes (四定),
starting, submitting the rectification, asking for more time, deciding on
it, acceptance (验收, 销号) or sending back, and the rectification order
(整改通知书). Each action checks the rules (`bot.hazard_rules`), applies them
with one `hazards.apply` (audited), plans or cancels the reminders, and
returns an `Outcome` naming who must be told what. The chat flows and the
desk both call these; neither asks, renders or sends anything here."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot import hazard_rules, preparer
from bot.clock import iso, local_date, local_time_text, parse_iso
from bot.hazard_rules import (
    MAX_AMOUNT,
    MAX_PHOTOS,
    TRANSITIONS,
    Action,
    HazardFacts,
    Status,
    assignable_units,
    check_deadline,
    deciders,
    may,
    may_be_responsible,
    next_status,
)
from bot.i18n import t
from bot.model import DocumentRequest, Role, Staff, UserError
from bot.store import hazards, people, reminders
from bot.store.hazards import Hazard

MAX_TEXT = 2000

# Reminders before and after a deadline (schedules/hazards.py fires them).
WARN_BEFORE = {"general": timedelta(hours=2), "major": timedelta(hours=24)}
ESCALATE_AFTER = timedelta(hours=24)


class NotAssignable(UserError):
    """The person chosen cannot be made responsible (elsewhere, or deactivated)."""


class PastDeadline(UserError):
    """The deadline chosen has already passed."""


@dataclass(frozen=True, slots=True)
class Acting:
    """Who acts, when, on which store connection (the caller's transaction)."""

    conn: sqlite3.Connection
    staff: Staff
    now: datetime
    default_timezone: str
    # The language a refusal is worded in, if not theirs (the desk's page may be in another).
    language: str = ""

    @property
    def lang(self) -> str:
        return self.language or self.staff.language

    @property
    def zone(self) -> str:
        """The actor's unit's zone: the times their confirmation and the
        messages they cause quote, as the chat always has."""
        return people.unit_timezone(self.conn, self.staff.unit_id, self.default_timezone)


@dataclass(frozen=True, slots=True)
class Notice:
    """One person to tell: the card with a line saying why (`intro`, a
    catalog key, with `params`), the photo to show, the order to attach."""

    person: Staff
    intro: str
    step: str  # what happened, part of the message's idempotency key
    params: Mapping[str, str] = field(default_factory=dict)
    photo: str | None = None
    order: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: the hazard as it is now, what the actor is told
    (`done`, a catalog key, with `done_params`) and who else must be told."""

    hazard: Hazard
    action: Action
    done: str
    done_params: Mapping[str, str]
    notices: tuple[Notice, ...] = ()
    order: str | None = None  # the rectification order issued


# -- reminders ---------------------------------------------------------------------------
def plan(
    conn: sqlite3.Connection, hazard_id: int, severity: str, deadline: datetime, now: datetime
) -> None:
    """Schedule a hazard's reminders for its deadline (called in the
    transaction that records it or moves its deadline); earlier ones go."""
    stop(conn, hazard_id)
    moments = {
        "hazard_due_soon": deadline - WARN_BEFORE.get(severity, WARN_BEFORE["general"]),
        "hazard_overdue": deadline,
        "hazard_escalate": deadline + ESCALATE_AFTER,
    }
    for kind, due in moments.items():
        if due > now:
            reminders.plan(
                conn,
                kind=kind,
                due_at=iso(due),
                target={"hazard": hazard_id},
                key=f"hazard:{hazard_id}:{kind}:{iso(deadline)}",
                now=iso(now),
            )


def stop(conn: sqlite3.Connection, hazard_id: int) -> None:
    """Cancel a hazard's pending reminders (it was closed, or has a new deadline)."""
    reminders.cancel(conn, f"hazard:{hazard_id}:")


# -- who may do what ---------------------------------------------------------------------
def facts(hazard: Hazard) -> HazardFacts:
    return HazardFacts(hazard.status, hazard.responsible_id)


def oversees(conn: sqlite3.Connection, staff: Staff, hazard: Hazard) -> bool:
    """A supervisor of the hazard's unit or of a unit above it."""
    return people.supervises(conn, staff, hazard.unit_id)


def may_see(conn: sqlite3.Connection, staff: Staff, hazard: Hazard) -> bool:
    return hazard_rules.may_see(
        staff, hazard.reported_by, hazard.responsible_id, oversees(conn, staff, hazard)
    )


def allowed(conn: sqlite3.Connection, staff: Staff, hazard: Hazard) -> list[Action]:
    """The actions `staff` may take on the hazard now, in button order."""
    over = oversees(conn, staff, hazard)
    return [
        action
        for action in Action
        if (hazard.status, action) in TRANSITIONS and may(action, staff, facts(hazard), over)
    ]


def check(act: Acting, hazard: Hazard, action: Action) -> Status:
    """The state the action leads to, or a refusal saying why not."""
    if not may(action, act.staff, facts(hazard), oversees(act.conn, act.staff, hazard)):
        raise UserError("hazard.not_allowed")
    try:
        return next_status(hazard.status, action)
    except UserError:
        raise UserError(
            "hazard.not_now",
            hazard=hazard.number,
            status=t(act.lang, f"hazards.status_{hazard.status}"),
        ) from None


def assignable(conn: sqlite3.Connection, staff: Staff, unit_id: int) -> list[int]:
    """The units the responsible person may come from: the hazard's unit
    and those below it, and the units this supervisor heads."""
    return assignable_units(
        people.subtree_units(conn, unit_id), staff, people.subtree_units(conn, staff.unit_id)
    )


def candidates(
    conn: sqlite3.Connection, staff: Staff, unit_id: int, limit: int, offset: int = 0
) -> list[Staff]:
    """Active people `staff` may make responsible for a hazard of `unit_id`."""
    return people.in_units(conn, assignable(conn, staff, unit_id), limit, offset)


def overseers(conn: sqlite3.Connection, hazard: Hazard) -> list[Staff]:
    """Who approves and accepts: the nearest supervisors up the tree other
    than the responsible person, else the safety officers."""
    return deciders(
        people.chain_supervisors(conn, hazard.unit_id),
        people.with_role(conn, Role.SAFETY_OFFICER),
        hazard.responsible_id,
    )


def responsible(conn: sqlite3.Connection, hazard: Hazard) -> list[Staff]:
    person = people.staff_by_id(conn, hazard.responsible_id) if hazard.responsible_id else None
    return [person] if person else []


# -- applying ----------------------------------------------------------------------------
def _apply(
    act: Acting,
    hazard: Hazard,
    action: Action,
    *,
    changes: dict[str, Any],
    detail: dict[str, Any],
) -> Hazard:
    """Take the action (checked again now), write it, and return the hazard as it is now."""
    status = check(act, hazard, action)
    if not hazards.apply(
        act.conn,
        hazard.id,
        expected=hazard.status.value,
        status=status.value,
        actor_id=act.staff.id,
        action=action.value,
        now=iso(act.now),
        changes=changes,
        detail=detail,
    ):
        raise UserError("hazard.changed_meanwhile", hazard=hazard.number)
    moved = hazards.get(act.conn, hazard.id)
    assert moved is not None
    return moved


def _notices(
    act: Acting,
    people_told: Sequence[Staff],
    intro: str,
    step: str,
    *,
    photo: str | None = None,
    order: str | None = None,
    **params: str,
) -> tuple[Notice, ...]:
    """Each person once, never the one who acted. `order`: the order whose
    PDF goes with the message (and its number is the text's `order`)."""
    seen = {act.staff.id}
    if order is not None:
        params = {"order": order, **params}
    found: list[Notice] = []
    for person in people_told:
        if person.id not in seen:
            seen.add(person.id)
            found.append(Notice(person, intro, step, params, photo, order))
    return tuple(found)


def _text(text: str, missing: str, **params: str) -> str:
    """What someone wrote, trimmed; `missing` (a catalog key) when it is empty."""
    cleaned = text.strip()
    if not cleaned:
        raise UserError(missing, **params)
    if len(cleaned) > MAX_TEXT:
        raise UserError("check.too_long", limit=MAX_TEXT, length=len(cleaned))
    return cleaned


def _future(act: Acting, deadline: datetime) -> datetime:
    if deadline <= act.now:
        raise PastDeadline("time.in_the_past", text=local_time_text(deadline, act.zone))
    return deadline


# -- the four fixes (四定) ------------------------------------------------------------------
def assign(
    act: Acting,
    hazard: Hazard,
    *,
    responsible_id: int,
    measure: str,
    deadline: datetime,
    funding: Decimal,
) -> Outcome:
    """Set the four fixes: who, what, by when, with what money (reassigning too)."""
    check(act, hazard, Action.ASSIGN)
    person = people.staff_by_id(act.conn, responsible_id)
    if person is None or not may_be_responsible(
        person, assignable(act.conn, act.staff, hazard.unit_id)
    ):
        # The same answer whether or not that person exists.
        raise NotAssignable("hazard.not_assignable")
    if not person.active:
        raise NotAssignable("hazard.person_inactive", name=person.name)
    measure = _text(measure, "hazard.no_measure")
    _future(act, deadline)
    if not Decimal(0) <= funding <= MAX_AMOUNT:
        raise UserError("hazard.amount_too_large")
    moved = _apply(
        act,
        hazard,
        Action.ASSIGN,
        changes={
            "responsible_id": person.id,
            "assigned_by": act.staff.id,
            "measure": measure,
            "deadline_at": iso(deadline),
            "funding": str(funding),
        },
        detail={
            "responsible": person.name,
            "responsible_id": person.id,
            "measure": measure,
            "deadline_at": iso(deadline),
            "funding": str(funding),
        },
    )
    plan(act.conn, hazard.id, hazard.severity, deadline, act.now)
    return Outcome(
        moved,
        Action.ASSIGN,
        "hazard.assigned",
        {
            "hazard": hazard.number,
            "name": person.name,
            "deadline": local_time_text(deadline, act.zone),
        },
        _notices(act, [person], "hazard.yours", "assigned", supervisor=act.staff.name),
    )


# -- the responsible person's work --------------------------------------------------------
def start(act: Acting, hazard: Hazard) -> Outcome:
    moved = _apply(act, hazard, Action.START, changes={}, detail={})
    return Outcome(moved, Action.START, "hazard.started", {"hazard": hazard.number})


def submit(act: Acting, hazard: Hazard, *, text: str, photos: Sequence[str]) -> Outcome:
    """The rectification done: what was done and at least one photo of it."""
    check(act, hazard, Action.SUBMIT)
    text = _text(text, "hazard.ask_done", hazard=hazard.number)
    shown = [p for p in photos if p]
    if not shown:
        raise UserError("hazard.ask_evidence")
    if len(shown) > MAX_PHOTOS:
        raise UserError("hazard.too_many_photos", limit=MAX_PHOTOS)
    moved = _apply(
        act,
        hazard,
        Action.SUBMIT,
        changes={"rectification": text, "rectification_photos": json.dumps(shown)},
        detail={"description": text, "photos": shown},
    )
    return Outcome(
        moved,
        Action.SUBMIT,
        "hazard.submitted",
        {"hazard": hazard.number},
        _notices(
            act,
            overseers(act.conn, moved),
            "hazard.to_accept",
            "submitted",
            photo=shown[0],
            name=act.staff.name,
        ),
    )


def request_extension(
    act: Acting, hazard: Hazard, *, measures: str, photo: str | None, deadline: datetime
) -> Outcome:
    """Interim protective measures taken, a later deadline asked for."""
    check(act, hazard, Action.REQUEST_EXTENSION)
    measures = _text(measures, "hazard.ask_measures", hazard=hazard.number)
    if deadline <= parse_iso(hazard.deadline_at):
        raise UserError(
            "hazard.not_later",
            deadline=local_time_text(parse_iso(hazard.deadline_at), act.zone),
        )
    _future(act, deadline)
    moved = _apply(
        act,
        hazard,
        Action.REQUEST_EXTENSION,
        changes={"interim_measures": measures, "proposed_deadline_at": iso(deadline)},
        detail={"description": measures, "photo": photo, "proposed_deadline_at": iso(deadline)},
    )
    return Outcome(
        moved,
        Action.REQUEST_EXTENSION,
        "hazard.extension_requested",
        {"hazard": hazard.number},
        _notices(
            act,
            overseers(act.conn, moved),
            "hazard.to_approve",
            "extension",
            photo=photo,
            name=act.staff.name,
        ),
    )


# -- deciding on more time ----------------------------------------------------------------
def approve(act: Acting, hazard: Hazard) -> Outcome:
    check(act, hazard, Action.APPROVE_EXTENSION)
    if not hazard.proposed_deadline_at:  # pragma: no cover - set by every request
        raise UserError("hazard.changed_meanwhile", hazard=hazard.number)
    deadline = parse_iso(hazard.proposed_deadline_at)
    moved = _apply(
        act,
        hazard,
        Action.APPROVE_EXTENSION,
        changes={"deadline_at": iso(deadline), "proposed_deadline_at": None},
        detail={"deadline_at": iso(deadline)},
    )
    plan(act.conn, hazard.id, hazard.severity, deadline, act.now)
    when = local_time_text(deadline, act.zone)
    return Outcome(
        moved,
        Action.APPROVE_EXTENSION,
        "hazard.extension_approved",
        {"hazard": hazard.number, "deadline": when},
        _notices(
            act, responsible(act.conn, moved), "hazard.approved_yours", "approved", deadline=when
        ),
    )


def refuse(act: Acting, hazard: Hazard) -> Outcome:
    moved = _apply(
        act, hazard, Action.REFUSE_EXTENSION, changes={"proposed_deadline_at": None}, detail={}
    )
    when = local_time_text(parse_iso(hazard.deadline_at), act.zone)
    return Outcome(
        moved,
        Action.REFUSE_EXTENSION,
        "hazard.extension_refused",
        {"hazard": hazard.number, "deadline": when},
        _notices(
            act, responsible(act.conn, moved), "hazard.refused_yours", "refused", deadline=when
        ),
    )


# -- acceptance (验收) ----------------------------------------------------------------------
def accept(act: Acting, hazard: Hazard) -> Outcome:
    """The rectification accepted: the hazard is closed out (销号), its reminders stop."""
    moved = _apply(
        act,
        hazard,
        Action.ACCEPT,
        changes={"accepted_by": act.staff.id, "closed_at": iso(act.now)},
        detail={},
    )
    stop(act.conn, hazard.id)
    reporter = people.staff_by_id(act.conn, hazard.reported_by)
    told = responsible(act.conn, moved) + ([reporter] if reporter and reporter.active else [])
    return Outcome(
        moved,
        Action.ACCEPT,
        "hazard.accepted",
        {"hazard": hazard.number},
        _notices(act, told, "hazard.closed_yours", "closed"),
    )


def send_back(act: Acting, hazard: Hazard, *, reason: str) -> Outcome:
    """The rectification is not good enough: back to the responsible person, with why."""
    check(act, hazard, Action.SEND_BACK)
    reason = _text(reason, "hazard.ask_reason", hazard=hazard.number)
    moved = _apply(act, hazard, Action.SEND_BACK, changes={}, detail={"reason": reason})
    return Outcome(
        moved,
        Action.SEND_BACK,
        "hazard.sent_back",
        {"hazard": hazard.number},
        _notices(act, responsible(act.conn, moved), "hazard.back_yours", "back", reason=reason),
    )


# -- the rectification order (整改通知书) -----------------------------------------------------
def order(act: Acting, hazard: Hazard, *, deadline: datetime, requirement: str) -> Outcome:
    """A written order with a deadline (empty `requirement`: the measure set,
    else the description); its PDF goes to the responsible person and their heads."""
    check(act, hazard, Action.ORDER)
    check_deadline(deadline, act.now)
    wanted = requirement.strip()
    if len(wanted) > MAX_TEXT:
        raise UserError("check.too_long", limit=MAX_TEXT, length=len(wanted))
    wanted = wanted or hazard.measure or hazard.description
    number = hazards.issue_order(
        act.conn,
        hazard_id=hazard.id,
        issued_by=act.staff.id,
        deadline_at=iso(deadline),
        requirement=wanted,
        now=iso(act.now),
        year=local_date(act.now, act.zone).year,
    )
    moved = _apply(
        act,
        hazard,
        Action.ORDER,
        changes={"deadline_at": iso(deadline)},
        detail={"order": number, "deadline_at": iso(deadline), "description": wanted},
    )
    plan(act.conn, hazard.id, hazard.severity, deadline, act.now)
    when = local_time_text(deadline, act.zone)
    told = responsible(act.conn, moved)
    heads = [s for p in told for s in people.supervisors_for_unit(act.conn, p.unit_id)]
    return Outcome(
        moved,
        Action.ORDER,
        "hazard.order_issued",
        {"order": number, "hazard": hazard.number, "deadline": when},
        _notices(
            act,
            told + heads,
            "hazard.order_yours",
            "order",
            order=number,
            deadline=when,
            requirement=wanted,
            supervisor=act.staff.name,
        ),
        order=number,
    )


def order_pdf(
    number: str, language: str, *, default_timezone: str, now: datetime
) -> DocumentRequest:
    """The order's printable PDF in `language`, dated `now`, as a message
    asks for it: made after the action commits, off the writer
    (bot/preparer.py). The one place the register asks for it."""
    return preparer.order_request(number, language, default_timezone=default_timezone, now=now)
