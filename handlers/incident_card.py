"""An incident's card and what overseers do from it (REGULATIONS §3): record
the investigation, add corrective actions (each one a hazard, chased like any
other), and record the 15-day report as submitted, which stops its
reminders. Overseers: supervisors of the incident's unit or a unit above it,
safety officers and admins, checked from the store on every step."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from bot import incident_rules as rules
from bot import preparer
from bot.clock import end_of_local_day, local_date, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.model import Button, Inbound, InboundKind, UserError
from bot.store import hazards, incidents, people
from handlers.text import clean_text
from schedules import hazards as deadlines
from schedules import incidents as report_reminders

INVESTIGATE = "incident_investigate"
ACTION = "incident_action"
SUBMIT = "incident_report"
NOTHING = "—"


def _chain(ctx: Ctx, incident: sqlite3.Row) -> list[int]:
    return [int(row["id"]) for row in people.unit_chain(ctx.conn, int(incident["unit_id"]))]


def oversees(ctx: Ctx, incident: sqlite3.Row) -> bool:
    return rules.oversees(ctx.staff, _chain(ctx, incident))


def may_see(ctx: Ctx, incident: sqlite3.Row) -> bool:
    return rules.may_see(ctx.staff, _chain(ctx, incident), int(incident["reported_by"]))


def require_overseer(ctx: Ctx, incident: sqlite3.Row) -> None:
    if not oversees(ctx, incident):
        raise UserError("incident.not_allowed", number=incident["number"])


def timezone_of(ctx: Ctx, incident: sqlite3.Row) -> str:
    return ctx.unit_timezone(int(incident["unit_id"]))


def typed(inbound: Inbound, limit: int = rules.MAX_TEXT) -> str | None:
    """Typed text, cleaned; None for anything else or nothing at all."""
    if inbound.kind is not InboundKind.TEXT:
        return None
    text = clean_text(inbound.text)
    return rules.checked_text(text, limit) if text else None


# -- the card -------------------------------------------------------------------------
def show(ctx: Ctx, incident: sqlite3.Row) -> None:
    """The incident as the register holds it, with its history; an overseer
    also gets the buttons for what is still to do."""
    if not may_see(ctx, incident):
        raise UserError("incident.not_found", number=incident["number"])
    overseer = oversees(ctx, incident)
    number = str(incident["number"])
    buttons: list[list[Button]] = []
    if overseer:
        buttons = [
            [Button(ctx.text("incident.btn_investigate"), f"/incident {number} investigate")],
            [Button(ctx.text("incident.btn_action"), f"/incident {number} action")],
        ]
        if incident["report_submitted_at"] is None:
            buttons.append([Button(ctx.text("incident.btn_report"), f"/incident {number} report")])
        buttons.append(
            [Button(ctx.text("documents.btn_pdf", number=number), f"/incident {number} pdf")]
        )
    ctx.say_text(
        card(ctx, incident),
        buttons=buttons,
        attachments=tuple(incidents.photos(incident)),
    )


def card(ctx: Ctx, incident: sqlite3.Row) -> str:
    zone = timezone_of(ctx, incident)
    incident_id = int(incident["id"])
    reporter = people.staff_by_id(ctx.conn, int(incident["reported_by"]))
    parts = [
        ctx.text(
            "incident.card",
            number=incident["number"],
            kind=ctx.text(f"incident.kind_{incident['kind']}"),
            status=ctx.text(f"incident.status_{incident['investigation']}"),
            when=local_time_text(parse_iso(incident["occurred_at"]), zone),
            place=incident["place"],
            unit=people.unit_path(ctx.conn, int(incident["unit_id"])),
            reporter=reporter.name if reporter else NOTHING,
            description=incident["description"],
            hurt=incident["hurt_count"],
            names=incident["hurt_names"] or NOTHING,
            first_actions=incident["first_actions"] or NOTHING,
            photos=len(incidents.photos(incident)),
        )
    ]
    latest = incidents.latest_investigation(ctx.conn, incident_id)
    if latest is not None:
        parts.append(
            ctx.text(
                "incident.card_investigation",
                responsible=latest["responsible"] or NOTHING,
                findings=latest["findings"],
            )
        )
    actions = incidents.actions(ctx.conn, incident_id)
    if actions:
        parts.append(ctx.text("incident.card_actions"))
        parts += [
            ctx.text("incident.card_action", hazard=row["hazard"], description=row["description"])
            for row in actions
        ]
    parts.append(_report_line(ctx, incident, zone))
    parts.append(ctx.text("incident.card_history"))
    parts += [_history_line(ctx, row, zone) for row in incidents.history(ctx.conn, incident_id)]
    return "\n".join(parts)


def _history_line(ctx: Ctx, row: sqlite3.Row, zone: str) -> str:
    action = ctx.text(f"incident.audit_{row['action']}")
    if row["action"] == "investigation":
        status = json.loads(row["detail"])["to"]
        action += f" → {ctx.text(f'incident.status_{status}')}"
    return ctx.text(
        "incident.history_line",
        at=local_time_text(parse_iso(row["at"]), zone),
        actor=row["actor"] or NOTHING,
        action=action,
    )


def _report_line(ctx: Ctx, incident: sqlite3.Row, zone: str) -> str:
    if incident["report_submitted_at"] is None:
        return ctx.text(
            "incident.card_report_pending",
            deadline=local_time_text(parse_iso(incident["report_due_at"]), zone),
        )
    by = people.staff_by_id(ctx.conn, int(incident["report_submitted_by"]))
    return ctx.text(
        "incident.card_report_done",
        reference=incident["report_reference"],
        at=local_time_text(parse_iso(incident["report_submitted_at"]), zone),
        by=by.name if by else NOTHING,
    )


def _current(ctx: Ctx) -> sqlite3.Row | None:
    """The incident an action flow is about, if it still exists and this
    person still oversees it (roles can change while a flow waits)."""
    incident = incidents.get(ctx.conn, int(ctx.data["incident"]))
    if incident is None or not oversees(ctx, incident):
        number = ctx.data["number"]
        ctx.end()
        ctx.say("incident.not_allowed", number=number)
        return None
    return incident


def send_pdf(ctx: Ctx, incident: sqlite3.Row) -> None:
    """`/incident SG-2026-001 pdf`: the incident's record to print and sign, for overseers."""
    require_overseer(ctx, incident)
    ctx.say(
        "documents.incident_attached",
        number=incident["number"],
        document=preparer.incident_request(
            int(incident["id"]), ctx.lang, default_timezone=ctx.default_timezone, now=ctx.now
        ),
    )


