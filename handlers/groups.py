"""Group chats: no reporting happens there. A supervisor may bind a group as
their unit's alert group; anyone else is pointed to a private chat. A group
bound to another unit is rebound only as `bot.group_rules` allows, and
whoever had bound it is told either way."""

from __future__ import annotations

from bot.engine import Ctx, Visitor
from bot.group_rules import may_bind_group
from bot.model import Inbound, InboundKind, Role
from bot.store import people
from bot.store.people import GroupBinding


def on_group(visitor: Visitor, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.COMMAND:
        return  # people talk among themselves in groups; the bot keeps out of it
    command = inbound.text.strip().split(" ", 1)[0].split("@", 1)[0].lower()
    if command == "/bindgroup":
        bind(visitor)
        return
    visitor.say("groups.private_only", link=str(inbound.data.get("private_link", "")))


def bind(visitor: Visitor) -> None:
    if not isinstance(visitor, Ctx) or not visitor.staff.has(Role.SUPERVISOR, Role.ADMIN):
        visitor.say("groups.bind_not_allowed")
        return
    ctx, conn = visitor, visitor.conn
    current = people.group_binding(conn, ctx.channel, ctx.address)
    unit = people.unit_path(conn, ctx.staff.unit_id)
    bound = people.unit_path(conn, current.unit_id) if current else ""
    if current is not None:
        chain = [int(u["id"]) for u in people.unit_chain(conn, current.unit_id)]
        if not may_bind_group(ctx.staff, chain):
            binder = people.staff_by_id(conn, current.bound_by)
            ctx.say("groups.rebind_refused", unit=bound, name=binder.name if binder else "—")
            _tell_binder(ctx, current, "groups.rebind_attempted", unit=bound, new_unit=unit)
            return
    people.bind_group(conn, ctx.channel, ctx.address, ctx.staff.unit_id, ctx.staff.id, ctx.now_iso)
    ctx.say("groups.bound", unit=unit)
    if current is not None:
        _tell_binder(ctx, current, "groups.rebound", unit=bound, new_unit=unit)


def _tell_binder(ctx: Ctx, binding: GroupBinding, key: str, *, unit: str, new_unit: str) -> None:
    """Whoever bound the group hears that someone else rebound it, or tried to."""
    binder = people.staff_by_id(ctx.conn, binding.bound_by)
    if binder is None or not binder.active or binder.id == ctx.staff.id:
        return
    ctx.notify(
        binder,
        key,
        idempotency_key=f"group:{ctx.channel}:{ctx.address}:{key}:{ctx.now_iso}:{ctx.staff.id}",
        name=ctx.staff.name,
        chat=f"{ctx.channel} {ctx.address}",
        unit=unit,
        new_unit=new_unit,
    )
