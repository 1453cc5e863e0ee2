"""Group chats: no reporting happens there. A supervisor may bind a group as
their unit's alert group; anyone else is pointed to a private chat."""

from __future__ import annotations

from bot.engine import Ctx, Visitor
from bot.model import Inbound, InboundKind, Role
from bot.store import people


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
    people.bind_group(
        visitor.conn,
        visitor.channel,
        visitor.address,
        visitor.staff.unit_id,
        visitor.staff.id,
        visitor.now_iso,
    )
    visitor.say("groups.bound", unit=people.unit_path(visitor.conn, visitor.staff.unit_id))
