"""/training: a safety officer or admin records a fire-safety training
(REGULATIONS §4) for their unit subtree or named people, held today or on a
date they type."""

from __future__ import annotations

from datetime import date, timedelta

from bot.clock import local_date
from bot.engine import Ctx, Flow
from bot.model import Button, Inbound, InboundKind, Role, UserError
from bot.store import notices, trainings
from handlers import recipients

FLOW = "training"


def start(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN):
        raise UserError("training.not_allowed")
    ctx.goto(FLOW, "who")
    ask_who(ctx)


def ask_who(ctx: Ctx) -> None:
    ctx.say(
        "training.ask_who",
        buttons=[
            [
                Button(ctx.text("notice.to_unit"), "unit"),
                Button(ctx.text("training.to_named"), "named"),
            ]
        ],
    )


def on_who(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "unit":
        ctx.step_to("date", people=notices.subtree_staff(ctx.conn, ctx.staff.unit_id))
        ask_date(ctx)
    elif inbound.kind is InboundKind.ACTION and inbound.text == "named":
        ctx.step_to("names")
        ctx.say("notice.ask_names")
    else:
        ask_who(ctx)


def on_names(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT:
        ctx.say("notice.ask_names")
        return
    ctx.step_to("date", people=recipients.named(ctx, inbound.text))
    ask_date(ctx)


def ask_date(ctx: Ctx) -> None:
    ctx.say(
        "training.ask_date",
        count=len(ctx.data["people"]),
        buttons=[[Button(ctx.text("training.today"), "today")]],
    )


def on_date(ctx: Ctx, inbound: Inbound) -> None:
    today = local_date(ctx.now, ctx.timezone)
    if inbound.kind is InboundKind.ACTION and inbound.text == "today":
        held = today
    elif inbound.kind is InboundKind.TEXT:
        try:
            held = date.fromisoformat(inbound.text.strip().replace("/", "-"))
        except ValueError:
            raise UserError("leave.bad_date", text=inbound.text.strip()[:40]) from None
        if held > today or held < today - timedelta(days=366):
            raise UserError("training.date_out_of_range")
    else:
        ask_date(ctx)
        return
    people_ids: list[int] = ctx.data["people"]
    trainings.record(ctx.conn, people_ids, "fire", held.isoformat(), ctx.staff.id, ctx.now_iso)
    ctx.end()
    ctx.say("training.recorded", count=len(people_ids), date=held.isoformat())


def reprompt(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "who":
        ask_who(ctx)
    elif step == "names":
        ctx.say("notice.ask_names")
    elif step == "date":
        ask_date(ctx)


flow = Flow(
    name=FLOW,
    steps={"who": on_who, "names": on_names, "date": on_date},
    reprompt=reprompt,
)
