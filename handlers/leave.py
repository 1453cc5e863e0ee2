"""/leave: a person says they are away until a date; no reminder nags them
until then. `/leave 2026-12-05` sets it, `/leave off` ends it, `/leave`
shows where they stand."""

from __future__ import annotations

from datetime import date

from bot.clock import local_date
from bot.engine import Ctx
from bot.model import UserError
from bot.store import audit, calendars

MAX_DAYS = 366


def leave(ctx: Ctx, args: str) -> None:
    today = local_date(ctx.now, ctx.timezone)
    word = args.strip().lower()
    if not word:
        current = calendars.leave_until(ctx.conn, ctx.staff.id)
        if current and current >= today.isoformat():
            ctx.say("leave.status", until=current)
        else:
            ctx.say("leave.usage")
        return
    if word in ("off", "end", "结束", "取消"):
        calendars.end_leave(ctx.conn, ctx.staff.id)
        record(ctx, "leave_ended", None)
        ctx.say("leave.ended")
        return
    try:
        until = date.fromisoformat(word.replace("/", "-"))
    except ValueError:
        raise UserError("leave.bad_date", text=args.strip()[:40]) from None
    if until < today:
        raise UserError("time.in_the_past", text=until.isoformat())
    if (until - today).days > MAX_DAYS:
        raise UserError("leave.too_long", days=MAX_DAYS)
    calendars.set_leave(ctx.conn, ctx.staff.id, until.isoformat(), ctx.now_iso)
    record(ctx, "leave_set", until.isoformat())
    ctx.say("leave.set", until=until.isoformat())


def record(ctx: Ctx, action: str, until: str | None) -> None:
    audit.record(
        ctx.conn,
        at=ctx.now_iso,
        actor_id=ctx.staff.id,
        entity="staff",
        entity_id=ctx.staff.id,
        action=action,
        detail={"until": until} if until else None,
    )
