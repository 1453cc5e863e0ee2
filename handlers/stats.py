"""/stats: the weekly picture on demand, for a period chosen by button (this
or last week, this or last month). Supervisors see their unit and the units
below it; safety officers and admins see every unit. The weekly send
(schedules/weekly.py) and this command compose it with bot.stats.compose."""

from __future__ import annotations

from bot.clock import local_date
from bot.engine import Ctx
from bot.model import Button, Role, UserError
from bot.stats import Choice, compose, period_for
from bot.store import people, stats

CHOICES = (
    (Choice.THIS_WEEK, "stats.this_week"),
    (Choice.LAST_WEEK, "stats.last_week"),
    (Choice.THIS_MONTH, "stats.this_month"),
    (Choice.LAST_MONTH, "stats.last_month"),
)


def command(ctx: Ctx, args: str) -> None:
    unit_ids, scope = units_in_view(ctx)
    try:
        choice = Choice(args.strip().lower())
    except ValueError:
        ask_period(ctx)
        return
    period = period_for(choice, local_date(ctx.now, ctx.timezone))
    text, chart = compose(
        ctx.conn,
        language=ctx.lang,
        unit_ids=unit_ids,
        scope=scope,
        period=period,
        timezone=ctx.timezone,
        now=ctx.now,
    )
    ctx.say_text(text, attachments=(chart,))


def ask_period(ctx: Ctx) -> None:
    buttons = [Button(ctx.text(key), f"/stats {choice.value}") for choice, key in CHOICES]
    ctx.say("stats.ask_period", buttons=[buttons[:2], buttons[2:]])


def units_in_view(ctx: Ctx) -> tuple[list[int], str]:
    """The units whose numbers this person may see, and how to name them."""
    if ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN):
        return stats.all_units(ctx.conn), ctx.text("stats.all_units")
    if ctx.staff.has(Role.SUPERVISOR):
        return (
            people.subtree_units(ctx.conn, ctx.staff.unit_id),
            people.unit_path(ctx.conn, ctx.staff.unit_id),
        )
    raise UserError("stats.not_allowed")
