"""Reporting a hazard (REGULATIONS §2): `/hazard` asks what is wrong, where
(typed, a shared location, or one of the places the unit has used before),
up to five photos, the category and the severity. Before it is filed the
report is compared with the unit's open and recently closed hazards: an open
match may be added to instead; a hazard closed within 30 days and reported
again is a failed rectification, flagged to the safety officers.

`file_hazard` is the one way a hazard enters the register, used by this flow
and by the checklists' ⚠️ answers: it numbers it, plans its deadline
reminders, and alerts the people who must act (a major one up the tree)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot import hazard_rules
from bot import hazards as register
from bot.clock import end_of_local_day, iso, local_date, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.hazard_rules import CATEGORIES, MAX_PHOTOS, REOPEN_WINDOW_DAYS, SEVERITIES, Report
from bot.hazard_view import send_card, summary
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.store import hazards, people
from bot.store.hazards import Hazard
from handlers import hazard_card
from handlers.text import button_number, clean_text, typed_text

FLOW = "hazard_report"
MAX_TEXT = 2000
MAX_PLACE = 100
PLACES_OFFERED = 6


@dataclass(slots=True)
class Draft:
    """A hazard as its reporter described it."""

    description: str
    source: str
    category: str = "other"
    severity: str = "general"
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    photos: list[str] = field(default_factory=list)
    repeat_of: int | None = None
    failed_rectification: bool = False
    # The unit it belongs to, if not the reporter's (a drill's area).
    unit_id: int | None = None


# -- the conversation ---------------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    """`/hazard` reports one; `/hazard YH-2026-0001` opens its card."""
    if args.strip():
        hazard_card.show_number(ctx, args)
    else:
        start(ctx)


def start(ctx: Ctx) -> None:
    ctx.goto(FLOW, "what")
    ctx.say("hazard.ask_what")


def on_what(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_what")
        return
    ctx.step_to("where", description=text)
    ask_where(ctx)


def _places(ctx: Ctx) -> list[str]:
    rows = ctx.conn.execute(
        "SELECT place FROM hazards WHERE unit_id = ? AND place IS NOT NULL AND place != ''"
        " GROUP BY place ORDER BY MAX(id) DESC LIMIT ?",
        (ctx.staff.unit_id, PLACES_OFFERED),
    ).fetchall()
    return [str(row["place"]) for row in rows]


def ask_where(ctx: Ctx) -> None:
    buttons = [[Button(ctx.text("hazard.share_location"), "@location")]]
    buttons += [[Button(place, f"p{index}")] for index, place in enumerate(_places(ctx))]
    ctx.say("hazard.ask_where", buttons=buttons)


def on_where(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.LOCATION:
        lat, lon = _coordinates(inbound)
        ctx.step_to("photos", lat=lat, lon=lon, place=None, photos=[])
    elif inbound.kind is InboundKind.ACTION and inbound.text.startswith("p"):
        places = _places(ctx)
        index = button_number(inbound, "p")
        if index is None or index >= len(places):
            ask_where(ctx)
            return
        ctx.step_to("photos", place=places[index], photos=[])
    elif inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        place = clean_text(inbound.text)
        if len(place) > MAX_PLACE:
            raise UserError("check.too_long", limit=MAX_PLACE, length=len(place))
        ctx.step_to("photos", place=place, photos=[])
    else:
        ask_where(ctx)
        return
    ask_photos(ctx)


def _coordinates(inbound: Inbound) -> tuple[float, float]:
    try:
        lat, lon = float(inbound.data["lat"]), float(inbound.data["lon"])
    except (KeyError, TypeError, ValueError):
        raise UserError("hazard.bad_location") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise UserError("hazard.bad_location")
    return lat, lon


def ask_photos(ctx: Ctx) -> None:
    count = len(ctx.data.get("photos", []))
    if count:
        ctx.say(
            "hazard.more_photos",
            count=count,
            limit=MAX_PHOTOS,
            buttons=[[Button(ctx.text("hazard.photos_done"), "done")]],
        )
    else:
        ctx.say(
            "hazard.ask_photos",
            limit=MAX_PHOTOS,
            buttons=[[Button(ctx.text("check.skip_photo"), "done")]],
        )


def on_photos(ctx: Ctx, inbound: Inbound) -> None:
    photos = list(ctx.data.get("photos", []))
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        photos.append(inbound.text)
        ctx.step_to("photos", photos=photos)
        if len(photos) < MAX_PHOTOS:
            ask_photos(ctx)
            return
        ctx.say("hazard.photo_limit", limit=MAX_PHOTOS)
    elif not (inbound.kind is InboundKind.ACTION and inbound.text == "done"):
        ask_photos(ctx)
        return
    ctx.step_to("category")
    ask_category(ctx)


def ask_category(ctx: Ctx) -> None:
    labels = [Button(ctx.text(f"hazard.category_{c}"), c) for c in CATEGORIES]
    ctx.say("hazard.ask_category", buttons=[labels[i : i + 3] for i in range(0, len(labels), 3)])


def on_category(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in CATEGORIES:
        ask_category(ctx)
        return
    ctx.step_to("severity", category=inbound.text)
    ask_severity(ctx)


def ask_severity(ctx: Ctx) -> None:
    ctx.say(
        "hazard.ask_severity",
        buttons=[[Button(ctx.text(f"hazard.severity_{s}"), s) for s in SEVERITIES]],
    )


def on_severity(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in SEVERITIES:
        ask_severity(ctx)
        return
    ctx.step_to("repeat", severity=inbound.text)
    draft = _draft(ctx)
    match = find_repeat(ctx, ctx.staff.unit_id, draft)
    if match is None:
        _file_and_end(ctx, draft)
    elif match["status"] == "closed":
        # Fixed and back within 30 days: a new hazard, and a failed rectification.
        draft.repeat_of = int(match["id"])
        draft.failed_rectification = True
        _file_and_end(ctx, draft)
    else:
        ctx.step_to("repeat", match=int(match["id"]))
        ask_repeat(ctx)


def ask_repeat(ctx: Ctx) -> None:
    match = hazards.get(ctx.conn, int(ctx.data["match"]))
    if match is None:  # pragma: no cover - hazards are never deleted
        ctx.step_to("repeat", match=None)
        return
    ctx.say(
        "hazard.ask_repeat",
        hazard=match.number,
        description=match.description[:200],
        status=ctx.text(f"hazards.status_{match.status}"),
        buttons=[
            [Button(ctx.text("hazard.add_to", hazard=match.number), "add")],
            [Button(ctx.text("hazard.file_new"), "new")],
        ],
    )


def on_repeat(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice not in ("add", "new"):
        ask_repeat(ctx)
        return
    draft = _draft(ctx)
    match = hazards.get(ctx.conn, int(ctx.data["match"]))
    assert match is not None
    if choice == "new" or match.status == "closed":  # closed while they decided
        draft.repeat_of = match.id
        draft.failed_rectification = match.status == "closed"
        _file_and_end(ctx, draft)
        return
    hazards.note(
        ctx.conn,
        match.id,
        actor_id=ctx.staff.id,
        action="added",
        now=ctx.now_iso,
        detail={"description": draft.description, "photos": draft.photos, "place": draft.place},
    )
    if draft.photos:
        hazards.add_photos(ctx.conn, match.id, draft.photos)
    ctx.end()
    ctx.say("hazard.added", hazard=match.number)


def _draft(ctx: Ctx) -> Draft:
    data = ctx.data
    return Draft(
        description=str(data["description"]),
        source="report",
        category=str(data.get("category", "other")),
        severity=str(data.get("severity", "general")),
        place=data.get("place"),
        lat=data.get("lat"),
        lon=data.get("lon"),
        photos=list(data.get("photos", [])),
    )


def _file_and_end(ctx: Ctx, draft: Draft) -> None:
    ctx.end()
    file_hazard(ctx, draft)


def reprompt(ctx: Ctx) -> None:
    {
        "what": lambda: ctx.say("hazard.ask_what"),
        "where": lambda: ask_where(ctx),
        "photos": lambda: ask_photos(ctx),
        "category": lambda: ask_category(ctx),
        "severity": lambda: ask_severity(ctx),
        "repeat": lambda: ask_repeat(ctx),
    }.get(ctx.conversation.step, lambda: None)()


flow = Flow(
    name=FLOW,
    steps={
        "what": on_what,
        "where": on_where,
        "photos": on_photos,
        "category": on_category,
        "severity": on_severity,
        "repeat": on_repeat,
    },
    reprompt=reprompt,
)


# -- repeat detection ------------------------------------------------------------------
def find_repeat(ctx: Ctx, unit_id: int, draft: Draft) -> sqlite3.Row | None:
    """The newest open or recently closed hazard of the unit this report repeats."""
    since = iso(ctx.now - timedelta(days=REOPEN_WINDOW_DAYS))
    new = Report(draft.category, draft.description, draft.place or "", draft.lat, draft.lon)
    for row in hazards.repeat_candidates(ctx.conn, unit_id, draft.category, since):
        old = Report(
            draft.category, str(row["description"]), str(row["place"] or ""), row["lat"], row["lon"]
        )
        if hazard_rules.is_repeat(new, old):
            row_found: sqlite3.Row = row
            return row_found
    return None


# -- filing ---------------------------------------------------------------------------
def file_hazard(
    ctx: Ctx,
    draft: Draft,
    *,
    detail_text: Callable[[str], str] | None = None,
    reply: str | None = "hazard.recorded",
) -> tuple[int, str]:
    """Enter a hazard in the register of the reporter's unit, plan its
    reminders and alert the people who must act; tell the reporter its
    number (unless `reply` is None). `detail_text(language)` is a line for
    the alert (the checklist item)."""
    deadline = end_of_local_day(ctx.now, ctx.timezone)
    unit_id = draft.unit_id or ctx.staff.unit_id
    # Who is told depends on the unit, not on the entry: asked now, the reads go
    # with the entry's round trip on PostgreSQL.
    asked = Alerted.ask(ctx.conn, unit_id)
    hazard_id = hazards.create(
        ctx.conn,
        unit_id=unit_id,
        reported_by=ctx.staff.id,
        source=draft.source,
        description=draft.description,
        photo=None,
        photos=draft.photos,
        severity=draft.severity,
        category=draft.category,
        place=draft.place,
        lat=draft.lat,
        lon=draft.lon,
        repeat_of=draft.repeat_of,
        failed_rectification=draft.failed_rectification,
        deadline_at=iso(deadline),
        now=ctx.now_iso,
        year=local_date(ctx.now, ctx.timezone).year,
    )
    register.plan(ctx.conn, hazard_id, draft.severity, deadline, ctx.now)
    row = hazards.get(ctx.conn, hazard_id)
    assert row is not None
    number = row.number
    told = alert_people(ctx, row, detail_text or (lambda language: ""), asked)
    if draft.failed_rectification and draft.repeat_of:
        flag_failed(ctx, row, draft.repeat_of)
    if reply:
        ctx.say(
            reply,
            hazard=number,
            deadline=local_time_text(deadline, ctx.timezone),
            told=told_text(ctx, told),
        )
    return hazard_id, number


def told_text(ctx: Ctx, told: list[tuple[Staff, Role]]) -> str:
    """Who was told, as the reporter reads it: "安全员 赵安全、主管 刘强"."""
    if not told:
        return ctx.text("hazard.told_nobody")
    separator = ctx.text("hazard.told_separator")
    return separator.join(
        f"{ctx.text(f'roles.{role.value}')} {person.name}" for person, role in told
    )


@dataclass(frozen=True, slots=True)
class Alerted:
    """The reads alert_people needs for a unit, asked ahead (people's *_ahead)."""

    unit_id: int
    supervisors: Callable[[], list[Staff]]
    groups: Callable[[], list[tuple[str, str, str]]]

    @classmethod
    def ask(cls, conn: sqlite3.Connection, unit_id: int) -> Alerted:
        """Both reads, to go in one round trip on PostgreSQL."""
        return cls(
            unit_id,
            people.chain_supervisors_ahead(conn, unit_id, with_routes=True),
            people.alert_groups_ahead(conn, unit_id),
        )


def alert_people(
    ctx: Ctx, hazard: Hazard, detail: Callable[[str], str], asked: Alerted | None = None
) -> list[tuple[Staff, Role]]:
    """The supervisors of the nearest unit up the tree that has any (other
    than the reporter) get the report with an "assign" button; with no
    supervisor anywhere above, the safety officers do. A major hazard also
    goes to the safety officers and the supervisors of every unit up the tree
    (reported up at once); the unit's alert groups see it too. Returns who was
    told, each with the role they were told as. `asked`: the hazard's unit's
    reads, asked already."""
    if asked is None or asked.unit_id != hazard.unit_id:
        asked = Alerted.ask(ctx.conn, hazard.unit_id)
    groups = asked.groups
    supervisors = [person for person in asked.supervisors() if person.id != ctx.staff.id]
    if hazard.severity != "major" and supervisors:
        nearest = supervisors[0].unit_id
        supervisors = [person for person in supervisors if person.unit_id == nearest]
    recipients = [(person, Role.SUPERVISOR) for person in supervisors]
    if hazard.severity == "major" or not supervisors:
        officers = people.with_role(ctx.conn, Role.SAFETY_OFFICER)
        recipients += [(person, Role.SAFETY_OFFICER) for person in officers]
    told: list[tuple[Staff, Role]] = []
    seen = {ctx.staff.id}
    for person, role in recipients:
        if person.id in seen:
            continue
        seen.add(person.id)
        told.append((person, role))
        send_card(
            ctx,
            person,
            hazard,
            "hazard.alert_major" if hazard.severity == "major" else "hazard.alert",
            key=f"hazard:{hazard.id}:alert:{person.id}",
            detail=detail(person.language),
        )
    for channel, chat, language in groups():
        ctx.post(
            channel,
            chat,
            t(language, "hazard.alert", hazard=hazard.number)
            + "\n"
            + summary(
                ctx.conn, hazard, language, detail(language), default_timezone=ctx.default_timezone
            ),
            idempotency_key=f"hazard:{hazard.id}:group:{chat}",
        )
    return told


def flag_failed(ctx: Ctx, hazard: Hazard, earlier_id: int) -> None:
    """Tell the safety officers a hazard came back within 30 days of being closed."""
    earlier = hazards.get(ctx.conn, earlier_id)
    assert earlier is not None
    hazards.flag_failed_rectification(ctx.conn, earlier_id)
    closed = parse_iso(earlier.closed_at) if earlier.closed_at else ctx.now
    for officer in people.with_role(ctx.conn, Role.SAFETY_OFFICER):
        ctx.notify(
            officer,
            "hazard.failed_rectification",
            idempotency_key=f"hazard:{hazard.id}:failed:{officer.id}",
            hazard=hazard.number,
            earlier=earlier.number,
            closed=local_time_text(closed, ctx.timezone),
            unit=people.unit_path(ctx.conn, hazard.unit_id),
            description=hazard.description,
            buttons=[[Button(t(officer.language, "hazard.btn_view"), f"/hz {hazard.id}")]],
        )
