"""Choosing people: the staff a sender may address (their unit subtree, or
everyone for an admin) and typed lists of names, phones or employee numbers."""

from __future__ import annotations

from bot.engine import Ctx
from bot.model import Role, UserError
from bot.store import notices, people
from handlers.text import clean_text

MAX_NAMES = 50


def scope(ctx: Ctx) -> list[int]:
    """Whom this person may address: everyone for an admin, else their unit subtree."""
    if ctx.staff.has(Role.ADMIN):
        return notices.everyone(ctx.conn)
    return notices.subtree_staff(ctx.conn, ctx.staff.unit_id)


def named(ctx: Ctx, text: str) -> list[int]:
    """The people a typed list names, each exactly once and within scope;
    refuses the list naming what it could not match."""
    separators = clean_text(text).replace("，", ",").replace("、", ",")
    wanted = [w.strip() for w in separators.split(",") if w.strip()][:MAX_NAMES]
    allowed = set(scope(ctx))
    found: list[int] = []
    unknown: list[str] = []
    for who in wanted:
        matches = [p for p in people.find_staff(ctx.conn, who) if p.active and p.id in allowed]
        if len(matches) == 1:
            found.append(matches[0].id)
        else:
            unknown.append(who[:20])
    if unknown or not found:
        names = ctx.text("common.list_separator").join(unknown)
        raise UserError("notice.unknown_names", names=names or "-")
    return sorted(set(found))
