"""Incidents (REGULATIONS §3): anyone reports one of their own unit with
`/incident` (what, when, where, kind, people hurt, first actions, photos) and
the people who must act hear of it at once; `/incidents` lists the register,
newest first. `/incident SG-2026-001 [investigate|action|report|pdf]` opens an
incident's card or acts on it (handlers.incident_card)."""

from __future__ import annotations

import sqlite3

from bot import incident_rules as rules
from bot.clock import iso, local_date, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.store import incidents, people
from bot.store.incidents import NewIncident
from handlers import incident_card as card
from handlers.incident_card import NOTHING, timezone_of, typed
from handlers.text import page_index
from schedules import incidents as report_reminders

REPORT = "incident"
PAGE = 10


# -- /incident and /incidents -------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    """`/incident` reports one; `/incident SG-2026-001 [investigate|action|report]`
    opens one or starts an action on it."""
    number, _, wanted = args.strip().partition(" ")
    if not number:
        start_report(ctx)
        return
    incident = _find(ctx, number)
    wanted = wanted.strip().lower()
    if wanted == "investigate":
        card.start_investigation(ctx, incident)
    elif wanted == "action":
        card.start_action(ctx, incident)
    elif wanted == "report":
        card.start_submission(ctx, incident)
    elif wanted == "pdf":
        card.send_pdf(ctx, incident)
    else:
        card.show(ctx, incident)


def register(ctx: Ctx, args: str) -> None:
    """/incidents [page]: safety officers and admins see every unit's,
    supervisors their units' subtree, anyone else what they reported."""
    page = page_index(args)
    if ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN):
        scope: dict[str, int] = {}
    elif ctx.staff.has(Role.SUPERVISOR):
        scope = {"under_unit": ctx.staff.unit_id}
    else:
        scope = {"reported_by": ctx.staff.id}
    rows = incidents.listing(ctx.conn, **scope, limit=PAGE + 1, offset=page * PAGE)
    if not rows:
        ctx.say("incident.list_none")
        return
    shown = rows[:PAGE]
    lines = [
        ctx.text(
            "incident.list_line",
            number=row["number"],
            when=local_time_text(parse_iso(row["occurred_at"]), ctx.timezone),
            kind=ctx.text(f"incident.kind_{row['kind']}"),
            unit=people.unit_path(ctx.conn, int(row["unit_id"])),
            status=ctx.text(f"incident.status_{row['investigation']}"),
            report=ctx.text(
                "incident.list_report_done"
                if row["report_submitted_at"]
                else "incident.list_report_pending"
            ),
        )
        for row in shown
    ]
    buttons = [
        [Button(str(row["number"]), f"/incident {row['number']}") for row in shown[i : i + 2]]
        for i in range(0, len(shown), 2)
    ]
    if len(rows) > PAGE:
        buttons.append([Button(ctx.text("incident.next_page"), f"/incidents {page + 2}")])
    ctx.say("incident.list_page", page=page + 1, lines="\n".join(lines), buttons=buttons)


def _find(ctx: Ctx, number: str) -> sqlite3.Row:
    """The incident, if this person may see it; otherwise the same answer as
    for a number that does not exist, whatever they asked to do with it."""
    incident = incidents.by_number(ctx.conn, number)
    if incident is None or not card.may_see(ctx, incident):
        raise UserError("incident.not_found", number=number[:20])
    return incident


# -- reporting ------------------------------------------------------------------------
def start_report(ctx: Ctx) -> None:
    ctx.goto(REPORT, "what")
    ctx.say("incident.ask_what")


def on_what(ctx: Ctx, inbound: Inbound) -> None:
    what = typed(inbound)
    if what is None:
        ctx.say("incident.ask_what")
        return
    ctx.step_to("when", what=what)
    ask_when(ctx)


def ask_when(ctx: Ctx) -> None:
    ctx.say("incident.ask_when", buttons=[[Button(ctx.text("incident.just_now"), "now")]])