# -- the investigation ----------------------------------------------------------------
def start_investigation(ctx: Ctx, incident: sqlite3.Row) -> None:
    require_overseer(ctx, incident)
    ctx.goto(INVESTIGATE, "status", incident=int(incident["id"]), number=incident["number"])
    ask_status(ctx)


def ask_status(ctx: Ctx) -> None:
    ctx.say(
        "incident.ask_status",
        number=ctx.data["number"],
        buttons=[
            [Button(ctx.text(f"incident.status_{status}"), status)]
            for status in rules.INVESTIGATION[1:]
        ],
    )


def on_status(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in rules.INVESTIGATION[1:]:
        ask_status(ctx)
        return
    ctx.step_to("responsible", status=inbound.text)
    ask_responsible(ctx)


def ask_responsible(ctx: Ctx) -> None:
    ctx.say(
        "incident.ask_responsible",
        buttons=[[Button(ctx.text("incident.not_known_yet"), "none")]],
    )


def on_responsible(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "none":
        responsible = None
    else:
        responsible = typed(inbound)
        if responsible is None:
            ask_responsible(ctx)
            return
    ctx.step_to("findings", responsible=responsible)
    ctx.say("incident.ask_findings")


def on_findings(ctx: Ctx, inbound: Inbound) -> None:
    findings = typed(inbound)
    if findings is None:
        ctx.say("incident.ask_findings")
        return
    incident = _current(ctx)
    if incident is None:
        return
    status = str(ctx.data["status"])
    incidents.record_investigation(
        ctx.conn,
        int(incident["id"]),
        status=status,
        responsible=ctx.data.get("responsible"),
        findings=findings,
        actor_id=ctx.staff.id,
        now=ctx.now_iso,
    )
    ctx.end()
    ctx.say(
        "incident.investigation_recorded",
        number=incident["number"],
        status=ctx.text(f"incident.status_{status}"),
    )


def reprompt_investigation(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "status":
        ask_status(ctx)
    elif step == "responsible":
        ask_responsible(ctx)
    elif step == "findings":
        ctx.say("incident.ask_findings")


# -- corrective actions ---------------------------------------------------------------
def start_action(ctx: Ctx, incident: sqlite3.Row) -> None:
    require_overseer(ctx, incident)
    ctx.goto(ACTION, "what", incident=int(incident["id"]), number=incident["number"])
    ctx.say("incident.ask_action", number=incident["number"])


def on_action(ctx: Ctx, inbound: Inbound) -> None:
    measure = typed(inbound)
    if measure is None:
        ctx.say("incident.ask_action", number=ctx.data["number"])
        return
    ctx.step_to("deadline", measure=measure)
    ask_deadline(ctx)


def ask_deadline(ctx: Ctx) -> None:
    ctx.say(
        "incident.ask_action_deadline",
        buttons=[[Button(ctx.text("incident.today"), "today")]],
    )


def on_deadline(ctx: Ctx, inbound: Inbound) -> None:
    incident = _current(ctx)
    if incident is None:
        return
    zone = timezone_of(ctx, incident)
    if inbound.kind is InboundKind.ACTION and inbound.text == "today":
        deadline = end_of_local_day(ctx.now, zone)
    elif inbound.kind is InboundKind.TEXT:
        deadline = rules.parse_action_deadline(inbound.text, zone, ctx.now)
    else:
        ask_deadline(ctx)
        return
    measure = str(ctx.data["measure"])
    hazard_id = corrective_hazard(ctx, incident, measure, deadline, zone)
    hazard = hazards.numbers(ctx.conn, [hazard_id])[hazard_id]
    when = local_time_text(deadline, zone)
    for supervisor in people.supervisors_for_unit(ctx.conn, int(incident["unit_id"])):
        if supervisor.id != ctx.staff.id:
            ctx.notify(
                supervisor,
                "incident.action_notice",
                idempotency_key=f"incident:{incident['id']}:action:{hazard_id}:{supervisor.id}",
                number=incident["number"],
                hazard=hazard,
                description=measure,
                deadline=when,
            )
    ctx.end()
    ctx.say("incident.action_recorded", number=incident["number"], hazard=hazard, deadline=when)


def corrective_hazard(
    ctx: Ctx, incident: sqlite3.Row, measure: str, deadline: datetime, zone: str
) -> int:
    """A corrective action is a hazard like any other (REGULATIONS §2): the
    incident's unit's, general, in the same register and chased the same way."""
    hazard_id = hazards.create(
        ctx.conn,
        unit_id=int(incident["unit_id"]),
        reported_by=ctx.staff.id,
        source=f"incident:{incident['id']}",
        description=measure,
        photo=None,
        severity="general",
        deadline_at=deadline.isoformat(),
        now=ctx.now_iso,
        year=local_date(ctx.now, zone).year,
    )
    deadlines.plan(ctx.conn, hazard_id, "general", deadline, ctx.now)
    incidents.add_action(
        ctx.conn,
        int(incident["id"]),
        description=measure,
        hazard_id=hazard_id,
        actor_id=ctx.staff.id,
        now=ctx.now_iso,
    )
    return hazard_id


def reprompt_action(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "what":
        ctx.say("incident.ask_action", number=ctx.data["number"])
    elif step == "deadline":
        ask_deadline(ctx)


# -- the 15-day report ----------------------------------------------------------------
def start_submission(ctx: Ctx, incident: sqlite3.Row) -> None:
    require_overseer(ctx, incident)
    if incident["report_submitted_at"] is not None:
        raise UserError(
            "incident.report_already",
            number=incident["number"],
            reference=incident["report_reference"],
        )
    ctx.goto(SUBMIT, "reference", incident=int(incident["id"]), number=incident["number"])
    ctx.say("incident.ask_reference", number=incident["number"], limit=rules.MAX_REFERENCE)


def on_reference(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT:
        reprompt_submission(ctx)
        return
    reference = clean_text(inbound.text)
    if not reference:
        raise UserError("incident.reference_required")
    if len(reference) > rules.MAX_REFERENCE:
        raise UserError(
            "incident.reference_too_long", limit=rules.MAX_REFERENCE, length=len(reference)
        )
    incident = _current(ctx)
    if incident is None:
        return
    ctx.end()
    if not incidents.record_report(
        ctx.conn, int(incident["id"]), reference=reference, actor_id=ctx.staff.id, now=ctx.now_iso
    ):
        # Someone else recorded it while this person was typing.
        fresh = incidents.get(ctx.conn, int(incident["id"]))
        ctx.say(
            "incident.report_already",
            number=incident["number"],
            reference=fresh["report_reference"] if fresh else NOTHING,
        )
        return
    report_reminders.stop(ctx.conn, int(incident["id"]))
    for person in report_reminders.recipients(ctx.conn, int(incident["unit_id"])):
        if person.id != ctx.staff.id:
            ctx.notify(
                person,
                "incident.report_notice",
                idempotency_key=f"incident:{incident['id']}:report-notice:{person.id}",
                number=incident["number"],
                reference=reference,
                by=ctx.staff.name,
            )
    ctx.say("incident.report_recorded", number=incident["number"], reference=reference)


def reprompt_submission(ctx: Ctx) -> None:
    ctx.say("incident.ask_reference", number=ctx.data["number"], limit=rules.MAX_REFERENCE)


investigation_flow = Flow(
    name=INVESTIGATE,
    steps={"status": on_status, "responsible": on_responsible, "findings": on_findings},
    reprompt=reprompt_investigation,
)
action_flow = Flow(
    name=ACTION,
    steps={"what": on_action, "deadline": on_deadline},
    reprompt=reprompt_action,
)
submission_flow = Flow(
    name=SUBMIT,
    steps={"reference": on_reference},
    reprompt=reprompt_submission,
)
