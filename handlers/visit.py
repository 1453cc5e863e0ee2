"""A home visit (REGULATIONS §5), as a care worker does it on their phone:
`/visit` → choose the client (their own clients, today's planned visits
first) → check in by sharing location → during the visit, tick the services
done, write observations (with a photo and readings such as blood pressure)
and report anything unusual, which goes at once to the service-centre and
sub-district leaders → `/checkout`: location again, the no-gifts
confirmation or a gift declared (declined, or handed in; the centre leader
is told), the end time.

The visit row is written at check-in and updated as the visit goes, so a
restart loses nothing: the visit stays open and the conversation resumes at
the menu. A check-in far from the client's home (beyond the unit's
tolerance) or without a location is an exception with a reason; a location
that cannot be right (tens of kilometres away) is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta

from bot import care, phones, visit_rules
from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.numbers import parse_number
from bot.store import clients, people, visits
from bot.store.visits import Gifts, Stamp
from bot.visit_rules import FAR_REASONS, GIFT_OUTCOMES, NO_LOCATION_REASONS, UNUSUAL_KINDS
from handlers.hazard_report import Draft, file_hazard
from handlers.text import button_number, clean_text, typed_text
from schedules import visits as watch

FLOW = "visit"
MAX_TEXT = 2000
CLIENTS_SHOWN = 8
# A planned visit counts as this one when it starts within this much of the check-in.
PLANNED_WINDOW = timedelta(hours=3)


# -- starting -----------------------------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    """`/visit` (or `/visit 12` from a reminder's button)."""
    _not_in_another_flow(ctx)
    current = visits.open_visit(ctx.conn, ctx.staff.id)
    if current is not None:
        client = _client(ctx, int(current["client_id"]))
        ctx.goto(FLOW, "menu", visit=int(current["id"]))
        ctx.say(
            "visit.already_open", client=client["name"], since=_local(ctx, current["checkin_at"])
        )
        ask_menu(ctx)
        return
    if args.strip():
        client_id = parse_number(args)
        chosen = clients.get(ctx.conn, client_id) if client_id is not None else None
        if chosen is None or not chosen["active"]:
            raise UserError("visit.no_such_client", text=args.strip()[:20])
        _may_visit(ctx, chosen)
        ctx.goto(FLOW, "checkin", client=int(chosen["id"]))
        ask_checkin(ctx)
        return
    ctx.goto(FLOW, "client")
    ask_client(ctx)


def checkout_command(ctx: Ctx, args: str) -> None:
    """`/checkout`: straight to check-out of the open visit."""
    _not_in_another_flow(ctx)
    current = visits.open_visit(ctx.conn, ctx.staff.id)
    if current is None:
        raise UserError("visit.nothing_open")
    ctx.goto(FLOW, "checkout", visit=int(current["id"]))
    start_checkout(ctx)


def _not_in_another_flow(ctx: Ctx) -> None:
    if ctx.conversation.flow and ctx.conversation.flow != FLOW:
        raise UserError("errors.finish_first")


def _may_visit(ctx: Ctx, client: sqlite3.Row) -> None:
    """A worker visits the clients assigned to them, or one of their planned visits."""
    if clients.is_assigned(ctx.conn, int(client["id"]), ctx.staff.id):
        return
    if _planned(ctx, int(client["id"])) is not None:
        return
    raise UserError("visit.not_your_client", client=client["name"])


def _planned(ctx: Ctx, client_id: int) -> sqlite3.Row | None:
    return visits.planned(
        ctx.conn,
        ctx.staff.id,
        client_id,
        iso(ctx.now - PLANNED_WINDOW),
        iso(ctx.now + PLANNED_WINDOW),
    )


def _client(ctx: Ctx, client_id: int) -> sqlite3.Row:
    row = clients.get(ctx.conn, client_id)
    assert row is not None
    return row


def _local(ctx: Ctx, at: str) -> str:
    return local_time_text(parse_iso(at), ctx.timezone)


# -- choosing the client ------------------------------------------------------------------
def _choices(ctx: Ctx) -> list[sqlite3.Row]:
    """Today's planned visits first, then the worker's own clients."""
    planned = visits.planned_clients(
        ctx.conn, ctx.staff.id, iso(ctx.now - PLANNED_WINDOW), iso(ctx.now + timedelta(hours=12))
    )
    seen = {int(row["id"]) for row in planned}
    own = [row for row in clients.assigned_to(ctx.conn, ctx.staff.id) if row["id"] not in seen]
    return [*planned, *own][:CLIENTS_SHOWN]


def ask_client(ctx: Ctx) -> None:
    rows = _choices(ctx)
    if not rows:
        ctx.say("visit.ask_client_none")
        return
    ctx.say(
        "visit.ask_client",
        buttons=[
            [Button(f"{row['name']} · {row['address']}"[:40], f"c{row['id']}")] for row in rows
        ],
    )


def on_client(ctx: Ctx, inbound: Inbound) -> None:
    picked = button_number(inbound, "c")
    if picked is not None:
        client = clients.get(ctx.conn, picked)
    elif inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        found = clients.search(ctx.conn, clean_text(inbound.text)[:40], None, 2)
        if not found:
            raise UserError("visit.no_such_client", text=clean_text(inbound.text)[:20])
        client = found[0]
    else:
        ask_client(ctx)
        return
    if client is None or not client["active"]:
        ask_client(ctx)
        return
    _may_visit(ctx, client)
    ctx.step_to("checkin", client=int(client["id"]))
    ask_checkin(ctx)


# -- check-in and check-out: where the worker is ------------------------------------------
def ask_checkin(ctx: Ctx) -> None:
    client = _client(ctx, int(ctx.data["client"]))
    ctx.say(
        "visit.ask_checkin",
        client=client["name"],
        address=client["address"],
        buttons=_location_buttons(ctx),
    )


def ask_location(ctx: Ctx, step: str) -> None:
    if step == "checkin":
        ask_checkin(ctx)
    else:
        ctx.say("visit.ask_checkout", buttons=_location_buttons(ctx))


def _location_buttons(ctx: Ctx) -> list[list[Button]]:
    return [
        [Button(ctx.text("visit.share_location"), "@location")],
        [Button(ctx.text("visit.cannot_share"), "noloc")],
    ]


def on_location(ctx: Ctx, inbound: Inbound) -> None:
    """Check-in or check-out location (the step's name says which)."""
    step = ctx.conversation.step
    client = _client(ctx, _client_id(ctx))
    if inbound.kind is InboundKind.LOCATION:
        lat, lon = visit_rules.check_coordinates(inbound.data.get("lat"), inbound.data.get("lon"))
        place = visit_rules.judge(
            lat,
            lon,
            client["lat"],
            client["lon"],
            clients.tolerance_m(ctx.conn, int(client["unit_id"])),
        )
        where = {"lat": lat, "lon": lon, "distance": place.distance}
        if place.far:
            ctx.step_to(f"{step}_reason", exception="far", **where)
            ask_reason(ctx)
            return
        ctx.step_to(step, exception=None, reason=None, note=None, **where)
        _stamped(ctx, step)
    elif inbound.kind is InboundKind.ACTION and inbound.text == "noloc":
        ctx.step_to(f"{step}_reason", exception="no_location", lat=None, lon=None, distance=None)
        ask_reason(ctx)
    else:
        ask_location(ctx, step)


def _client_id(ctx: Ctx) -> int:
    if "client" in ctx.data:
        return int(ctx.data["client"])
    visit = visits.get(ctx.conn, int(ctx.data["visit"]))
    assert visit is not None
    return int(visit["client_id"])


def _reasons(ctx: Ctx) -> tuple[str, ...]:
    return FAR_REASONS if ctx.data.get("exception") == "far" else NO_LOCATION_REASONS


def ask_reason(ctx: Ctx) -> None:
    distance = ctx.data.get("distance")
    ctx.say(
        "visit.ask_far_reason" if ctx.data.get("exception") == "far" else "visit.ask_noloc_reason",
        distance=f"{float(distance):,.0f}" if distance is not None else "",
        buttons=[[Button(ctx.text(f"visit.reason_{r}"), r)] for r in _reasons(ctx)],
    )


def on_reason(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in _reasons(ctx):
        ask_reason(ctx)
        return
    stage = ctx.conversation.step.removesuffix("_reason")
    if inbound.text == "other":
        ctx.step_to(f"{stage}_note", reason="other")
        ctx.say("visit.ask_reason_text")
        return
    ctx.step_to(stage, reason=inbound.text, note=None)
    _stamped(ctx, stage)


def on_reason_note(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("visit.ask_reason_text")
        return
    stage = ctx.conversation.step.removesuffix("_note")
    ctx.step_to(stage, note=text)
    _stamped(ctx, stage)


def _stamp(ctx: Ctx) -> Stamp:
    data = ctx.data
    return Stamp(
        at=ctx.now_iso,
        lat=data.get("lat"),
        lon=data.get("lon"),
        distance_m=data.get("distance"),
        exception=data.get("exception"),
        reason=data.get("reason"),
        note=data.get("note"),
    )


def _stamped(ctx: Ctx, stage: str) -> None:
    """Where the worker is is settled: check in, or go on to the gifts question."""
    if stage == "checkin":
        check_in(ctx)
    else:
        ctx.step_to("gifts")
        ask_gifts(ctx)


def check_in(ctx: Ctx) -> None:
    client = _client(ctx, int(ctx.data["client"]))
    current = visits.open_visit(ctx.conn, ctx.staff.id)
    if current is not None:  # checked in from another phone meanwhile: that visit goes on
        ctx.goto(FLOW, "menu", visit=int(current["id"]))
        ctx.say(
            "visit.already_open",
            client=_client(ctx, int(current["client_id"]))["name"],
            since=_local(ctx, current["checkin_at"]),
        )
        ask_menu(ctx)
        return
    planned = _planned(ctx, int(client["id"]))
    stamp = _stamp(ctx)
    visit_id = visits.check_in(
        ctx.conn,
        client_id=int(client["id"]),
        worker_id=ctx.staff.id,
        unit_id=int(client["unit_id"]),
        request_id=int(planned["id"]) if planned else None,
        stamp=stamp,
    )
    watch.plan_open_visit(ctx.conn, visit_id, ctx.now)
    if planned is not None:
        watch.cancel_request(ctx.conn, int(planned["id"]))
    ctx.goto(FLOW, "menu", visit=visit_id)
    ctx.say(
        "visit.checked_in",
        client=client["name"],
        time=local_time_text(ctx.now, ctx.timezone),
        exception=_exception_text(ctx, stamp),
    )
    ask_menu(ctx)


def _exception_text(ctx: Ctx, stamp: Stamp) -> str:
    if stamp.exception is None:
        distance = f"{stamp.distance_m:,.0f}" if stamp.distance_m is not None else "—"
        return ctx.text("visit.within", distance=distance)
    return ctx.text(
        f"visit.exception_{stamp.exception}",
        reason=ctx.text(f"visit.reason_{stamp.reason}") if stamp.reason else "",
    )


# -- during the visit ---------------------------------------------------------------------
def _visit(ctx: Ctx) -> sqlite3.Row | None:
    """The open visit; None (and the conversation over, the worker told) if it
    was checked out meanwhile from another phone."""
    row = visits.get(ctx.conn, int(ctx.data["visit"]))
    if row is None or row["state"] != "open":
        ctx.end()
        ctx.say("visit.nothing_open")
        return None
    return row


def ask_menu(ctx: Ctx) -> None:
    visit = _visit(ctx)
    if visit is None:
        return
    client = _client(ctx, int(visit["client_id"]))
    done = visits.services_done(visit)
    ctx.say(
        "visit.menu",
        client=client["name"],
        since=_local(ctx, visit["checkin_at"])[11:],
        services=len(done),
        buttons=[
            [
                Button(ctx.text("visit.btn_services", count=len(done)), "services"),
                Button(ctx.text("visit.btn_observe"), "observe"),
            ],
            [
                Button(ctx.text("visit.btn_unusual"), "unusual"),
                Button(ctx.text("visit.btn_checkout"), "checkout"),
            ],
        ],
    )


def on_menu(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if _visit(ctx) is None:
        return
    if choice == "services":
        ctx.step_to("services", more=False)
        ask_services(ctx)
    elif choice == "observe":
        ctx.step_to("observe")
        ctx.say("visit.ask_observation")
    elif choice == "unusual":
        ctx.step_to("unusual")
        ask_unusual(ctx)
    elif choice == "checkout":
        start_checkout(ctx)
    else:
        ask_menu(ctx)


def ask_services(ctx: Ctx) -> None:
    visit = _visit(ctx)
    if visit is None:
        return
    client = _client(ctx, int(visit["client_id"]))
    done = set(visits.services_done(visit))
    offered = clients.plan(client)
    if ctx.data.get("more"):
        offered = [key for key in care.services() if key not in offered]
    buttons = [
        [Button(("✅ " if key in done else "▫️ ") + care.title(key, ctx.lang), f"s:{key}")]
        for key in offered
    ]
    extra = [Button(ctx.text("visit.services_done"), "done")]
    if not ctx.data.get("more"):
        extra.insert(0, Button(ctx.text("visit.services_more"), "more"))
    ctx.say("visit.ask_services", buttons=[*buttons, extra])


def on_services(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    visit = _visit(ctx)
    if visit is None:
        return
    if choice == "done":
        ctx.step_to("menu")
        ask_menu(ctx)
        return
    if choice == "more":
        ctx.step_to("services", more=True)
        ask_services(ctx)
        return
    key = choice.removeprefix("s:")
    if not choice.startswith("s:") or key not in care.services():
        ask_services(ctx)
        return
    done = visits.services_done(visit)
    done = [k for k in done if k != key] if key in done else [*done, key]
    visits.set_services(ctx.conn, int(visit["id"]), done)
    ctx.step_to("services")  # the list is asked again: its buttons change
    ask_services(ctx)


def on_observation(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("visit.ask_observation")
        return
    ctx.step_to("obs_photo", text=text)
    ask_photo(ctx)


def ask_photo(ctx: Ctx) -> None:
    ctx.say("check.ask_photo", buttons=[[Button(ctx.text("check.skip_photo"), "skip")]])


def _photo(inbound: Inbound) -> tuple[bool, str | None]:
    """(answered, the photo): a photo, or the skip button."""
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        return True, inbound.text
    if inbound.kind is InboundKind.ACTION and inbound.text == "skip":
        return True, None
    return False, None


def on_obs_photo(ctx: Ctx, inbound: Inbound) -> None:
    answered, photo = _photo(inbound)
    if not answered:
        ask_photo(ctx)
        return
    ctx.step_to("readings", photo=photo)
    ask_readings(ctx)


def ask_readings(ctx: Ctx) -> None:
    ctx.say("visit.ask_readings", buttons=[[Button(ctx.text("visit.no_readings"), "skip")]])


def on_readings(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "skip":
        readings = None
    elif inbound.kind is InboundKind.TEXT and inbound.text.strip():
        readings = visit_rules.parse_readings(inbound.text)
    else:
        ask_readings(ctx)
        return
    if readings and visit_rules.noteworthy(readings):
        ctx.step_to("readings_confirm", readings=readings)
        ask_readings_confirm(ctx)
        return
    save_observation(ctx, readings)


def ask_readings_confirm(ctx: Ctx) -> None:
    readings = dict(ctx.data["readings"])
    ctx.say(
        "visit.ask_readings_confirm",
        readings=visit_rules.readings_text(readings),
        flagged=_reading_names(ctx.lang, visit_rules.noteworthy(readings)),
        buttons=[
            [Button(ctx.text("visit.readings_right"), "confirm")],
            [Button(ctx.text("visit.readings_retype"), "retype")],
        ],
    )


def on_readings_confirm(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "retype":
        ctx.step_to("readings")
        ask_readings(ctx)
    elif choice == "confirm":
        save_observation(ctx, dict(ctx.data["readings"]))
    else:
        ask_readings_confirm(ctx)


def _reading_names(language: str, names: tuple[str, ...]) -> str:
    return t(language, "visit.name_separator").join(
        t(language, f"visit.reading_name_{name}") for name in names
    )


def save_observation(ctx: Ctx, readings: dict[str, float] | None) -> None:
    """The observation, with its readings; those outside the normal range
    (confirmed by the worker) are flagged to the client's supervisors."""
    visit = _visit(ctx)
    if visit is None:
        return
    flagged = visit_rules.noteworthy(readings) if readings else ()
    note_id = visits.add_note(
        ctx.conn,
        int(visit["id"]),
        worker_id=ctx.staff.id,
        kind="observation",
        at=ctx.now_iso,
        text=ctx.data["text"],
        photo=ctx.data.get("photo"),
        readings=readings,
        noteworthy=flagged,
    )
    told = ""
    if readings and flagged:
        client = _client(ctx, int(visit["client_id"]))
        count = report_readings(ctx, client, readings, note_id)
        told = ctx.text("visit.readings_flagged", count=count)
    ctx.say(
        "visit.observation_saved",
        readings=(visit_rules.readings_text(readings) if readings else "") + told,
    )
    ctx.step_to("menu")
    ask_menu(ctx)


def report_readings(ctx: Ctx, client: sqlite3.Row, readings: dict[str, float], note_id: int) -> int:
    recipients = [
        p
        for p in people.supervisors_for_unit(ctx.conn, int(client["unit_id"]))
        if p.id != ctx.staff.id
    ]
    flagged = visit_rules.noteworthy(readings)
    for person in recipients:
        ctx.notify(
            person,
            "visit.readings_alert",
            idempotency_key=f"visitnote:{note_id}:readings:{person.id}",
            client=client["name"],
            number=client["number"],
            readings=visit_rules.readings_text(readings),
            flagged=_reading_names(person.language, flagged),
            worker=ctx.staff.name,
            time=local_time_text(ctx.now, ctx.timezone),
            text=ctx.data["text"],
        )
    return len(recipients)


# -- anything unusual: reported at once ---------------------------------------------------
def ask_unusual(ctx: Ctx) -> None:
    ctx.say(
        "visit.ask_unusual",
        buttons=[[Button(ctx.text(f"visit.unusual_{k}"), k)] for k in UNUSUAL_KINDS]
        + [[Button(ctx.text("visit.back"), "back")]],
    )


def on_unusual(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "back":
        ctx.step_to("menu")
        ask_menu(ctx)
        return
    if choice not in UNUSUAL_KINDS:
        ask_unusual(ctx)
        return
    ctx.step_to("unusual_text", unusual=choice)
    ctx.say("visit.ask_unusual_text", kind=ctx.text(f"visit.unusual_{choice}"))


def on_unusual_text(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("visit.ask_unusual_text", kind=ctx.text(f"visit.unusual_{ctx.data['unusual']}"))
        return
    ctx.step_to("unusual_photo", text=text)
    ask_photo(ctx)


def on_unusual_photo(ctx: Ctx, inbound: Inbound) -> None:
    answered, photo = _photo(inbound)
    if not answered:
        ask_photo(ctx)
        return
    visit = _visit(ctx)
    if visit is None:
        return
    client = _client(ctx, int(visit["client_id"]))
    kind = str(ctx.data["unusual"])
    note_id = visits.add_note(
        ctx.conn,
        int(visit["id"]),
        worker_id=ctx.staff.id,
        kind="unusual",
        unusual_kind=kind,
        at=ctx.now_iso,
        text=ctx.data["text"],
        photo=photo,
    )
    told = report_unusual(ctx, client, kind, str(ctx.data["text"]), photo, note_id)
    ctx.say("visit.unusual_sent", count=told)
    if kind == "unsafe_home":
        ctx.step_to("unusual_hazard", note=note_id, photo=photo)
        ask_hazard(ctx)
        return
    ctx.step_to("menu")
    ask_menu(ctx)


def leaders(conn: sqlite3.Connection, client: sqlite3.Row) -> list[Staff]:
    """Who hears at once of anything unusual with this client: the service-centre
    and sub-district leaders of the client's unit or a unit above it, and the
    supervisors of the client's unit."""
    chain = {int(u["id"]) for u in people.unit_chain(conn, int(client["unit_id"]))}
    found: list[Staff] = []
    for role in (Role.CENTRE_LEADER, Role.SUBDISTRICT_LEADER):
        found += [p for p in people.with_role(conn, role) if p.unit_id in chain]
    found += people.supervisors_for_unit(conn, int(client["unit_id"]))
    unique: dict[int, Staff] = {}
    for person in found:
        unique.setdefault(person.id, person)
    return list(unique.values())


def report_unusual(
    ctx: Ctx, client: sqlite3.Row, kind: str, text: str, photo: str | None, note_id: int
) -> int:
    recipients = [p for p in leaders(ctx.conn, client) if p.id != ctx.staff.id]
    for person in recipients:
        ctx.notify(
            person,
            "visit.unusual_alert",
            idempotency_key=f"visitnote:{note_id}:{person.id}",
            kind=t(person.language, f"visit.unusual_{kind}"),
            client=client["name"],
            number=client["number"],
            address=client["address"],
            phone=phones.display(client["phone"], client["phone_display"]) or "—",
            contact=client["emergency_contact"] or "—",
            worker=ctx.staff.name,
            time=local_time_text(ctx.now, ctx.timezone),
            text=text,
            attachments=(photo,) if photo else (),
        )
    return len(recipients)


def ask_hazard(ctx: Ctx) -> None:
    ctx.say(
        "visit.ask_hazard",
        buttons=[
            [
                Button(ctx.text("visit.hazard_yes"), "yes"),
                Button(ctx.text("visit.hazard_no"), "no"),
            ]
        ],
    )


def on_hazard(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice not in ("yes", "no"):
        ask_hazard(ctx)
        return
    visit = _visit(ctx)
    if visit is None:
        return
    if choice == "yes":
        client = _client(ctx, int(visit["client_id"]))
        photo = ctx.data.get("photo")
        hazard_id, _ = file_hazard(
            ctx,
            Draft(
                description=str(ctx.data["text"]),
                source=f"visit:{visit['id']}",
                category="other",
                place=f"{client['name']} · {client['address']}",
                photos=[photo] if photo else [],
                unit_id=int(client["unit_id"]),
            ),
        )
        visits.link_hazard(ctx.conn, int(ctx.data["note"]), hazard_id)
    ctx.step_to("menu")
    ask_menu(ctx)


# -- check-out ----------------------------------------------------------------------------
def _doubts(ctx: Ctx, visit: sqlite3.Row) -> tuple[tuple[str, ...], float]:
    minutes = (ctx.now - parse_iso(visit["checkin_at"])).total_seconds() / 60
    return visit_rules.checkout_doubts(len(visits.services_done(visit)), minutes), minutes


def start_checkout(ctx: Ctx) -> None:
    """Check-out begins with where the worker is, unless no service was
    ticked or the visit is only minutes old: then it asks first."""
    visit = _visit(ctx)
    if visit is None:
        return
    if _doubts(ctx, visit)[0]:
        ctx.step_to("checkout_confirm")
        ask_checkout_confirm(ctx)
        return
    ctx.step_to("checkout")
    ask_location(ctx, "checkout")


def ask_checkout_confirm(ctx: Ctx) -> None:
    visit = _visit(ctx)
    if visit is None:
        return
    doubts, minutes = _doubts(ctx, visit)
    ctx.say(
        "visit.ask_checkout_confirm",
        doubts=ctx.text(
            f"visit.doubt_{'_'.join(doubts)}", duration=visit_rules.duration_text(minutes)
        ),
        buttons=[
            [Button(ctx.text("visit.back_to_services"), "back")],
            [Button(ctx.text("visit.checkout_anyway"), "confirm")],
        ],
    )


def on_checkout_confirm(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "back":
        ctx.step_to("menu")
        ask_menu(ctx)
    elif choice == "confirm":
        ctx.step_to("checkout")
        ask_location(ctx, "checkout")
    else:
        ask_checkout_confirm(ctx)


def ask_gifts(ctx: Ctx) -> None:
    ctx.say(
        "visit.ask_gifts",
        buttons=[
            [Button(ctx.text("visit.no_gifts"), "confirm")],
            [Button(ctx.text("visit.gift_offered"), "offered")],
        ],
    )


def on_gifts(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "confirm":
        check_out(ctx, visits.NO_GIFTS)
    elif choice == "offered":
        ctx.step_to("gift_outcome")
        ask_gift_outcome(ctx)
    else:
        ask_gifts(ctx)


def ask_gift_outcome(ctx: Ctx) -> None:
    ctx.say(
        "visit.ask_gift_outcome",
        buttons=[[Button(ctx.text(f"visit.gift_{o}"), o)] for o in GIFT_OUTCOMES]
        + [[Button(ctx.text("visit.back"), "back")]],
    )


def on_gift_outcome(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "back":
        ctx.step_to("gifts")
        ask_gifts(ctx)
    elif choice in GIFT_OUTCOMES:
        ctx.step_to("gift_note", gift=choice)
        ctx.say("visit.ask_gift_note")
    else:
        ask_gift_outcome(ctx)


def on_gift_note(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("visit.ask_gift_note")
        return
    check_out(ctx, Gifts(str(ctx.data["gift"]), text))


def check_out(ctx: Ctx, gifts: Gifts) -> None:
    visit = _visit(ctx)
    if visit is None:
        return
    client = _client(ctx, int(visit["client_id"]))
    stamp = _stamp(ctx)
    visits.check_out(ctx.conn, int(visit["id"]), ctx.staff.id, stamp, gifts)
    watch.cancel_open_visit(ctx.conn, int(visit["id"]))
    if gifts.outcome == "none":
        gifts_text = ctx.text("visit.gifts_none")
    else:
        told = report_gift(ctx, client, int(visit["id"]), gifts)
        gifts_text = ctx.text(
            "visit.gifts_declared", outcome=ctx.text(f"visit.gift_was_{gifts.outcome}"), count=told
        )
    started = parse_iso(visit["checkin_at"])
    minutes = (ctx.now - started).total_seconds() / 60
    done = visits.services_done(visit)
    ctx.end()
    ctx.say(
        "visit.checked_out",
        client=client["name"],
        start=local_time_text(started, ctx.timezone),
        end=local_time_text(ctx.now, ctx.timezone)[11:],
        duration=visit_rules.duration_text(minutes),
        services=care.titles(done, ctx.lang) or "—",
        exception=_exception_text(ctx, stamp),
        gifts=gifts_text,
    )


def gift_recipients(conn: sqlite3.Connection, client: sqlite3.Row) -> list[Staff]:
    """Who hears of a gift declared: the service-centre leaders of the client's
    unit or a unit above it; the unit's supervisors where it has none."""
    chain = {int(u["id"]) for u in people.unit_chain(conn, int(client["unit_id"]))}
    found = [p for p in people.with_role(conn, Role.CENTRE_LEADER) if p.unit_id in chain]
    return found or people.supervisors_for_unit(conn, int(client["unit_id"]))


def report_gift(ctx: Ctx, client: sqlite3.Row, visit_id: int, gifts: Gifts) -> int:
    recipients = [p for p in gift_recipients(ctx.conn, client) if p.id != ctx.staff.id]
    for person in recipients:
        ctx.notify(
            person,
            "visit.gift_alert",
            idempotency_key=f"visitgift:{visit_id}:{person.id}",
            worker=ctx.staff.name,
            client=client["name"],
            number=client["number"],
            outcome=t(person.language, f"visit.gift_was_{gifts.outcome}"),
            time=local_time_text(ctx.now, ctx.timezone),
            text=gifts.note or "",
        )
    return len(recipients)


# -- the flow -----------------------------------------------------------------------------
def reprompt(ctx: Ctx) -> None:
    asks: dict[str, Callable[[Ctx], None]] = {
        "client": ask_client,
        "checkin": ask_checkin,
        "checkin_reason": ask_reason,
        "checkin_note": lambda c: c.say("visit.ask_reason_text"),
        "menu": ask_menu,
        "services": ask_services,
        "observe": lambda c: c.say("visit.ask_observation"),
        "obs_photo": ask_photo,
        "readings": ask_readings,
        "readings_confirm": ask_readings_confirm,
        "unusual": ask_unusual,
        "unusual_text": lambda c: c.say(
            "visit.ask_unusual_text", kind=c.text(f"visit.unusual_{c.data['unusual']}")
        ),
        "unusual_photo": ask_photo,
        "unusual_hazard": ask_hazard,
        "checkout_confirm": ask_checkout_confirm,
        "checkout": lambda c: ask_location(c, "checkout"),
        "checkout_reason": ask_reason,
        "checkout_note": lambda c: c.say("visit.ask_reason_text"),
        "gifts": ask_gifts,
        "gift_outcome": ask_gift_outcome,
        "gift_note": lambda c: c.say("visit.ask_gift_note"),
    }
    ask = asks.get(ctx.conversation.step)
    if ask is not None:
        ask(ctx)


flow = Flow(
    name=FLOW,
    steps={
        "client": on_client,
        "checkin": on_location,
        "checkin_reason": on_reason,
        "checkin_note": on_reason_note,
        "menu": on_menu,
        "services": on_services,
        "observe": on_observation,
        "obs_photo": on_obs_photo,
        "readings": on_readings,
        "readings_confirm": on_readings_confirm,
        "unusual": on_unusual,
        "unusual_text": on_unusual_text,
        "unusual_photo": on_unusual_photo,
        "unusual_hazard": on_hazard,
        "checkout_confirm": on_checkout_confirm,
        "checkout": on_location,
        "checkout_reason": on_reason,
        "checkout_note": on_reason_note,
        "gifts": on_gifts,
        "gift_outcome": on_gift_outcome,
        "gift_note": on_gift_note,
    },
    reprompt=reprompt,
)
