"""/export: a supervisor, safety officer or admin picks a register and a
period and receives it as an XLSX file; a supervisor gets their own unit
subtree's rows only. The file is made after the step commits, off the
writer (bot/preparer.py): the person is told at once that it is coming."""

from __future__ import annotations

from bot import export, preparer
from bot.clock import local_date
from bot.engine import Ctx, Flow
from bot.model import Button, Inbound, InboundKind, Role, UserError

FLOW = "export"


def start(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ADMIN):
        raise UserError("export.not_allowed")
    ctx.goto(FLOW, "register")
    ask_register(ctx)


def ask_register(ctx: Ctx) -> None:
    buttons = [Button(ctx.text(f"export.register_{name}"), name) for name in export.REGISTERS]
    ctx.say("export.ask_register", buttons=[buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def on_register(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text in export.REGISTERS:
        ctx.step_to("period", register=inbound.text)
        ask_period(ctx)
    else:
        ask_register(ctx)


def ask_period(ctx: Ctx) -> None:
    buttons = [Button(ctx.text(f"export.period_{kind}"), kind) for kind in export.PERIODS]
    ctx.say(
        "export.ask_period",
        register=ctx.text(f"export.register_{ctx.data['register']}"),
        buttons=[buttons[:2], buttons[2:]],
    )


def on_period(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in export.PERIODS:
        ask_period(ctx)
        return
    if ctx.media_dir is None:
        raise UserError("export.unavailable")
    register = export.REGISTERS[ctx.data["register"]]
    period = export.named_period(inbound.text, local_date(ctx.now, ctx.timezone))
    # Authorization from the stored roles, decided now: only safety officers
    # and admins see every unit; the file keeps this scope however late it is made.
    everything = ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN)
    title = ctx.text(f"export.register_{register.name}")
    first, last = period.first.isoformat(), period.last.isoformat()
    ctx.end()
    # A register's year can take minutes to write: say at once that it is coming.
    ctx.say("export.preparing", register=title, first=first, last=last)
    ctx.say(
        "export.preparing",
        register=title,
        first=first,
        last=last,
        document=preparer.export_request(
            register.name,
            period,
            root_unit=None if everything else ctx.staff.unit_id,
            staff_id=ctx.staff.id,
            language=ctx.lang,
            default_timezone=ctx.timezone,
            now=ctx.now,
            text_params={"register": title, "first": first, "last": last},
        ),
    )


def reprompt(ctx: Ctx) -> None:
    if ctx.conversation.step == "period":
        ask_period(ctx)
    else:
        ask_register(ctx)


flow = Flow(name=FLOW, steps={"register": on_register, "period": on_period}, reprompt=reprompt)
