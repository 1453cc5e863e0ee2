"""/hazards and /overdue: the hazard register as people read it on a phone.
Everyone sees what they reported or must fix; supervisors also see their
units' open hazards, safety officers and admins every unit's. Ten at a time."""

from __future__ import annotations

from typing import Any

from bot.clock import local_time_text, parse_iso
from bot.engine import Ctx
from bot.model import Role, UserError
from bot.store import hazards, people
from handlers.text import page_index

PAGE = 10


def _scope(ctx: Ctx) -> dict[str, Any]:
    """The units whose open hazards this person oversees: every unit for
    safety officers and admins, their unit and those below for supervisors."""
    if ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN):
        return {"every_unit": True}
    if ctx.staff.has(Role.SUPERVISOR):
        return {"unit_ids": people.subtree_units(ctx.conn, ctx.staff.unit_id)}
    return {}


def _lines(ctx: Ctx, rows: list) -> str:  # type: ignore[type-arg]
    paths = people.unit_paths(ctx.conn, [int(row["unit_id"]) for row in rows])
    return "\n".join(
        ctx.text(
            "hazards.line",
            number=row["number"] or f"#{row['id']}",
            status=ctx.text(f"hazards.status_{row['status']}"),
            deadline=local_time_text(parse_iso(row["deadline_at"]), ctx.timezone),
            unit=paths.get(int(row["unit_id"]), ""),
            description=str(row["description"])[:40],
        )
        for row in rows
    )


def mine(ctx: Ctx, args: str) -> None:
    page = page_index(args)
    rows = hazards.listing(
        ctx.conn, person_id=ctx.staff.id, limit=PAGE, offset=page * PAGE, **_scope(ctx)
    )
    if not rows:
        ctx.say("hazards.none")
        return
    ctx.say("hazards.page", page=page + 1, lines=_lines(ctx, rows), next=page + 2)


def overdue(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ADMIN):
        raise UserError("hazards.overdue_not_allowed")
    page = page_index(args)
    rows = hazards.listing(
        ctx.conn, overdue_at=ctx.now_iso, limit=PAGE, offset=page * PAGE, **_scope(ctx)
    )
    if not rows:
        ctx.say("hazards.none_overdue")
        return
    ctx.say("hazards.overdue_page", page=page + 1, lines=_lines(ctx, rows), next=page + 2)
