"""/export: a supervisor, safety officer or admin picks a register and a
period and receives it as an XLSX file; a supervisor gets their own unit
subtree's rows only."""

from __future__ import annotations

from bot import export
from bot.clock import local_date
from bot.engine import Ctx, Flow
from bot.model import Button, Inbound, InboundKind, Role, UserError

FLOW = "export"
FOLDER = "exports"


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
    # Authorization from the stored roles: only safety officers and admins see every unit.
    everything = ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN)
    source = export.Source(
        conn=ctx.conn,
        language=ctx.lang,
        period=period,
        root_unit=None if everything else ctx.staff.unit_id,
        default_timezone=ctx.timezone,
        media_dir=ctx.media_dir,
        now=ctx.now,
    )
    stamp = ctx.now.strftime("%Y%m%d%H%M%S%f")
    relative = f"{FOLDER}/{register.name}-{period.first}-{period.last}-{ctx.staff.id}-{stamp}.xlsx"
    target = ctx.media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    rows = export.export(source, register, target)
    ctx.end()
    ctx.say(
        "export.ready",
        register=ctx.text(f"export.register_{register.name}"),
        first=period.first.isoformat(),
        last=period.last.isoformat(),
        rows=rows,
        attachments=(relative,),
    )


def reprompt(ctx: Ctx) -> None:
    if ctx.conversation.step == "period":
        ask_period(ctx)
    else:
        ask_register(ctx)


flow = Flow(name=FLOW, steps={"register": on_register, "period": on_period}, reprompt=reprompt)
