"""The hazard card in chat and the conversations that act on it: asking for
the four fixes (四定), the rectification with its photos, more time with
interim measures, the reason for sending back, and the rectification
order's deadline and requirement. The actions themselves are the
register's (`bot.hazards`); what people are told is `bot.hazard_view.tell`.

Card buttons are commands (`/hz 12 accept`), so they work from any message at
any time; every action is checked when pressed AND again when its last answer
arrives: a stale or forged button, a second press, or someone else acting
first changes nothing and says why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from decimal import Decimal

from bot import hazards as register
from bot.calendar import parse_local
from bot.clock import end_of_local_day, iso, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.hazard_rules import (
    MAX_PHOTOS,
    Action,
    check_deadline,
    may_be_responsible,
    parse_amount,
    quick_deadlines,
)
from bot.hazard_view import ACTIONS, buttons_for, card_text, name_of, tell
from bot.model import Button, DocumentRequest, Inbound, InboundKind, Staff, UserError
from bot.numbers import parse_number
from bot.store import hazards, people
from bot.store.hazards import Hazard
from handlers.text import button_number, clean_text, typed_text

MAX_TEXT = register.MAX_TEXT
PEOPLE_PAGE = 6

ASSIGN_FLOW = "hazard_assign"
SUBMIT_FLOW = "hazard_submit"
EXTEND_FLOW = "hazard_extend"
BACK_FLOW = "hazard_back"
ORDER_FLOW = "hazard_order"


def acting(ctx: Ctx) -> register.Acting:
    return register.Acting(ctx.conn, ctx.staff, ctx.now, ctx.default_timezone)


def _done(ctx: Ctx, outcome: register.Outcome, document: DocumentRequest | None = None) -> None:
    """Say what was done (with `document`, once made), then tell whoever must know."""
    ctx.say_text(ctx.text(outcome.done, **outcome.done_params), document=document)
    tell(ctx, outcome)


# -- the card -------------------------------------------------------------------------
def show(ctx: Ctx, hazard: Hazard) -> None:
    printable = [
        Button(ctx.text("documents.btn_pdf", number=o.number), f"/hz {hazard.id} pdf {o.number}")
        for o in hazards.orders(ctx.conn, hazard.id)
    ]
    ctx.say_text(
        card_text(ctx.conn, hazard, ctx.lang, default_timezone=ctx.default_timezone),
        buttons=buttons_for(ctx.conn, ctx.staff, hazard, ctx.lang)
        + [printable[i : i + 2] for i in range(0, len(printable), 2)],
        attachments=hazard.photos[:1],
    )


def send_orders(ctx: Ctx, hazard: Hazard, wanted: str) -> None:
    """`/hz <id> pdf [ZG-2026-001]`: the hazard's orders (or the one named) as
    PDF, for anyone who may see the hazard."""
    numbers = [o.number for o in hazards.orders(ctx.conn, hazard.id)]
    if wanted:
        numbers = [n for n in numbers if n == wanted.strip().upper()]
    if not numbers:
        raise UserError("documents.order_none", hazard=hazard.number)
    for number in numbers:
        ctx.say("documents.order_attached", order=number, document=_pdf(ctx, number))


def _pdf(ctx: Ctx, number: str) -> DocumentRequest:
    return register.order_pdf(number, ctx.lang, default_timezone=ctx.default_timezone, now=ctx.now)


def _visible(ctx: Ctx, hazard: Hazard | None, typed: str | None = None) -> Hazard:
    """The hazard, if this person may see it; otherwise the same answer as
    for one that does not exist (nothing leaks). The answer repeats the
    register number someone typed, never a button's internal id."""
    if hazard is None or not register.may_see(ctx.conn, ctx.staff, hazard):
        if typed is None:
            raise UserError("hazard.no_such")
        raise UserError("hazard.not_found", number=typed[:20])
    return hazard


def show_number(ctx: Ctx, number: str) -> None:
    """`/hazard YH-2026-0001`."""
    show(ctx, _visible(ctx, hazards.by_number(ctx.conn, number), number))


