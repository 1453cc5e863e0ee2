"""Residents' requests for a home visit (REGULATIONS §5: the service centre
takes requests and assigns a worker). A supervisor files one (`/request`:
client, services, time window, worker); the worker accepts or declines it
(`/vr 12 accept`, `/vr 12 decline` asks why); a declined request goes back to
its supervisor, who may give it to someone else (`/vr 12 reassign`).

The answer buttons are commands, so they work from any message at any time;
each is checked when pressed and again when its last answer arrives: a
second press, a stale button or the wrong person changes nothing and says why."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import care
from bot.calendar import exact_moment, parse_local
from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.numbers import parse_number
from bot.store import clients, people, visit_requests
from handlers.text import button_number, clean_text, typed_text
from schedules import visits as visit_watch

REQUEST = "visit_request"
DECLINE = "visit_decline"
CLIENTS_SHOWN = 8
PEOPLE_PAGE = 6
MAX_CANDIDATES = 500
MAX_WINDOW = timedelta(hours=24)
MAX_TEXT = 500
_CLOCK_TIME = re.compile(r"^(\d{1,2})[:：](\d{2})$")


# -- pure rules -----------------------------------------------------------------------
def parse_end(text: str, starts: datetime, timezone: str, now: datetime) -> datetime:
    """The end someone typed: a time (`11:00`, on the start's local day) or a
    full date and time. It must come after the start, within a day of it."""
    cleaned = " ".join(text.split())
    clock = _CLOCK_TIME.match(cleaned)
    if clock:
        hour, minute = int(clock[1]), int(clock[2])
        if hour > 23 or minute > 59:
            raise UserError("time.no_such_date", text=cleaned[:40])
        day = starts.astimezone(ZoneInfo(timezone)).date()
        ends = exact_moment(day, time(hour, minute), timezone)
    else:
        ends = parse_local(cleaned, timezone, now)
    if ends <= starts:
        raise UserError(
            "visit_admin.end_not_after_start",
            start=local_time_text(starts, timezone),
            end=local_time_text(ends, timezone),
        )
    if ends - starts > MAX_WINDOW:
        raise UserError(
            "visit_admin.window_too_long", hours=int(MAX_WINDOW.total_seconds()) // 3600
        )
    return ends


def window_text(starts: datetime, ends: datetime, timezone: str) -> str:
    """`2026-11-28 09:00–11:00`, or both in full when the end is another day."""
    first, last = local_time_text(starts, timezone), local_time_text(ends, timezone)
    return f"{first}–{last[11:] if first[:10] == last[:10] else last}"


def services_text(keys: list[str], language: str) -> str:
    return care.titles(keys, language)


# -- who may do what ------------------------------------------------------------------
def _scope(ctx: Ctx) -> list[int]:
    """The units whose clients a supervisor serves: theirs and those below."""
    return people.subtree_units(ctx.conn, ctx.staff.unit_id)


def _oversees(conn: sqlite3.Connection, staff: Staff, client: sqlite3.Row) -> bool:
    return people.supervises(conn, staff, int(client["unit_id"]))


def _client_of(ctx: Ctx, row: sqlite3.Row) -> sqlite3.Row:
    client = clients.get(ctx.conn, int(row["client_id"]))
    assert client is not None  # a foreign key
    return client


def _tz(ctx: Ctx, client: sqlite3.Row) -> str:
    return ctx.unit_timezone(int(client["unit_id"]))


# -- /request: the client ----------------------------------------------------------------
def start(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SUPERVISOR):
        raise UserError("visit_admin.request_not_allowed")
    if not visit_requests.has_clients(ctx.conn, _scope(ctx)):
        raise UserError("visit_admin.no_clients")
    ctx.goto(REQUEST, "client")
    if clean_text(args):
        _search_clients(ctx, clean_text(args))
        return
    ctx.say("visit_admin.ask_client")


def _search_clients(ctx: Ctx, text: str) -> None:
    found = clients.search(ctx.conn, text[:40], _scope(ctx), CLIENTS_SHOWN)
    if not found:
        ctx.say("visit_admin.no_client_found", text=text[:40])
        return
    ctx.say(
        "visit_admin.pick_client",
        buttons=[[Button(f"{row['name']} · {row['number']}", f"c{row['id']}")] for row in found],
    )


def on_client(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        _search_clients(ctx, clean_text(inbound.text))
        return
    picked = button_number(inbound, "c")
    client = clients.get(ctx.conn, picked) if picked is not None else None
    if client is None or not client["active"] or int(client["unit_id"]) not in _scope(ctx):
        ctx.say("visit_admin.ask_client")
        return
    ctx.step_to("services", client=int(client["id"]), chosen=[], more=not clients.plan(client))
    ask_services(ctx)


# -- the services ----------------------------------------------------------------------------
def _offered(ctx: Ctx) -> list[str]:
    """The client's care plan, then (once asked for) the rest of the catalogue."""
    client = clients.get(ctx.conn, int(ctx.data["client"]))
    assert client is not None
    keys = clients.plan(client)
    if ctx.data.get("more"):
        keys += [key for key in care.services() if key not in keys]
    return keys


def ask_services(ctx: Ctx) -> None:
    chosen = set(ctx.data.get("chosen", []))
    offered = _offered(ctx)
    labels = [
        Button(f"{'✅' if key in chosen else '▫️'} {care.title(key, ctx.lang)}", f"s:{key}")
        for key in offered
    ]
    buttons = [labels[i : i + 2] for i in range(0, len(labels), 2)]
    last = [Button(ctx.text("visit_admin.btn_services_done"), "done")]
    if not ctx.data.get("more") and any(key not in offered for key in care.services()):
        last.insert(0, Button(ctx.text("visit_admin.btn_more_services"), "more"))
    buttons.append(last)
    ctx.say("visit_admin.ask_services", buttons=buttons)


def on_services(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    chosen = list(ctx.data.get("chosen", []))
    if choice == "done" and chosen:
        ctx.step_to("start")
        ctx.say("visit_admin.ask_start")
        return
    if choice == "done":
        ctx.say("visit_admin.pick_a_service")
    elif choice == "more":
        ctx.step_to("services", more=True)
    elif choice.startswith("s:") and choice[2:] in _offered(ctx):
        key = choice[2:]
        chosen = [k for k in chosen if k != key] if key in chosen else [*chosen, key]
        ctx.step_to("services", chosen=chosen)
    ask_services(ctx)


# -- the time window -----------------------------------------------------------------------
def on_start(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT or not inbound.text.strip():
        ctx.say("visit_admin.ask_start")
        return
    starts = parse_local(inbound.text, ctx.timezone, ctx.now)
    ctx.step_to("end", starts=iso(starts))
    ask_end(ctx)


def ask_end(ctx: Ctx) -> None:
    ctx.say(
        "visit_admin.ask_end",
        start=local_time_text(parse_iso(ctx.data["starts"]), ctx.timezone),
    )


def on_end(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT or not inbound.text.strip():
        ask_end(ctx)
        return
    ends = parse_end(inbound.text, parse_iso(ctx.data["starts"]), ctx.timezone, ctx.now)
    ctx.step_to("worker", ends=iso(ends), page=0)
    ask_worker(ctx)


# -- the worker ------------------------------------------------------------------------------
def candidates(ctx: Ctx) -> list[Staff]:
    """The client's assigned workers first, then the other active care
    workers of the supervisor's units."""
    assigned = [
        person
        for staff_id in visit_requests.assigned_workers(ctx.conn, int(ctx.data["client"]))
        if (person := people.staff_by_id(ctx.conn, staff_id)) and person.active
    ]
    seen = {p.id for p in assigned}
    others = [
        p
        for p in people.in_units(ctx.conn, _scope(ctx), MAX_CANDIDATES, 0)
        if p.has(Role.CARE_WORKER) and p.id not in seen
    ]
    return assigned + sorted(others, key=lambda p: (p.name, p.id))


def ask_worker(ctx: Ctx, found: list[Staff] | None = None) -> None:
    page = int(ctx.data.get("page", 0))
    everyone = candidates(ctx)
    assigned = set(visit_requests.assigned_workers(ctx.conn, int(ctx.data["client"])))
    shown = found if found is not None else everyone[page * PEOPLE_PAGE :]
    buttons = [
        [Button(f"{'⭐ ' if p.id in assigned else ''}{p.name}", f"w{p.id}")]
        for p in shown[:PEOPLE_PAGE]
    ]
    nav = []
    if found is None and page > 0:
        nav.append(Button(ctx.text("hazard.page_prev"), "prev"))
    if found is None and len(shown) > PEOPLE_PAGE:
        nav.append(Button(ctx.text("hazard.page_next"), "next"))
    if nav:
        buttons.append(nav)
    if not everyone:
        ctx.say("visit_admin.no_workers")
        return
    ctx.say(
        "visit_admin.ask_worker" if found is None else "visit_admin.found_worker", buttons=buttons
    )


def on_worker(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text in ("next", "prev"):
        page = max(0, int(ctx.data.get("page", 0)) + (1 if inbound.text == "next" else -1))
        ctx.step_to("worker", page=page)
        ask_worker(ctx)
        return
    everyone = candidates(ctx)
    if inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        text = clean_text(inbound.text)[:40]
        found = [p for p in everyone if text in p.name]
        if not found:
            ctx.say("visit_admin.no_worker_found", text=text)
        ask_worker(ctx, found or None)
        return
    picked = button_number(inbound, "w")
    worker = next((p for p in everyone if p.id == picked), None)
    if worker is None:
        ask_worker(ctx)
        return
    if "reassign" in ctx.data:
        _finish_reassign(ctx, worker)
    else:
        _finish_request(ctx, worker)


def _finish_request(ctx: Ctx, worker: Staff) -> None:
    client = clients.get(ctx.conn, int(ctx.data["client"]))
    if client is None or not client["active"] or int(client["unit_id"]) not in _scope(ctx):
        ctx.end()
        ctx.say("visit_admin.client_gone")
        return
    starts, ends = parse_iso(ctx.data["starts"]), parse_iso(ctx.data["ends"])
    if starts <= ctx.now:  # the conversation took so long the time has passed
        ctx.step_to("start")
        ctx.say("time.in_the_past", text=local_time_text(starts, ctx.timezone))
        ctx.say("visit_admin.ask_start")
        return
    if visit_requests.taken(ctx.conn, int(client["id"]), worker.id, iso(starts)):
        raise UserError("visit_admin.duplicate", name=worker.name)
    request_id = visit_requests.create(
        ctx.conn,
        client_id=int(client["id"]),
        services=list(ctx.data["chosen"]),
        starts_at=iso(starts),
        ends_at=iso(ends),
        worker_id=worker.id,
        requested_by=ctx.staff.id,
        now=ctx.now_iso,
    )
    ctx.end()
    ctx.say(
        "visit_admin.requested",
        request=request_id,
        client=client["name"],
        window=window_text(starts, ends, ctx.timezone),
        worker=worker.name,
    )
    row = visit_requests.get(ctx.conn, request_id)
    assert row is not None
    _ask_worker_to_answer(ctx, row, client, worker)


def _ask_worker_to_answer(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row, worker: Staff) -> None:
    tz = _tz(ctx, client)
    lang = worker.language
    ctx.notify(
        worker,
        "visit_admin.assigned_you",
        idempotency_key=f"visitreq:{row['id']}:assigned:{worker.id}:{ctx.now_iso}",
        request=row["id"],
        supervisor=ctx.staff.name,
        client=client["name"],
        number=client["number"],
        address=client["address"],
        window=window_text(parse_iso(row["starts_at"]), parse_iso(row["ends_at"]), tz),
        services=services_text(visit_requests.services(row), lang),
        buttons=[
            [
                Button(t(lang, "visit_admin.btn_accept"), f"/vr {row['id']} accept"),
                Button(t(lang, "visit_admin.btn_decline"), f"/vr {row['id']} decline"),
            ]
        ],
    )


# -- /vr <id> [accept|decline|reassign] --------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    """The answer buttons name the request, so anyone could press a forwarded
    one: each action checks who is pressing; only the card needs a right to see."""
    first, _, word = args.strip().partition(" ")
    request_id = parse_number(first)
    row = visit_requests.get(ctx.conn, request_id) if request_id is not None else None
    if row is None:
        raise UserError("visit_admin.request_not_found", request=first[:20] or "?")
    client = _client_of(ctx, row)
    if not _may_know(ctx, row, client):  # outsiders cannot learn that a request exists
        raise UserError("visit_admin.request_not_found", request=first[:20])
    action = word.strip().lower()
    if action == "accept":
        accept(ctx, row, client)
    elif action == "decline":
        _answerable(ctx, row)
        ctx.goto(DECLINE, "reason", request=int(row["id"]))
        ask_reason(ctx)
    elif action == "reassign":
        reassign(ctx, row, client)
    else:
        show(ctx, row, client)


def _may_know(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row) -> bool:
    """The worker and who asked, the client's own centre and the groups below
    it (a colleague pressing a forwarded button is told it is not theirs), and
    its supervisors."""
    return (
        ctx.staff.id in (row["worker_id"], row["requested_by"])
        or ctx.staff.unit_id in people.subtree_units(ctx.conn, int(client["unit_id"]))
        or _oversees(ctx.conn, ctx.staff, client)
    )


def show(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row) -> None:
    tz = _tz(ctx, client)
    worker = people.staff_by_id(ctx.conn, int(row["worker_id"] or 0))
    buttons: list[Button] = []
    if row["state"] == "assigned" and ctx.staff.id == row["worker_id"]:
        buttons += [
            Button(ctx.text("visit_admin.btn_accept"), f"/vr {row['id']} accept"),
            Button(ctx.text("visit_admin.btn_decline"), f"/vr {row['id']} decline"),
        ]
    if row["state"] == "declined" and _oversees(ctx.conn, ctx.staff, client):
        buttons.append(Button(ctx.text("visit_admin.btn_reassign"), f"/vr {row['id']} reassign"))
    ctx.say(
        "visit_admin.card",
        request=row["id"],
        client=client["name"],
        number=client["number"],
        window=window_text(parse_iso(row["starts_at"]), parse_iso(row["ends_at"]), tz),
        services=services_text(visit_requests.services(row), ctx.lang),
        worker=worker.name if worker else "—",
        state=ctx.text(f"visit_admin.state_{row['state']}"),
        reason_line=ctx.text("visit_admin.card_reason", reason=row["note"]) if row["note"] else "",
        buttons=[buttons] if buttons else None,
    )


def _answerable(ctx: Ctx, row: sqlite3.Row) -> None:
    """Only the assigned worker answers, and only once."""
    if row["worker_id"] != ctx.staff.id:
        raise UserError("visit_admin.not_yours", request=row["id"])
    if row["state"] != "assigned":
        raise UserError(
            "visit_admin.already_answered",
            request=row["id"],
            state=ctx.text(f"visit_admin.state_{row['state']}"),
        )


def _still(ctx: Ctx, check: Callable[[Ctx, sqlite3.Row], None], row: sqlite3.Row) -> bool:
    """At the end of a flow: whether the action is still allowed. If it is
    not (answered or reassigned meanwhile), the flow ends, the person is told
    why, and nothing is saved."""
    try:
        check(ctx, row)
    except UserError as refusal:
        ctx.end()
        ctx.say(refusal.key, **refusal.params)
        return False
    return True


def _requesters(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row) -> list[Staff]:
    """Who hears the worker's answer: the supervisor who asked, or (gone
    meanwhile) the supervisors of the client's unit."""
    asked = people.staff_by_id(ctx.conn, int(row["requested_by"] or 0))
    if asked and asked.active and _oversees(ctx.conn, asked, client):
        return [asked]
    return people.supervisors_for_unit(ctx.conn, int(client["unit_id"]))


def accept(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row) -> None:
    _answerable(ctx, row)
    visit_requests.decide(
        ctx.conn, int(row["id"]), worker_id=ctx.staff.id, accepted=True, note=None, now=ctx.now_iso
    )
    starts = parse_iso(row["starts_at"])
    visit_watch.plan_request(ctx.conn, int(row["id"]), starts, ctx.now)
    tz = _tz(ctx, client)
    window = window_text(starts, parse_iso(row["ends_at"]), tz)
    ctx.say("visit_admin.accepted", request=row["id"], client=client["name"], window=window)
    for supervisor in _requesters(ctx, row, client):
        ctx.notify(
            supervisor,
            "visit_admin.accepted_yours",
            idempotency_key=f"visitreq:{row['id']}:accepted:{supervisor.id}",
            request=row["id"],
            worker=ctx.staff.name,
            client=client["name"],
            window=window,
        )


# -- declining -------------------------------------------------------------------------------
def ask_reason(ctx: Ctx) -> None:
    ctx.say("visit_admin.ask_decline_reason", request=ctx.data["request"])


def on_reason(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ask_reason(ctx)
        return
    row = visit_requests.get(ctx.conn, int(ctx.data["request"]))
    assert row is not None
    ctx.end()
    if not _still(ctx, _answerable, row):
        return
    visit_requests.decide(
        ctx.conn, int(row["id"]), worker_id=ctx.staff.id, accepted=False, note=text, now=ctx.now_iso
    )
    client = _client_of(ctx, row)
    tz = _tz(ctx, client)
    window = window_text(parse_iso(row["starts_at"]), parse_iso(row["ends_at"]), tz)
    ctx.say("visit_admin.declined", request=row["id"])
    for supervisor in _requesters(ctx, row, client):
        ctx.notify(
            supervisor,
            "visit_admin.declined_yours",
            idempotency_key=f"visitreq:{row['id']}:declined:{supervisor.id}:{ctx.now_iso}",
            request=row["id"],
            worker=ctx.staff.name,
            client=client["name"],
            window=window,
            reason=text,
            buttons=[
                [
                    Button(
                        t(supervisor.language, "visit_admin.btn_reassign"),
                        f"/vr {row['id']} reassign",
                    )
                ]
            ],
        )


# -- reassigning -----------------------------------------------------------------------------
def _reassignable(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row) -> None:
    if not _oversees(ctx.conn, ctx.staff, client):
        raise UserError("visit_admin.reassign_not_allowed")
    if row["state"] != "declined":
        raise UserError(
            "visit_admin.not_declined",
            request=row["id"],
            state=ctx.text(f"visit_admin.state_{row['state']}"),
        )
    if parse_iso(row["starts_at"]) <= ctx.now:
        raise UserError("visit_admin.too_late", request=row["id"])


def reassign(ctx: Ctx, row: sqlite3.Row, client: sqlite3.Row) -> None:
    _reassignable(ctx, row, client)
    ctx.goto(REQUEST, "worker", reassign=int(row["id"]), client=int(client["id"]), page=0)
    ask_worker(ctx)


def _finish_reassign(ctx: Ctx, worker: Staff) -> None:
    row = visit_requests.get(ctx.conn, int(ctx.data["reassign"]))
    assert row is not None
    client = _client_of(ctx, row)
    if not _still(ctx, lambda c, r: _reassignable(c, r, client), row):
        return
    if visit_requests.taken(
        ctx.conn, int(client["id"]), worker.id, row["starts_at"], other_than=int(row["id"])
    ):
        raise UserError("visit_admin.duplicate", name=worker.name)
    ctx.end()
    visit_requests.reassign(
        ctx.conn, int(row["id"]), worker_id=worker.id, actor_id=ctx.staff.id, now=ctx.now_iso
    )
    ctx.say("visit_admin.reassigned", request=row["id"], worker=worker.name)
    moved = visit_requests.get(ctx.conn, int(row["id"]))
    assert moved is not None
    _ask_worker_to_answer(ctx, moved, client, worker)


# -- reprompts and flows -------------------------------------------------------------------------
def reprompt_request(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "client":
        ctx.say("visit_admin.ask_client")
    elif step == "services":
        ask_services(ctx)
    elif step == "start":
        ctx.say("visit_admin.ask_start")
    elif step == "end":
        ask_end(ctx)
    elif step == "worker":
        ask_worker(ctx)


request_flow = Flow(
    name=REQUEST,
    steps={
        "client": on_client,
        "services": on_services,
        "start": on_start,
        "end": on_end,
        "worker": on_worker,
    },
    reprompt=reprompt_request,
)
decline_flow = Flow(
    name=DECLINE,
    steps={"reason": on_reason},
    reprompt=lambda ctx: ask_reason(ctx) if ctx.conversation.step == "reason" else None,
)
