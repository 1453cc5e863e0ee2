"""/done N marks a duty without a checklist (a meeting) done; /schedules shows
supervisors and admins what is coming for their units, and pauses or resumes
a duty for their unit (`/schedules pause monthly_fire_meeting`)."""

from __future__ import annotations

from bot.engine import Ctx
from bot.model import Role, UserError
from bot.numbers import parse_number
from bot.store import drills, duties, notices, people
from schedules import duties as duty_book
from schedules.clock import local_time_text, parse_iso


def done(ctx: Ctx, args: str) -> None:
    duty_id = parse_number(args)
    row = duties.get(ctx.conn, duty_id) if duty_id is not None else None
    if row is None or int(row["staff_id"]) != ctx.staff.id:
        raise UserError("duty.no_such")
    if row["done_at"]:
        ctx.say("duty.already_done")
        return
    duties.complete(ctx.conn, str(row["duty"]), ctx.staff.id, ctx.now_iso)
    ctx.say("duty.done", title=duty_book.load()[str(row["duty"])].title.get(ctx.lang))


def schedules(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SUPERVISOR, Role.ADMIN):
        raise UserError("duty.not_allowed")
    word, _, name = args.strip().partition(" ")
    if word in ("pause", "resume"):
        toggle(ctx, word, name.strip())
        return
    scope = (
        notices.everyone(ctx.conn)
        if ctx.staff.has(Role.ADMIN)
        else notices.subtree_staff(ctx.conn, ctx.staff.unit_id)
    )
    rows = duties.upcoming(ctx.conn, scope, ctx.now_iso)
    book = duty_book.load()
    lines = [
        ctx.text(
            "duty.line",
            due=local_time_text(parse_iso(row["due_at"]), ctx.timezone),
            title=book[row["duty"]].title.get(ctx.lang) if row["duty"] in book else row["duty"],
            name=row["name"],
            state=ctx.text("duty.state_done" if row["done_at"] else "duty.state_open"),
        )
        for row in rows
    ]
    for drill in drills.upcoming_in(ctx.conn, ctx.staff.unit_id, ctx.now_iso):
        lines.append(
            ctx.text(
                "duty.drill_line",
                due=local_time_text(parse_iso(drill["at"]), ctx.timezone),
                kind=ctx.text(f"drill.kind_{drill['kind']}"),
                area=people.unit_path(ctx.conn, int(drill["unit_id"])),
                drill=drill["id"],
            )
        )
    ctx.say(
        "duty.upcoming",
        lines="\n".join(sorted(lines)) or ctx.text("duty.nothing"),
        ids=", ".join(book),
    )


def toggle(ctx: Ctx, word: str, name: str) -> None:
    book = duty_book.load()
    if name not in book:
        raise UserError("duty.unknown", name=name[:32] or "-", ids=", ".join(book))
    unit = people.unit_path(ctx.conn, ctx.staff.unit_id)
    if word == "pause":
        duties.pause(ctx.conn, ctx.staff.unit_id, name, ctx.staff.id, ctx.now_iso)
        ctx.say("duty.paused", title=book[name].title.get(ctx.lang), unit=unit)
    else:
        duties.resume(ctx.conn, ctx.staff.unit_id, name)
        ctx.say("duty.resumed", title=book[name].title.get(ctx.lang), unit=unit)