# -- /hz <id> [action] -----------------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    first, _, word = args.strip().partition(" ")
    hazard_id = parse_number(first)
    # An internal id is never quoted back: the same answer for any id one may not see.
    hazard = _visible(ctx, hazards.get(ctx.conn, hazard_id) if hazard_id is not None else None)
    if not word.strip():
        show(ctx, hazard)
        return
    wanted, _, number = word.strip().partition(" ")
    if wanted.lower() == "pdf":
        send_orders(ctx, hazard, number)
        return
    action = ACTIONS.get(word.strip().lower())
    if action is None:
        raise UserError("hazard.not_allowed")
    register.check(acting(ctx), hazard, action)
    if action is Action.ASSIGN:
        ctx.goto(ASSIGN_FLOW, "who", hazard=hazard.id, page=0)
        ask_who(ctx)
    elif action is Action.START:
        _done(ctx, register.start(acting(ctx), hazard))
    elif action is Action.SUBMIT:
        ctx.goto(SUBMIT_FLOW, "done", hazard=hazard.id, photos=[])
        ctx.say("hazard.ask_done", hazard=hazard.number)
    elif action is Action.REQUEST_EXTENSION:
        ctx.goto(EXTEND_FLOW, "measures", hazard=hazard.id)
        ctx.say("hazard.ask_measures", hazard=hazard.number)
    elif action is Action.APPROVE_EXTENSION:
        _done(ctx, register.approve(acting(ctx), hazard))
    elif action is Action.REFUSE_EXTENSION:
        _done(ctx, register.refuse(acting(ctx), hazard))
    elif action is Action.ACCEPT:
        _done(ctx, register.accept(acting(ctx), hazard))
    elif action is Action.SEND_BACK:
        ctx.goto(BACK_FLOW, "reason", hazard=hazard.id)
        ctx.say("hazard.ask_reason", hazard=hazard.number)
    elif action is Action.ORDER:
        ctx.goto(ORDER_FLOW, "deadline", hazard=hazard.id)
        ask_deadline(ctx, "hazard.ask_order_deadline", hazard)


def _hazard(ctx: Ctx) -> Hazard:
    hazard = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    assert hazard is not None  # hazards are never deleted
    return hazard


def _current(ctx: Ctx, action: Action) -> Hazard | None:
    """At the end of a flow: the hazard, if the action is still allowed;
    otherwise the flow ends, the person is told what changed, nothing is saved."""
    hazard = _hazard(ctx)
    try:
        register.check(acting(ctx), hazard, action)
    except UserError as refusal:
        ctx.end()
        ctx.say("hazard.changed_meanwhile", hazard=hazard.number)
        ctx.say(refusal.key, **refusal.params)
        return None
    return hazard


def _number(ctx: Ctx) -> str:
    hazard = hazards.get(ctx.conn, int(ctx.data["hazard"]))
    return hazard.number if hazard else "?"


# -- deadlines people type or pick ------------------------------------------------------
def ask_deadline(ctx: Ctx, key: str, hazard: Hazard) -> None:
    quick = [Button(ctx.text(f"hazard.due_{name}"), name) for name in ("today", "tomorrow")]
    quick2 = [Button(ctx.text(f"hazard.due_{name}"), name) for name in ("3d", "7d")]
    ctx.say(key, hazard=hazard.number, buttons=[quick, quick2])


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


# -- the four fixes (四定) ---------------------------------------------------------------
def _assignable(ctx: Ctx) -> list[int]:
    return register.assignable(ctx.conn, ctx.staff, _hazard(ctx).unit_id)


def _candidates(ctx: Ctx, page: int) -> list[Staff]:
    return register.candidates(
        ctx.conn, ctx.staff, _hazard(ctx).unit_id, PEOPLE_PAGE + 1, page * PEOPLE_PAGE
    )


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
        ctx.say("hazard.ask_measure", name=name_of(ctx.conn, ctx.data["responsible"]))
        return
    ctx.step_to("deadline", measure=text)
    _ask_assign_deadline(ctx)


