"""A home visit (REGULATIONS §5), as a care worker does it on their phone:
`/visit` → choose the client (their own clients, today's planned visits
first) → check in by sharing location → during the visit, tick the services
done, write observations (with a photo and readings such as blood pressure)
and report anything unusual, which goes at once to the service-centre and
sub-district leaders → `/checkout`: location again, the no-gifts
confirmation, the end time.

The visit row is written at check-in and updated as the visit goes, so a
restart loses nothing: the visit stays open and the conversation resumes at
the menu. A check-in far from the client's home (beyond the unit's
tolerance) or without a location is an exception with a reason; a location
that cannot be right (tens of kilometres away) is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta

from bot import phones, visit_rules
from bot.engine import Ctx, Flow
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.store import clients, people, visits
from bot.store.visits import Stamp
from bot.visit_rules import FAR_REASONS, NO_LOCATION_REASONS, UNUSUAL_KINDS
from handlers import care
from handlers.hazard_report import Draft, file_hazard
from handlers.text import clean_text, typed_text
from schedules import visits as watch
from schedules.clock import iso, local_time_text, parse_iso

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
    if args.strip().isdigit():
        chosen = clients.get(ctx.conn, int(args.strip()))
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
    ask_location(ctx, "checkout")


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
    if inbound.kind is InboundKind.ACTION and inbound.text[1:].isdigit():
        client = clients.get(ctx.conn, int(inbound.text[1:]))
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
    """Where the worker is is settled: check in, or go on to the no-gifts question."""
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
        ctx.step_to("checkout")
        ask_location(ctx, "checkout")
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
    visit = _visit(ctx)
    if visit is None:
        return
    visits.add_note(
        ctx.conn,
        int(visit["id"]),
        worker_id=ctx.staff.id,
        kind="observation",
        at=ctx.now_iso,
        text=ctx.data["text"],
        photo=ctx.data.get("photo"),
        readings=readings,
    )
    ctx.say(
        "visit.observation_saved",
        readings=visit_rules.readings_text(readings) if readings else "",
    )
    ctx.step_to("menu")
    ask_menu(ctx)


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
def ask_gifts(ctx: Ctx) -> None:
    ctx.say("visit.ask_gifts", buttons=[[Button(ctx.text("visit.no_gifts"), "confirm")]])


def on_gifts(ctx: Ctx, inbound: Inbound) -> None:
    if not (inbound.kind is InboundKind.ACTION and inbound.text == "confirm"):
        ask_gifts(ctx)
        return
    visit = _visit(ctx)
    if visit is None:
        return
    client = _client(ctx, int(visit["client_id"]))
    stamp = _stamp(ctx)
    visits.check_out(ctx.conn, int(visit["id"]), ctx.staff.id, stamp)
    watch.cancel_open_visit(ctx.conn, int(visit["id"]))
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
        services="、".join(care.title(k, ctx.lang) for k in done) or "—",
        exception=_exception_text(ctx, stamp),
    )


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
        "unusual": ask_unusual,
        "unusual_text": lambda c: c.say(
            "visit.ask_unusual_text", kind=c.text(f"visit.unusual_{c.data['unusual']}")
        ),
        "unusual_photo": ask_photo,
        "unusual_hazard": ask_hazard,
        "checkout": lambda c: ask_location(c, "checkout"),
        "checkout_reason": ask_reason,
        "checkout_note": lambda c: c.say("visit.ask_reason_text"),
        "gifts": ask_gifts,
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
        "unusual": on_unusual,
        "unusual_text": on_unusual_text,
        "unusual_photo": on_unusual_photo,
        "unusual_hazard": on_hazard,
        "checkout": on_location,
        "checkout_reason": on_reason,
        "checkout_note": on_reason_note,
        "gifts": on_gifts,
    },
    reprompt=reprompt,
)
