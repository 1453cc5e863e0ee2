"""The hazard card's buttons on the desk: each form posts to
`/hazards/{number}/{action}` (the chat's word for it). The person, their
role and unit are read from the store inside the action's transaction, the
inputs are read into typed values here, and the register's own action
(`bot.hazards`) decides, writes and says who is told — through the same
`hazard_view.tell` as the chat, so people receive the same messages. Then
303 back to the card with a note of what was done; a refusal shows its
reason on the card, with what was typed, and changes nothing."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping
from datetime import datetime, time

from aiohttp import web

from bot import hazard_view
from bot import hazards as register
from bot.calendar import parse_local
from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Visitor
from bot.hazard_rules import Action, parse_amount
from bot.i18n import t
from bot.model import UserError
from bot.numbers import parse_number
from bot.store import hazards, people
from bot.store.hazards import Hazard
from bot.web import card as card_page
from bot.web.card import FLASH, ON_DESK
from bot.web.context import LANGUAGE, Desk, desk_of, redirect, viewer_of

log = logging.getLogger(__name__)

# A date-time input's value: a day, and a minute (its seconds, if sent, are dropped).
_INPUT = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d{1,6})?)?)?")
FIELDS = ("responsible", "measure", "deadline", "funding", "reason", "requirement", "earlier")


def read_deadline(text: str, zone: str, now: datetime) -> datetime:
    """A date-time input's value (`2026-12-03T14:30`, in the unit's zone), or
    a date alone (the end of that day); a refusal says what was wrong."""
    typed = text.strip()
    if not typed:
        raise UserError("web.need_deadline")
    found = _INPUT.fullmatch(typed)
    if found is None:  # what a browser's date-time input sends, nothing else
        raise UserError("time.format", text=typed[:40])
    day, minute = found.group(1), found.group(2)
    return parse_local(f"{day} {minute}" if minute else day, zone, now, date_only=time(23, 59, 59))


def _perform(
    act: register.Acting, hazard: Hazard, action: Action, form: Mapping[str, str], zone: str
) -> register.Outcome:
    register.check(act, hazard, action)  # who may, before what they typed is read
    if action is Action.ASSIGN:
        responsible = parse_number(form.get("responsible", ""))
        if responsible is None:
            raise register.NotAssignable("hazard.not_assignable")
        return register.assign(
            act,
            hazard,
            responsible_id=responsible,
            measure=form.get("measure", ""),
            deadline=read_deadline(form.get("deadline", ""), zone, act.now),
            funding=parse_amount(form.get("funding", "")),
        )
    if action is Action.START:
        return register.start(act, hazard)
    if action is Action.APPROVE_EXTENSION:
        return register.approve(act, hazard)
    if action is Action.REFUSE_EXTENSION:
        return register.refuse(act, hazard)
    if action is Action.ACCEPT:
        return register.accept(act, hazard)
    if action is Action.SEND_BACK:
        return register.send_back(act, hazard, reason=form.get("reason", ""))
    deadline = read_deadline(form.get("deadline", ""), zone, act.now)
    current = parse_iso(hazard.deadline_at)
    if deadline < current and form.get("earlier") != "1":  # shortens the time given: confirm
        raise UserError(
            "web.order_earlier",
            deadline=local_time_text(deadline, zone),
            assigned=local_time_text(current, zone),
        )
    return register.order(act, hazard, deadline=deadline, requirement=form.get("requirement", ""))


def _run(
    the_desk: Desk,
    staff_id: int,
    number: str,
    action: Action,
    form: Mapping[str, str],
    now: datetime,
    language: str,
    conn: sqlite3.Connection,
) -> register.Outcome | None:
    """In the action's transaction: who acts as the store has them now, the
    hazard as it is now (None: gone from their sight), the action, and the
    outbox rows it asks for."""
    found = hazards.by_number_ahead(conn, number)  # read with the person's row
    staff = people.staff_by_id(conn, staff_id)
    hazard = found()
    if staff is None or hazard is None or not register.may_see(conn, staff, hazard):
        return None
    zone = people.unit_timezone(conn, hazard.unit_id, the_desk.default_timezone)
    act = register.Acting(conn, staff, now, the_desk.default_timezone, language)
    outcome = _perform(act, hazard, action, form, zone)
    visitor = Visitor(
        conn,
        channel="desk",
        user_id=str(staff.id),
        address=str(staff.id),
        key_prefix=f"desk:{staff.id}:{iso(now)}",
        now=now,
        language=staff.language,
        default_timezone=the_desk.default_timezone,
        served=the_desk.served,
    )
    hazard_view.tell(visitor, outcome)
    visitor.flush()
    return outcome


def _status(refusal: UserError) -> int:
    if refusal.key == "hazard.not_allowed":
        return 403
    if refusal.key in ("hazard.not_now", "hazard.changed_meanwhile"):
        return 409
    return 400


async def act(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    number = request.match_info["number"].strip().upper()
    await card_page.visible(request, viewer, number)  # 404 before anything is read
    language = request.get(LANGUAGE, the_desk.default_language)
    word = request.match_info["action"]
    posted = await request.post()
    form = {key: str(posted[key])[:4000] for key in FIELDS if isinstance(posted.get(key), str)}
    action = hazard_view.ACTIONS.get(word)
    if action is None or action not in ON_DESK:
        return await card_page.page_card(
            request, refusal=t(language, "web.unknown_action"), posted=form, status=400
        )
    now = the_desk.clock.now()
    try:
        outcome = await the_desk.db.transaction(
            lambda conn: _run(the_desk, viewer.staff.id, number, action, form, now, language, conn)
        )
    except UserError as refusal:
        log.info(
            "desk hazard action refused staff=%s action=%s key=%s",
            viewer.staff.id,
            word,
            refusal.key,
        )
        return await card_page.page_card(
            request,
            refusal=t(language, refusal.key, **refusal.params),
            posted={"action": word, **form},
            status=_status(refusal),
        )
    if outcome is None:
        raise web.HTTPNotFound()
    if the_desk.on_commit is not None:
        the_desk.on_commit()
    log.info(
        "desk hazard action staff=%s hazard=%s action=%s told=%s",
        viewer.staff.id,
        outcome.hazard.id,
        word,
        len(outcome.notices),
    )
    response = redirect(f"/hazards/{number}")
    response.set_cookie(
        FLASH,
        f"{number}.{word}",
        max_age=120,
        path="/hazards/",
        httponly=True,
        samesite="Strict",
        secure=the_desk.secure,
    )
    return response
