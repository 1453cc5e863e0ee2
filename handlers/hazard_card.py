"""The hazard card and the actions on it (REGULATIONS §2): the four fixes
(四定), starting, submitting the rectification with photos, asking for more
time with interim measures, approving or refusing that, acceptance (验收) or
sending back, and the rectification order (整改通知书).

Card buttons are commands (`/hz 12 accept`), so they work from any message at
any time; every action is checked when pressed AND again when its last answer
arrives, against the rules in `bot.hazard_rules`: a stale or forged button, a
second press, or someone else acting first changes nothing and says why.
Each change is one `hazards.apply`, audited with who, what, when, old → new."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from bot import documents
from bot.calendar import parse_local
from bot.clock import end_of_local_day, iso, local_date, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.hazard_rules import (
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
    parse_amount,
    quick_deadlines,
)
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.numbers import money, parse_number
from bot.store import hazards, people
from handlers.text import button_number, clean_text, typed_text
from schedules import hazards as deadlines

MAX_TEXT = 2000
PEOPLE_PAGE = 6
HISTORY_SHOWN = 50  # a long history still fits a few messages

# The word after `/hz <id>` for each action, in the order buttons appear.
WORDS: dict[Action, str] = {
    Action.ASSIGN: "assign",
    Action.START: "start",
    Action.SUBMIT: "submit",
    Action.REQUEST_EXTENSION: "extend",
    Action.APPROVE_EXTENSION: "approve",
    Action.REFUSE_EXTENSION: "refuse",
    Action.ACCEPT: "accept",
    Action.SEND_BACK: "back",
    Action.ORDER: "order",
}
ACTIONS = {word: action for action, word in WORDS.items()}

ASSIGN_FLOW = "hazard_assign"
SUBMIT_FLOW = "hazard_submit"
EXTEND_FLOW = "hazard_extend"
BACK_FLOW = "hazard_back"
ORDER_FLOW = "hazard_order"


# -- who may do what ------------------------------------------------------------------
def facts(row: sqlite3.Row) -> HazardFacts:
    responsible = row["responsible_id"]
    return HazardFacts(Status(row["status"]), int(responsible) if responsible else None)


def oversees(conn: sqlite3.Connection, staff: Staff, row: sqlite3.Row) -> bool:
    """A supervisor of the hazard's unit or of a unit above it."""
    return people.supervises(conn, staff, int(row["unit_id"]))


def may_see(conn: sqlite3.Connection, staff: Staff, row: sqlite3.Row) -> bool:
    return (
        staff.id in (row["reported_by"], row["responsible_id"])
        or staff.has(Role.SAFETY_OFFICER, Role.ADMIN)
        or oversees(conn, staff, row)
    )


def allowed(conn: sqlite3.Connection, staff: Staff, row: sqlite3.Row) -> list[Action]:
    """The actions `staff` may take on the hazard now, in button order."""
    status, fact = Status(row["status"]), facts(row)
    over = oversees(conn, staff, row)
    return [a for a in WORDS if (status, a) in TRANSITIONS and may(a, staff, fact, over)]


def _check(ctx: Ctx, row: sqlite3.Row, action: Action) -> Status:
    """The state the action leads to, or a refusal saying why not."""
    if not may(action, ctx.staff, facts(row), oversees(ctx.conn, ctx.staff, row)):
        raise UserError("hazard.not_allowed")
    return next_status_text(ctx, row, action)


def next_status_text(ctx: Ctx, row: sqlite3.Row, action: Action) -> Status:
    try:
        return next_status(Status(row["status"]), action)
    except UserError:
        raise UserError(
            "hazard.not_now",
            hazard=row["number"],
            status=ctx.text(f"hazards.status_{row['status']}"),
        ) from None


# -- the card -------------------------------------------------------------------------
def _tz(conn: sqlite3.Connection, row: sqlite3.Row, default_timezone: str) -> str:
    return people.unit_timezone(conn, int(row["unit_id"]), default_timezone)


def _name(conn: sqlite3.Connection, staff_id: Any) -> str:
    person = people.staff_by_id(conn, int(staff_id)) if staff_id else None
    return person.name if person else "—"


def _photos(value: Any) -> list[str]:
    return [str(p) for p in json.loads(str(value))] if value else []