def on_when(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "now":
        moment = ctx.now
    elif inbound.kind is InboundKind.TEXT:
        moment = rules.parse_when(inbound.text, ctx.timezone, ctx.now)
    else:
        ask_when(ctx)
        return
    ctx.step_to("where", at=iso(moment))
    ctx.say("incident.ask_where")


def on_where(ctx: Ctx, inbound: Inbound) -> None:
    place = typed(inbound)
    if place is None:
        ctx.say("incident.ask_where")
        return
    ctx.step_to("kind", place=place)
    ask_kind(ctx)


def ask_kind(ctx: Ctx) -> None:
    choices = [Button(ctx.text(f"incident.kind_{kind}"), kind) for kind in rules.KINDS]
    ctx.say("incident.ask_kind", buttons=[choices[i : i + 2] for i in range(0, len(choices), 2)])


def on_kind(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in rules.KINDS:
        ask_kind(ctx)
        return
    ctx.step_to("hurt", kind=inbound.text)
    ask_hurt(ctx)


def ask_hurt(ctx: Ctx) -> None:
    if ctx.data["kind"] in rules.CASUALTY:  # someone was hurt: a way back if not
        ctx.say("incident.ask_hurt", buttons=[[Button(ctx.text("incident.rekind"), "rekind")]])
        return
    ctx.say("incident.ask_hurt", buttons=[[Button(ctx.text("incident.nobody_hurt"), "0")]])


def on_hurt(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "rekind":
        ctx.step_to("kind")
        ask_kind(ctx)
        return
    if inbound.kind is InboundKind.ACTION and inbound.text == "0":
        hurt = rules.parse_count("0", ctx.data["kind"])
    elif inbound.kind is InboundKind.TEXT:
        hurt = rules.parse_count(inbound.text, ctx.data["kind"])
    else:
        ask_hurt(ctx)
        return
    if hurt:
        ctx.step_to("names", hurt=hurt)
        ctx.say("incident.ask_names", count=hurt)
    else:
        ctx.step_to("first_actions", hurt=0, names=None)
        ask_first_actions(ctx)


def on_names(ctx: Ctx, inbound: Inbound) -> None:
    names = typed(inbound)
    if names is None:
        ctx.say("incident.ask_names", count=ctx.data["hurt"])
        return
    ctx.step_to("first_actions", names=names)
    ask_first_actions(ctx)


def ask_first_actions(ctx: Ctx) -> None:
    ctx.say(
        "incident.ask_first_actions",
        buttons=[[Button(ctx.text("incident.no_first_actions"), "none")]],
    )


def on_first_actions(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "none":
        taken = None
    else:
        taken = typed(inbound)
        if taken is None:
            ask_first_actions(ctx)
            return
    ctx.step_to("photos", first_actions=taken, photos=[])
    ask_photos(ctx)


def ask_photos(ctx: Ctx) -> None:
    count = len(ctx.data["photos"])
    if count:
        ctx.say(
            "incident.photo_received",
            count=count,
            limit=rules.MAX_PHOTOS,
            buttons=[[Button(ctx.text("incident.photos_done"), "done")]],
        )
    else:
        ctx.say(
            "incident.ask_photos",
            limit=rules.MAX_PHOTOS,
            buttons=[[Button(ctx.text("incident.skip_photos"), "done")]],
        )


def on_photos(ctx: Ctx, inbound: Inbound) -> None:
    photos: list[str] = ctx.data["photos"]
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        if len(photos) >= rules.MAX_PHOTOS:
            ctx.say(
                "incident.photo_limit",
                limit=rules.MAX_PHOTOS,
                buttons=[[Button(ctx.text("incident.photos_done"), "done")]],
            )
            return
        ctx.step_to("photos", photos=[*photos, inbound.text])
        ask_photos(ctx)
    elif inbound.kind is InboundKind.ACTION and inbound.text == "done":
        finish_report(ctx)
    else:
        ask_photos(ctx)


def finish_report(ctx: Ctx) -> None:
    occurred = parse_iso(ctx.data["at"])
    zone = ctx.timezone
    deadline = rules.report_deadline(occurred, zone)
    incident_id = incidents.create(
        ctx.conn,
        NewIncident(
            unit_id=ctx.staff.unit_id,
            reported_by=ctx.staff.id,
            occurred_at=iso(occurred),
            place=ctx.data["place"],
            kind=ctx.data["kind"],
            description=ctx.data["what"],
            hurt_count=int(ctx.data["hurt"]),
            hurt_names=ctx.data.get("names"),
            first_actions=ctx.data.get("first_actions"),
            photos=list(ctx.data["photos"]),
            report_due_at=iso(deadline),
        ),
        year=local_date(occurred, zone).year,
        now=ctx.now_iso,
    )
    incident = incidents.get(ctx.conn, incident_id)
    assert incident is not None  # just written in this transaction
    report_reminders.plan(ctx.conn, incident_id, occurred, zone, ctx.now)
    told = alert(ctx, incident)
    ctx.end()
    ctx.say(
        "incident.reported",
        number=incident["number"],
        count=told,
        deadline=local_time_text(deadline, zone),
        buttons=[[Button(ctx.text("incident.btn_open"), f"/incident {incident['number']}")]],
    )


def alert_recipients(conn: sqlite3.Connection, unit_id: int, kind: str) -> list[Staff]:
    """Who hears of a new incident at once: the unit's supervisors and the
    safety officers; for a casualty or a fire also every supervisor up the
    tree and the admins."""
    found: dict[int, Staff] = {}
    every = [
        *people.supervisors_for_unit(conn, unit_id),
        *people.with_role(conn, Role.SAFETY_OFFICER),
    ]
    if rules.alerts_whole_chain(kind):
        every += people.chain_supervisors(conn, unit_id)
        every += people.admins(conn)
    for person in every:
        if person.active:
            found.setdefault(person.id, person)
    return list(found.values())


def alert(ctx: Ctx, incident: sqlite3.Row) -> int:
    """Tell the people who must act; returns how many were told."""
    unit_id = int(incident["unit_id"])
    zone = timezone_of(ctx, incident)
    number = str(incident["number"])
    recipients = [
        person
        for person in alert_recipients(ctx.conn, unit_id, str(incident["kind"]))
        if person.id != ctx.staff.id
    ]
    for person in recipients:
        language = person.language
        ctx.notify_text(
            person,
            t(
                language,
                "incident.alert",
                number=number,
                kind=t(language, f"incident.kind_{incident['kind']}"),
                when=local_time_text(parse_iso(incident["occurred_at"]), zone),
                place=incident["place"],
                unit=people.unit_path(ctx.conn, unit_id),
                description=incident["description"],
                hurt=incident["hurt_count"],
                names=incident["hurt_names"] or NOTHING,
                first_actions=incident["first_actions"] or NOTHING,
                reporter=ctx.staff.name,
                photos=len(incidents.photos(incident)),
            ),
            idempotency_key=f"incident:{incident['id']}:alert:{person.id}",
            buttons=[[Button(t(language, "incident.btn_open"), f"/incident {number}")]],
            attachments=tuple(incidents.photos(incident)),
        )
    return len(recipients)


def reprompt_report(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "what":
        ctx.say("incident.ask_what")
    elif step == "when":
        ask_when(ctx)
    elif step == "where":
        ctx.say("incident.ask_where")
    elif step == "kind":
        ask_kind(ctx)
    elif step == "hurt":
        ask_hurt(ctx)
    elif step == "names":
        ctx.say("incident.ask_names", count=ctx.data["hurt"])
    elif step == "first_actions":
        ask_first_actions(ctx)
    elif step == "photos":
        ask_photos(ctx)


report_flow = Flow(
    name=REPORT,
    steps={
        "what": on_what,
        "when": on_when,
        "where": on_where,
        "kind": on_kind,
        "hurt": on_hurt,
        "names": on_names,
        "first_actions": on_first_actions,
        "photos": on_photos,
    },
    reprompt=reprompt_report,
)