def _ask_assign_deadline(ctx: Ctx) -> None:
    hazard = _hazard(ctx)
    ask_deadline(
        ctx,
        "hazard.ask_deadline_general" if hazard.severity == "general" else "hazard.ask_deadline",
        hazard,
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
    hazard = _current(ctx, Action.ASSIGN)
    if hazard is None:
        return
    try:
        outcome = register.assign(
            acting(ctx),
            hazard,
            responsible_id=int(ctx.data["responsible"]),
            measure=str(ctx.data["measure"]),
            deadline=parse_iso(ctx.data["deadline"]),
            funding=Decimal(ctx.data["amount"]),
        )
    except register.NotAssignable as refusal:
        # Moved away or deactivated while the supervisor was typing: choose again, keep the rest.
        ctx.step_to("who", page=0)
        ctx.say(refusal.key, **refusal.params)
        ask_who(ctx)
        return
    except register.PastDeadline as refusal:
        ctx.step_to("deadline")
        ctx.say(refusal.key, **refusal.params)
        _ask_assign_deadline(ctx)
        return
    ctx.end()
    _done(ctx, outcome)


# -- rectification ------------------------------------------------------------------------
def on_done(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_done", hazard=_number(ctx))
        return
    ctx.step_to("photos", done=text, photos=[])
    ask_evidence(ctx)


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
    hazard = _current(ctx, Action.SUBMIT)
    if hazard is None:
        return
    outcome = register.submit(acting(ctx), hazard, text=str(ctx.data["done"]), photos=photos)
    ctx.end()
    _done(ctx, outcome)


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
    hazard = _current(ctx, Action.REQUEST_EXTENSION)
    if hazard is None:
        return
    outcome = register.request_extension(
        acting(ctx),
        hazard,
        measures=str(ctx.data["measures"]),
        photo=ctx.data.get("photo"),
        deadline=deadline,
    )
    ctx.end()
    _done(ctx, outcome)


# -- sending back ----------------------------------------------------------------------------
def on_reason(ctx: Ctx, inbound: Inbound) -> None:
    text = typed_text(inbound, MAX_TEXT)
    if text is None:
        ctx.say("hazard.ask_reason", hazard=_number(ctx))
        return
    hazard = _current(ctx, Action.SEND_BACK)
    if hazard is None:
        return
    outcome = register.send_back(acting(ctx), hazard, reason=text)
    ctx.end()
    _done(ctx, outcome)


# -- the rectification order (整改通知书) --------------------------------------------------------
def on_order_deadline(ctx: Ctx, inbound: Inbound) -> None:
    hazard = _hazard(ctx)
    deadline = read_deadline(ctx, inbound)
    if deadline is None:
        ask_deadline(ctx, "hazard.ask_order_deadline", hazard)
        return
    if hazard.deadline_at and deadline < parse_iso(hazard.deadline_at):
        ctx.step_to("earlier", deadline=iso(deadline))  # shortens the time given: ask
        ask_earlier(ctx)
        return
    ctx.step_to("requirement", deadline=iso(deadline))
    ask_requirement(ctx)


def ask_earlier(ctx: Ctx) -> None:
    ctx.say(
        "hazard.ask_order_earlier",
        deadline=local_time_text(parse_iso(ctx.data["deadline"]), ctx.timezone),
        assigned=local_time_text(parse_iso(_hazard(ctx).deadline_at), ctx.timezone),
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
        ask_deadline(ctx, "hazard.ask_order_deadline", _hazard(ctx))
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
    hazard = _current(ctx, Action.ORDER)
    if hazard is None:
        return
    outcome = register.order(
        acting(ctx), hazard, deadline=parse_iso(ctx.data["deadline"]), requirement=text
    )
    ctx.end()
    assert outcome.order is not None
    _done(ctx, outcome, document=_pdf(ctx, outcome.order))


# -- reprompts and flows -------------------------------------------------------------------------
def _reprompt(steps: dict[str, Callable[[Ctx], None]]) -> Callable[[Ctx], None]:
    def reprompt(ctx: Ctx) -> None:
        ask = steps.get(ctx.conversation.step)
        if ask is not None:
            ask(ctx)

    return reprompt


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
                "hazard.ask_measure", name=name_of(ctx.conn, ctx.data.get("responsible"))
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
            "deadline": lambda ctx: ask_deadline(ctx, "hazard.ask_order_deadline", _hazard(ctx)),
            "earlier": ask_earlier,
            "requirement": ask_requirement,
        }
    ),
)
FLOWS = (assign_flow, submit_flow, extend_flow, back_flow, order_flow)