def summary(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    language: str,
    detail: str = "",
    *,
    default_timezone: str,
) -> str:
    """The card's head: what, where, how bad, where it stands, the four fixes."""
    tz = _tz(conn, row, default_timezone)
    where = row["place"] or ""
    if row["lat"] is not None and row["lon"] is not None:
        where = f"{where} 📍{float(row['lat']):.5f},{float(row['lon']):.5f}".strip()
    lines = [
        t(
            language,
            "hazard.card_kind",
            severity=t(language, f"hazard.severity_{row['severity']}"),
            category=t(language, f"hazard.category_{row['category']}"),
            status=t(language, f"hazards.status_{row['status']}"),
        ),
        t(
            language,
            "hazard.card_where",
            unit=people.unit_path(conn, int(row["unit_id"])),
            place=where or "—",
        ),
        t(
            language,
            "hazard.card_what",
            description=row["description"],
            reporter=_name(conn, row["reported_by"]),
            photos=f" 📷{len(_photos(row['photos']))}" if row["photos"] else "",
        ),
    ]
    if detail:
        lines.append(detail)
    if row["responsible_id"]:
        funding = row["funding"]
        lines.append(
            t(
                language,
                "hazard.card_fixes",
                responsible=_name(conn, row["responsible_id"]),
                measure=row["measure"] or "—",
                deadline=local_time_text(parse_iso(row["deadline_at"]), tz),
                funding=t(language, "hazard.no_funding")
                if funding in (None, "0", "0.00")
                else t(language, "hazard.funding", amount=money(funding)),
            )
        )
    else:
        lines.append(
            t(
                language,
                "hazard.card_deadline",
                deadline=local_time_text(parse_iso(row["deadline_at"]), tz),
            )
        )
    if row["status"] == Status.EXTENSION and row["proposed_deadline_at"]:
        lines.append(
            t(
                language,
                "hazard.card_extension",
                measures=row["interim_measures"] or "—",
                deadline=local_time_text(parse_iso(row["proposed_deadline_at"]), tz),
            )
        )
    if row["rectification"]:
        lines.append(t(language, "hazard.card_rectification", text=row["rectification"]))
    if row["failed_rectification"]:
        lines.append(t(language, "hazard.card_failed"))
    return "\n".join(lines)


def card_text(
    conn: sqlite3.Connection, row: sqlite3.Row, language: str, *, default_timezone: str
) -> str:
    """The whole card: the head, the orders issued, and the history."""
    tz = _tz(conn, row, default_timezone)
    parts = [
        t(language, "hazard.card_head", hazard=row["number"]),
        summary(conn, row, language, default_timezone=default_timezone),
    ]
    for order in hazards.orders(conn, int(row["id"])):
        parts.append(
            t(
                language,
                "hazard.card_order",
                order=order["number"],
                deadline=local_time_text(parse_iso(order["deadline_at"]), tz),
            )
        )
    history = hazards.history(conn, int(row["id"]))
    parts.append(t(language, "hazard.card_history"))
    if len(history) > HISTORY_SHOWN:
        parts.append(t(language, "hazard.card_earlier", count=len(history) - HISTORY_SHOWN))
        history = history[-HISTORY_SHOWN:]
    for entry in history:
        parts.append(_event_line(entry, language, tz))
    return "\n".join(parts)


def _event_line(entry: sqlite3.Row, language: str, tz: str) -> str:
    """One line of the history: who did what, and what they wrote, set apart."""
    detail = json.loads(entry["detail"]) if entry["detail"] else {}
    common = {"at": local_time_text(parse_iso(entry["at"]), tz)[5:], "who": entry["actor"] or "—"}
    if entry["action"] == Action.ASSIGN and detail.get("responsible"):
        return t(language, "hazard.card_event_assign", name=detail["responsible"], **common)
    action = t(language, f"hazard.did_{entry['action']}")
    note = str(detail.get("reason") or detail.get("description") or "")
    if note:
        shown = note if len(note) <= 80 else note[:79] + "…"
        return t(language, "hazard.card_event_note", action=action, note=shown, **common)
    return t(language, "hazard.card_event", action=action, **common)


def buttons_for(
    conn: sqlite3.Connection, staff: Staff, row: sqlite3.Row, language: str
) -> list[list[Button]]:
    labels = [
        Button(t(language, f"hazard.btn_{WORDS[a]}"), f"/hz {row['id']} {WORDS[a]}")
        for a in allowed(conn, staff, row)
    ]
    return [labels[i : i + 3] for i in range(0, len(labels), 3)]


