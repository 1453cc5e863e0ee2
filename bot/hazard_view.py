"""The hazard card as chat shows it: its head (what, where, how bad, the four
fixes), the whole card with its history, the buttons for what a person may
do now, and `tell`, which turns a register action's outcome into the
messages people receive — the same whether the chat or the desk acted."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from bot import hazards as register
from bot.clock import local_time_text, parse_iso
from bot.engine import Visitor
from bot.hazard_rules import Action, Status
from bot.i18n import t
from bot.model import Button, DocumentRequest, Staff
from bot.numbers import money
from bot.store import hazards, people
from bot.store.hazards import Hazard, HistoryEntry

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


def zone_of(conn: sqlite3.Connection, hazard: Hazard, default_timezone: str) -> str:
    return people.unit_timezone(conn, hazard.unit_id, default_timezone)


def name_of(conn: sqlite3.Connection, staff_id: int | None) -> str:
    person = people.staff_by_id(conn, int(staff_id)) if staff_id else None
    return person.name if person else "—"


def summary(
    conn: sqlite3.Connection,
    hazard: Hazard,
    language: str,
    detail: str = "",
    *,
    default_timezone: str,
) -> str:
    """The card's head: what, where, how bad, where it stands, the four fixes."""
    tz = zone_of(conn, hazard, default_timezone)
    where = hazard.place or ""
    if hazard.lat is not None and hazard.lon is not None:
        where = f"{where} 📍{hazard.lat:.5f},{hazard.lon:.5f}".strip()
    lines = [
        t(
            language,
            "hazard.card_kind",
            severity=t(language, f"hazard.severity_{hazard.severity}"),
            category=t(language, f"hazard.category_{hazard.category}"),
            status=t(language, f"hazards.status_{hazard.status}"),
        ),
        t(
            language,
            "hazard.card_where",
            unit=people.unit_path(conn, hazard.unit_id),
            place=where or "—",
        ),
        t(
            language,
            "hazard.card_what",
            description=hazard.description,
            reporter=name_of(conn, hazard.reported_by),
            photos=f" 📷{len(hazard.photos)}" if hazard.photos else "",
        ),
    ]
    if detail:
        lines.append(detail)
    deadline = local_time_text(parse_iso(hazard.deadline_at), tz)
    if hazard.responsible_id:
        lines.append(
            t(
                language,
                "hazard.card_fixes",
                responsible=name_of(conn, hazard.responsible_id),
                measure=hazard.measure or "—",
                deadline=deadline,
                funding=t(language, "hazard.no_funding")
                if hazard.funding in (None, "0", "0.00")
                else t(language, "hazard.funding", amount=money(hazard.funding)),
            )
        )
    else:
        lines.append(t(language, "hazard.card_deadline", deadline=deadline))
    if hazard.status is Status.EXTENSION and hazard.proposed_deadline_at:
        lines.append(
            t(
                language,
                "hazard.card_extension",
                measures=hazard.interim_measures or "—",
                deadline=local_time_text(parse_iso(hazard.proposed_deadline_at), tz),
            )
        )
    if hazard.rectification:
        lines.append(t(language, "hazard.card_rectification", text=hazard.rectification))
    if hazard.failed_rectification:
        lines.append(t(language, "hazard.card_failed"))
    return "\n".join(lines)


def card_text(
    conn: sqlite3.Connection, hazard: Hazard, language: str, *, default_timezone: str
) -> str:
    """The whole card: the head, the orders issued, and the history."""
    tz = zone_of(conn, hazard, default_timezone)
    parts = [
        t(language, "hazard.card_head", hazard=hazard.number),
        summary(conn, hazard, language, default_timezone=default_timezone),
    ]
    for issued in hazards.orders(conn, hazard.id):
        parts.append(
            t(
                language,
                "hazard.card_order",
                order=issued.number,
                deadline=local_time_text(parse_iso(issued.deadline_at), tz),
            )
        )
    history = hazards.history(conn, hazard.id)
    parts.append(t(language, "hazard.card_history"))
    if len(history) > HISTORY_SHOWN:
        parts.append(t(language, "hazard.card_earlier", count=len(history) - HISTORY_SHOWN))
        history = history[-HISTORY_SHOWN:]
    for entry in history:
        parts.append(_event_line(entry, language, tz))
    return "\n".join(parts)


def _event_line(entry: HistoryEntry, language: str, tz: str) -> str:
    """One line of the history: who did what, and what they wrote, set apart."""
    detail = entry.detail
    common = {"at": local_time_text(parse_iso(entry.at), tz)[5:], "who": entry.actor or "—"}
    if entry.action == Action.ASSIGN and detail.get("responsible"):
        return t(language, "hazard.card_event_assign", name=detail["responsible"], **common)
    action = t(language, f"hazard.did_{entry.action}")
    note = str(detail.get("reason") or detail.get("description") or "")
    if note:
        shown = note if len(note) <= 80 else note[:79] + "…"
        return t(language, "hazard.card_event_note", action=action, note=shown, **common)
    return t(language, "hazard.card_event", action=action, **common)


def buttons_for(
    conn: sqlite3.Connection, staff: Staff, hazard: Hazard, language: str
) -> list[list[Button]]:
    labels = [
        Button(t(language, f"hazard.btn_{WORDS[a]}"), f"/hz {hazard.id} {WORDS[a]}")
        for a in register.allowed(conn, staff, hazard)
    ]
    return [labels[i : i + 3] for i in range(0, len(labels), 3)]


def send_card(
    visitor: Visitor,
    person: Staff,
    hazard: Hazard,
    intro: str,
    *,
    key: str,
    detail: str = "",
    photo: str | None = None,
    documents_for: Callable[[str], DocumentRequest] | None = None,
    **params: Any,
) -> None:
    """Notify `person` about the hazard: a line saying why, the card's head,
    and the buttons for what they may do now; `documents_for` asks for a
    printable document in their language to go with it (made after the commit)."""
    first = photo or (
        hazard.photos[0] if hazard.photos and intro.startswith("hazard.alert") else None
    )
    visitor.notify_text(
        person,
        t(person.language, intro, hazard=hazard.number, **params)
        + "\n"
        + summary(
            visitor.conn, hazard, person.language, detail, default_timezone=visitor.default_timezone
        ),
        idempotency_key=key,
        buttons=[
            *buttons_for(visitor.conn, person, hazard, person.language),
            [Button(t(person.language, "hazard.btn_view"), f"/hz {hazard.id}")],
        ],
        attachments=(first,) if first else (),
        document=documents_for(person.language) if documents_for else None,
    )


def tell(visitor: Visitor, outcome: register.Outcome) -> None:
    """Queue the messages an action's outcome asks for, through `visitor`
    (the chat's step or the desk's request): each person their card."""
    hazard = outcome.hazard
    for notice in outcome.notices:
        send_card(
            visitor,
            notice.person,
            hazard,
            notice.intro,
            key=f"hazard:{hazard.id}:{notice.step}:{visitor.now_iso}:{notice.person.id}",
            photo=notice.photo,
            documents_for=_order_for(visitor, notice.order) if notice.order else None,
            **notice.params,
        )


def _order_for(visitor: Visitor, number: str) -> Callable[[str], DocumentRequest]:
    """The order's PDF in a recipient's language."""

    def make(language: str) -> DocumentRequest:
        return register.order_pdf(
            number, language, default_timezone=visitor.default_timezone, now=visitor.now
        )

    return make