def send_card(
    ctx: Ctx,
    person: Staff,
    row: sqlite3.Row,
    intro: str,
    *,
    key: str,
    detail: str = "",
    photo: str | None = None,
    documents_for: Callable[[str], str] | None = None,
    **params: Any,
) -> None:
    """Notify `person` about the hazard: a line saying why, the card's head,
    and the buttons for what they may do now; `documents_for` makes a
    printable document in their language to go with it."""
    photos = _photos(row["photos"])
    first = photo or (photos[0] if photos and intro.startswith("hazard.alert") else None)
    ctx.notify_text(
        person,
        t(person.language, intro, hazard=row["number"], **params)
        + "\n"
        + summary(ctx.conn, row, person.language, detail, default_timezone=ctx.default_timezone),
        idempotency_key=key,
        buttons=[
            *buttons_for(ctx.conn, person, row, person.language),
            [Button(t(person.language, "hazard.btn_view"), f"/hz {row['id']}")],
        ],
        attachments=((first,) if first else ())
        + ((documents_for(person.language),) if documents_for else ()),
    )


def show(ctx: Ctx, row: sqlite3.Row) -> None:
    printable = [
        Button(
            ctx.text("documents.btn_pdf", number=o["number"]), f"/hz {row['id']} pdf {o['number']}"
        )
        for o in hazards.orders(ctx.conn, int(row["id"]))
    ]
    ctx.say_text(
        card_text(ctx.conn, row, ctx.lang, default_timezone=ctx.default_timezone),
        buttons=buttons_for(ctx.conn, ctx.staff, row, ctx.lang)
        + [printable[i : i + 2] for i in range(0, len(printable), 2)],
        attachments=tuple(_photos(row["photos"])[:1]),
    )


def send_orders(ctx: Ctx, row: sqlite3.Row, wanted: str) -> None:
    """`/hz <id> pdf [ZG-2026-001]`: the hazard's orders (or the one named) as
    PDF, for anyone who may see the hazard."""
    numbers = [str(o["number"]) for o in hazards.orders(ctx.conn, int(row["id"]))]
    if wanted:
        numbers = [n for n in numbers if n == wanted.strip().upper()]
    if not numbers:
        raise UserError("documents.order_none", hazard=row["number"])
    for number in numbers:
        ctx.say(
            "documents.order_attached",
            order=number,
            attachments=(
                documents.order_pdf(
                    ctx.conn, number, ctx.lang, default_timezone=ctx.default_timezone, now=ctx.now
                ),
            ),
        )


def _visible(ctx: Ctx, row: sqlite3.Row | None, typed: str | None = None) -> sqlite3.Row:
    """The hazard, if this person may see it; otherwise the same answer as
    for one that does not exist (nothing leaks). The answer repeats the
    register number someone typed, never a button's internal id."""
    if row is None or not may_see(ctx.conn, ctx.staff, row):
        if typed is None:
            raise UserError("hazard.no_such")
        raise UserError("hazard.not_found", number=typed[:20])
    return row


def show_number(ctx: Ctx, number: str) -> None:
    """`/hazard YH-2026-0001`."""
    show(ctx, _visible(ctx, hazards.by_number(ctx.conn, number), number))


# -- /hz <id> [action] -----------------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    first, _, word = args.strip().partition(" ")
    hazard_id = parse_number(first)
    # An internal id is never quoted back: the same answer for any id one may not see.
    row = _visible(ctx, hazards.get(ctx.conn, hazard_id) if hazard_id is not None else None)
    if not word.strip():
        show(ctx, row)
        return
    wanted, _, number = word.strip().partition(" ")
    if wanted.lower() == "pdf":
        send_orders(ctx, row, number)
        return
    action = ACTIONS.get(word.strip().lower())
    if action is None:
        raise UserError("hazard.not_allowed")
    _check(ctx, row, action)
    hazard_id = int(row["id"])
    if action is Action.ASSIGN:
        ctx.goto(ASSIGN_FLOW, "who", hazard=hazard_id, page=0)
        ask_who(ctx)
    elif action is Action.START:
        _apply(ctx, row, action, changes={})
        ctx.say("hazard.started", hazard=row["number"])
    elif action is Action.SUBMIT:
        ctx.goto(SUBMIT_FLOW, "done", hazard=hazard_id, photos=[])
        ctx.say("hazard.ask_done", hazard=row["number"])
    elif action is Action.REQUEST_EXTENSION:
        ctx.goto(EXTEND_FLOW, "measures", hazard=hazard_id)
        ctx.say("hazard.ask_measures", hazard=row["number"])
    elif action is Action.APPROVE_EXTENSION:
        approve(ctx, row)
    elif action is Action.REFUSE_EXTENSION:
        refuse(ctx, row)
    elif action is Action.ACCEPT:
        accept(ctx, row)
    elif action is Action.SEND_BACK:
        ctx.goto(BACK_FLOW, "reason", hazard=hazard_id)
        ctx.say("hazard.ask_reason", hazard=row["number"])
    elif action is Action.ORDER:
        ctx.goto(ORDER_FLOW, "deadline", hazard=hazard_id)
        ask_deadline(ctx, "hazard.ask_order_deadline", row)


def _apply(
    ctx: Ctx,
    row: sqlite3.Row,
    action: Action,
    *,
    changes: dict[str, Any],
    detail: dict[str, Any] | None = None,
) -> sqlite3.Row:
    """Take the action (checked again now), write it, and return the hazard as it is now."""
    status = _check(ctx, row, action)
    if not hazards.apply(
        ctx.conn,
        int(row["id"]),
        expected=row["status"],
        status=status.value,
        actor_id=ctx.staff.id,
        action=action.value,
        now=ctx.now_iso,
        changes=changes,
        detail=detail,
    ):  # pragma: no cover - one writer thread: the row read above is current
        raise UserError("hazard.changed_meanwhile", hazard=row["number"])
    moved = hazards.get(ctx.conn, int(row["id"]))
    assert moved is not None
    return moved


def _current(ctx: Ctx, action: Action) -> sqlite3.Row | None:
    """At the end of a flow: the hazard, if the action is still allowed;
    otherwise the flow ends, the person is told what changed, nothing is saved."""
    row = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    assert row is not None
    try:
        _check(ctx, row, action)
    except UserError as refusal:
        ctx.end()
        ctx.say("hazard.changed_meanwhile", hazard=row["number"])
        ctx.say(refusal.key, **refusal.params)
        return None
    return row


def _overseers(conn: sqlite3.Connection, row: sqlite3.Row) -> list[Staff]:
    """Who approves and accepts: the nearest supervisors up the tree other
    than the responsible person, else the safety officers."""
    return deciders(
        people.chain_supervisors(conn, int(row["unit_id"])),
        people.with_role(conn, Role.SAFETY_OFFICER),
        int(row["responsible_id"]) if row["responsible_id"] else None,
    )


def _tell(
    ctx: Ctx,
    recipients: list[Staff],
    row: sqlite3.Row,
    intro: str,
    step: str,
    documents_for: Callable[[str], str] | None = None,
    **params: Any,
) -> None:
    seen = {ctx.staff.id}
    for person in recipients:
        if person.id not in seen:
            seen.add(person.id)
            send_card(
                ctx,
                person,
                row,
                intro,
                key=f"hazard:{row['id']}:{step}:{ctx.now_iso}:{person.id}",
                documents_for=documents_for,
                **params,
            )


def _responsible(ctx: Ctx, row: sqlite3.Row) -> list[Staff]:
    person = people.staff_by_id(ctx.conn, int(row["responsible_id"] or 0))
    return [person] if person else []


# -- deadlines people type or pick ------------------------------------------------------
def ask_deadline(ctx: Ctx, key: str, row: sqlite3.Row) -> None:
    quick = [Button(ctx.text(f"hazard.due_{name}"), name) for name in ("today", "tomorrow")]
    quick2 = [Button(ctx.text(f"hazard.due_{name}"), name) for name in ("3d", "7d")]
    ctx.say(key, hazard=row["number"], buttons=[quick, quick2])


def read_deadline(ctx: Ctx, inbound: Inbound) -> datetime | None:
    """A quick choice, or a typed date (the end of that local day) or date
    and time; None if it was neither. In the past: a refusal."""
    tz = ctx.timezone
    if inbound.kind is InboundKind.ACTION:
        choices = quick_deadlines(ctx.now, end_of_local_day(ctx.now, tz))
        picked = choices.get(inbound.text)
        return check_deadline(picked, ctx.now) if picked else None
    if inbound.kind is not InboundKind.TEXT or not inbound.text.strip():
        return None
    return parse_local(inbound.text, tz, ctx.now, date_only=time(23, 59, 59))


def _year(ctx: Ctx) -> int:
    return local_date(ctx.now, ctx.timezone).year


# -- the four fixes (四定) ---------------------------------------------------------------
def _assignable(ctx: Ctx) -> list[int]:
    """The units the responsible person may come from, from the store: the
    hazard's unit and those below it, and the units this supervisor heads."""
    row = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    assert row is not None
    return assignable_units(
        people.subtree_units(ctx.conn, int(row["unit_id"])),
        ctx.staff,
        people.subtree_units(ctx.conn, ctx.staff.unit_id),
    )


def _candidates(ctx: Ctx, page: int) -> list[Staff]:
    return people.in_units(ctx.conn, _assignable(ctx), PEOPLE_PAGE + 1, page * PEOPLE_PAGE)


def ask_who(ctx: Ctx, found: list[Staff] | None = None) -> None:
    page = int(ctx.data.get("page", 0))
    shown = found if found is not None else _candidates(ctx, page)
    buttons = [[Button(p.name, f"s{p.id}")] for p in shown[:PEOPLE_PAGE]]
    nav = []
    if found is None and page > 0:
        nav.append(Button(ctx.text("hazard.page_prev"), "prev"))
    if found is None and len(shown) > PEOPLE_PAGE:
        nav.append(Button(ctx.text("hazard.page_next"), "next"))
    if nav:
        buttons.append(nav)
    ctx.say("hazard.ask_who" if found is None else "hazard.found_who", buttons=buttons)


def on_who(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text in ("next", "prev"):
        page = max(0, int(ctx.data.get("page", 0)) + (1 if inbound.text == "next" else -1))
        ctx.step_to("who", page=page)
        ask_who(ctx)
        return
    if inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        found = people.search_active(
            ctx.conn, clean_text(inbound.text)[:40], PEOPLE_PAGE, units=_assignable(ctx)
        )
        if not found:
            ctx.say("hazard.nobody_found", text=clean_text(inbound.text)[:40])
            ask_who(ctx)
            return
        ask_who(ctx, found)
        return
    picked = button_number(inbound, "s")
    person = people.staff_by_id(ctx.conn, picked) if picked is not None else None
    if person is None or not may_be_responsible(person, _assignable(ctx)):
        # A forged or stale choice: the same answer whether or not that person exists.
        ctx.say("hazard.not_assignable")
        ask_who(ctx)
        return
    if not person.active:
        raise UserError("hazard.person_inactive", name=person.name)
    ctx.step_to("measure", responsible=person.id)
    if "amount" in ctx.data:  # choosing again after the first choice left: the rest stands
        _finish_assign(ctx)
        return
    ctx.say("hazard.ask_measure", name=person.name)


def on_measure(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_measure", name=_name(ctx.conn, ctx.data["responsible"]))
        return
    ctx.step_to("deadline", measure=text)
    _ask_assign_deadline(ctx)


def _ask_assign_deadline(ctx: Ctx) -> None:
    row = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    assert row is not None
    ask_deadline(
        ctx,
        "hazard.ask_deadline_general" if row["severity"] == "general" else "hazard.ask_deadline",
        row,
    )


def on_assign_deadline(ctx: Ctx, inbound: Inbound) -> None:
    deadline = read_deadline(ctx, inbound)
    if deadline is None:
        _ask_assign_deadline(ctx)
        return
    ctx.step_to("funding", deadline=iso(deadline))
    ask_funding(ctx)


def ask_funding(ctx: Ctx) -> None:
    ctx.say("hazard.ask_funding", buttons=[[Button(ctx.text("hazard.no_funding"), "none")]])


def on_funding(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "none":
        amount = Decimal("0")
    elif inbound.kind is InboundKind.TEXT and inbound.text.strip():
        amount = parse_amount(inbound.text)
    else:
        ask_funding(ctx)
        return
    ctx.step_to("funding", amount=str(amount))
    _finish_assign(ctx)


def _finish_assign(ctx: Ctx) -> None:
    amount = Decimal(ctx.data["amount"])
    row = _current(ctx, Action.ASSIGN)
    if row is None:
        return
    responsible = people.staff_by_id(ctx.conn, int(ctx.data["responsible"]))
    if responsible is None or not may_be_responsible(responsible, _assignable(ctx)):
        # Moved to another unit (or this person's own unit changed) while typing.
        ctx.step_to("who", page=0)
        ctx.say("hazard.not_assignable")
        ask_who(ctx)
        return
    if not responsible.active:
        # Deactivated while the supervisor was typing: choose again, keep the rest.
        ctx.step_to("who", page=0)
        ctx.say("hazard.person_inactive", name=responsible.name)
        ask_who(ctx)
        return
    deadline = parse_iso(ctx.data["deadline"])
    if deadline <= ctx.now:
        ctx.step_to("deadline")
        ctx.say("time.in_the_past", text=local_time_text(deadline, ctx.timezone))
        _ask_assign_deadline(ctx)
        return
    moved = _apply(
        ctx,
        row,
        Action.ASSIGN,
        changes={
            "responsible_id": responsible.id,
            "assigned_by": ctx.staff.id,
            "measure": ctx.data["measure"],
            "deadline_at": iso(deadline),
            "funding": str(amount),
        },
        detail={
            "responsible": responsible.name,
            "responsible_id": responsible.id,
            "measure": ctx.data["measure"],
            "deadline_at": iso(deadline),
            "funding": str(amount),
        },
    )
    deadlines.plan(ctx.conn, int(row["id"]), str(row["severity"]), deadline, ctx.now)
    ctx.end()
    ctx.say(
        "hazard.assigned",
        hazard=row["number"],
        name=responsible.name,
        deadline=local_time_text(deadline, ctx.timezone),
    )
    _tell(ctx, [responsible], moved, "hazard.yours", "assigned", supervisor=ctx.staff.name)


# -- rectification ------------------------------------------------------------------------
def on_done(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_done", hazard=_number(ctx))
        return
    ctx.step_to("photos", done=text, photos=[])
    ask_evidence(ctx)


def _number(ctx: Ctx) -> str:
    row = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    return str(row["number"]) if row else "?"


def ask_evidence(ctx: Ctx) -> None:
    count = len(ctx.data.get("photos", []))
    if count:
        ctx.say(
            "hazard.more_photos",
            count=count,
            limit=MAX_PHOTOS,
            buttons=[[Button(ctx.text("hazard.photos_done"), "done")]],
        )
    else:
        ctx.say("hazard.ask_evidence")


def on_evidence(ctx: Ctx, inbound: Inbound) -> None:
    photos = list(ctx.data.get("photos", []))
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        photos.append(inbound.text)
        ctx.step_to("photos", photos=photos)
        if len(photos) < MAX_PHOTOS:
            ask_evidence(ctx)
            return
    elif not (inbound.kind is InboundKind.ACTION and inbound.text == "done" and photos):
        ask_evidence(ctx)
        return
    row = _current(ctx, Action.SUBMIT)
    if row is None:
        return
    moved = _apply(
        ctx,
        row,
        Action.SUBMIT,
        changes={"rectification": ctx.data["done"], "rectification_photos": json.dumps(photos)},
        detail={"description": ctx.data["done"], "photos": photos},
    )
    ctx.end()
    ctx.say("hazard.submitted", hazard=row["number"])
    _tell(
        ctx,
        _overseers(ctx.conn, moved),
        moved,
        "hazard.to_accept",
        "submitted",
        photo=photos[0],
        name=ctx.staff.name,
    )


# -- asking for more time -------------------------------------------------------------------
def on_measures(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_measures", hazard=_number(ctx))
        return
    ctx.step_to("photo", measures=text)
    ask_interim_photo(ctx)


def ask_interim_photo(ctx: Ctx) -> None:
    ctx.say("hazard.ask_interim_photo", buttons=[[Button(ctx.text("check.skip_photo"), "skip")]])


def on_interim_photo(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        ctx.step_to("new_deadline", photo=inbound.text)
    elif inbound.kind is InboundKind.ACTION and inbound.text == "skip":
        ctx.step_to("new_deadline", photo=None)
    else:
        ask_interim_photo(ctx)
        return
    ctx.say("hazard.ask_new_deadline", hazard=_number(ctx))


def on_new_deadline(ctx: Ctx, inbound: Inbound) -> None:
    deadline = read_deadline(ctx, inbound)
    if deadline is None:
        ctx.say("hazard.ask_new_deadline", hazard=_number(ctx))
        return
    row = _current(ctx, Action.REQUEST_EXTENSION)
    if row is None:
        return
    if deadline <= parse_iso(row["deadline_at"]):
        raise UserError(
            "hazard.not_later",
            deadline=local_time_text(parse_iso(row["deadline_at"]), ctx.timezone),
        )
    photo = ctx.data.get("photo")
    moved = _apply(
        ctx,
        row,
        Action.REQUEST_EXTENSION,
        changes={"interim_measures": ctx.data["measures"], "proposed_deadline_at": iso(deadline)},
        detail={
            "description": ctx.data["measures"],
            "photo": photo,
            "proposed_deadline_at": iso(deadline),
        },
    )
    ctx.end()
    ctx.say("hazard.extension_requested", hazard=row["number"])
    _tell(
        ctx,
        _overseers(ctx.conn, moved),
        moved,
        "hazard.to_approve",
        "extension",
        photo=photo,
        name=ctx.staff.name,
    )


def approve(ctx: Ctx, row: sqlite3.Row) -> None:
    deadline = parse_iso(row["proposed_deadline_at"])
    moved = _apply(
        ctx,
        row,
        Action.APPROVE_EXTENSION,
        changes={"deadline_at": iso(deadline), "proposed_deadline_at": None},
        detail={"deadline_at": iso(deadline)},
    )
    deadlines.plan(ctx.conn, int(row["id"]), str(row["severity"]), deadline, ctx.now)
    when = local_time_text(deadline, ctx.timezone)
    ctx.say("hazard.extension_approved", hazard=row["number"], deadline=when)
    _tell(ctx, _responsible(ctx, moved), moved, "hazard.approved_yours", "approved", deadline=when)


def refuse(ctx: Ctx, row: sqlite3.Row) -> None:
    moved = _apply(
        ctx, row, Action.REFUSE_EXTENSION, changes={"proposed_deadline_at": None}, detail={}
    )
    when = local_time_text(parse_iso(row["deadline_at"]), ctx.timezone)
    ctx.say("hazard.extension_refused", hazard=row["number"], deadline=when)
    _tell(ctx, _responsible(ctx, moved), moved, "hazard.refused_yours", "refused", deadline=when)


# -- acceptance ------------------------------------------------------------------------------
def accept(ctx: Ctx, row: sqlite3.Row) -> None:
    moved = _apply(
        ctx,
        row,
        Action.ACCEPT,
        changes={"accepted_by": ctx.staff.id, "closed_at": ctx.now_iso},
        detail={},
    )
    deadlines.stop(ctx.conn, int(row["id"]))
    ctx.say("hazard.accepted", hazard=row["number"])
    reporter = people.staff_by_id(ctx.conn, int(row["reported_by"]))
    _tell(
        ctx,
        _responsible(ctx, moved) + ([reporter] if reporter and reporter.active else []),
        moved,
        "hazard.closed_yours",
        "closed",
    )


def on_reason(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_reason", hazard=_number(ctx))
        return
    row = _current(ctx, Action.SEND_BACK)
    if row is None:
        return
    moved = _apply(ctx, row, Action.SEND_BACK, changes={}, detail={"reason": text})
    ctx.end()
    ctx.say("hazard.sent_back", hazard=row["number"])
    _tell(ctx, _responsible(ctx, moved), moved, "hazard.back_yours", "back", reason=text)


# -- the rectification order (整改通知书) --------------------------------------------------------
def on_order_deadline(ctx: Ctx, inbound: Inbound) -> None:
    row = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    assert row is not None
    deadline = read_deadline(ctx, inbound)
    if deadline is None:
        ask_deadline(ctx, "hazard.ask_order_deadline", row)
        return
    if row["deadline_at"] and deadline < parse_iso(row["deadline_at"]):
        ctx.step_to("earlier", deadline=iso(deadline))  # shortens the time given: ask
        ask_earlier(ctx)
        return
    ctx.step_to("requirement", deadline=iso(deadline))
    ask_requirement(ctx)


def ask_earlier(ctx: Ctx) -> None:
    ctx.say(
        "hazard.ask_order_earlier",
        deadline=local_time_text(parse_iso(ctx.data["deadline"]), ctx.timezone),
        assigned=local_time_text(parse_iso(_row(ctx)["deadline_at"]), ctx.timezone),
        buttons=[
            [Button(ctx.text("hazard.order_earlier_yes"), "yes")],
            [Button(ctx.text("hazard.order_earlier_no"), "no")],
        ],
    )


def on_earlier(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "yes":
        ctx.step_to("requirement")
        ask_requirement(ctx)
    elif choice == "no":
        ctx.step_to("deadline")
        ask_deadline(ctx, "hazard.ask_order_deadline", _row(ctx))
    else:
        ask_earlier(ctx)


def ask_requirement(ctx: Ctx) -> None:
    ctx.say("hazard.ask_requirement", buttons=[[Button(ctx.text("hazard.use_measure"), "same")]])


def on_requirement(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "same":
        text = ""
    elif inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        text = clean_text(inbound.text)
        if len(text) > MAX_TEXT:
            raise UserError("check.too_long", limit=MAX_TEXT, length=len(text))
    else:
        ask_requirement(ctx)
        return
    row = _current(ctx, Action.ORDER)
    if row is None:
        return
    deadline = parse_iso(ctx.data["deadline"])
    check_deadline(deadline, ctx.now)
    requirement = text or str(row["measure"] or row["description"])
    number = hazards.issue_order(
        ctx.conn,
        hazard_id=int(row["id"]),
        issued_by=ctx.staff.id,
        deadline_at=iso(deadline),
        requirement=requirement,
        now=ctx.now_iso,
        year=_year(ctx),
    )
    moved = _apply(
        ctx,
        row,
        Action.ORDER,
        changes={"deadline_at": iso(deadline)},
        detail={"order": number, "deadline_at": iso(deadline), "description": requirement},
    )
    deadlines.plan(ctx.conn, int(row["id"]), str(row["severity"]), deadline, ctx.now)
    ctx.end()
    when = local_time_text(deadline, ctx.timezone)
    ctx.say(
        "hazard.order_issued",
        order=number,
        hazard=row["number"],
        deadline=when,
        attachments=(
            documents.order_pdf(
                ctx.conn, number, ctx.lang, default_timezone=ctx.default_timezone, now=ctx.now
            ),
        ),
    )
    responsible = _responsible(ctx, moved)
    heads = [s for p in responsible for s in people.supervisors_for_unit(ctx.conn, p.unit_id)]
    _tell(
        ctx,
        responsible + heads,
        moved,
        "hazard.order_yours",
        "order",
        documents_for=lambda language: documents.order_pdf(
            ctx.conn, number, language, default_timezone=ctx.default_timezone, now=ctx.now
        ),
        order=number,
        deadline=when,
        requirement=requirement,
        supervisor=ctx.staff.name,
    )


# -- reprompts and flows -------------------------------------------------------------------------
def _reprompt(steps: dict[str, Callable[[Ctx], None]]) -> Callable[[Ctx], None]:
    def reprompt(ctx: Ctx) -> None:
        ask = steps.get(ctx.conversation.step)
        if ask is not None:
            ask(ctx)

    return reprompt


def _row(ctx: Ctx) -> sqlite3.Row:
    row = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    assert row is not None
    return row


assign_flow = Flow(
    name=ASSIGN_FLOW,
    steps={
        "who": on_who,
        "measure": on_measure,
        "deadline": on_assign_deadline,
        "funding": on_funding,
    },
    reprompt=_reprompt(
        {
            "who": ask_who,
            "measure": lambda ctx: ctx.say(
                "hazard.ask_measure", name=_name(ctx.conn, ctx.data.get("responsible"))
            ),
            "deadline": _ask_assign_deadline,
            "funding": ask_funding,
        }
    ),
)
submit_flow = Flow(
    name=SUBMIT_FLOW,
    steps={"done": on_done, "photos": on_evidence},
    reprompt=_reprompt(
        {
            "done": lambda ctx: ctx.say("hazard.ask_done", hazard=_number(ctx)),
            "photos": ask_evidence,
        }
    ),
)
extend_flow = Flow(
    name=EXTEND_FLOW,
    steps={"measures": on_measures, "photo": on_interim_photo, "new_deadline": on_new_deadline},
    reprompt=_reprompt(
        {
            "measures": lambda ctx: ctx.say("hazard.ask_measures", hazard=_number(ctx)),
            "photo": ask_interim_photo,
            "new_deadline": lambda ctx: ctx.say("hazard.ask_new_deadline", hazard=_number(ctx)),
        }
    ),
)
back_flow = Flow(
    name=BACK_FLOW,
    steps={"reason": on_reason},
    reprompt=_reprompt({"reason": lambda ctx: ctx.say("hazard.ask_reason", hazard=_number(ctx))}),
)
order_flow = Flow(
    name=ORDER_FLOW,
    steps={"deadline": on_order_deadline, "earlier": on_earlier, "requirement": on_requirement},
    reprompt=_reprompt(
        {
            "deadline": lambda ctx: ask_deadline(ctx, "hazard.ask_order_deadline", _row(ctx)),
            "earlier": ask_earlier,
            "requirement": ask_requirement,
        }
    ),
)
FLOWS = (assign_flow, submit_flow, extend_flow, back_flow, order_flow)
