"""/visits: the week of home visits (Monday to Sunday, local time). A care
worker sees their own: visits done, planned visits coming, planned visits
missed. A supervisor or centre leader sees their units': the counts, then
the exceptions and missed visits, then the latest visits. Ten a page."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Ctx
from bot.model import Role, UserError
from bot.store import people, visit_requests, visit_views
from handlers.text import page_index

PAGE = 10
# A planned visit with no check-in this long after its start counts as missed
# (when the supervisor is told, schedules.visits.SUPERVISOR_AFTER).
MISSED_AFTER = timedelta(minutes=30)


# -- pure rules --------------------------------------------------------------------------
def week_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """This local week, Monday 00:00 to the next Monday 00:00, in UTC."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    start = datetime.combine(monday, time(0), tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def minutes_between(start: str, end: str | None) -> int | None:
    if not end:
        return None
    return max(0, round((parse_iso(end) - parse_iso(start)).total_seconds() / 60))


# -- lines ---------------------------------------------------------------------------------
def _short(ctx: Ctx, moment: str) -> str:
    return local_time_text(parse_iso(moment), ctx.timezone)[5:]


def _visit_line(ctx: Ctx, row: sqlite3.Row, with_worker: bool) -> str:
    minutes = minutes_between(row["checkin_at"], row["checkout_at"])
    return ctx.text(
        "visit_admin.visit_line",
        date=_short(ctx, row["checkin_at"]),
        client=row["client"],
        worker=f" — {row['worker']}" if with_worker else "",
        duration=ctx.text("visit_admin.ongoing")
        if minutes is None
        else ctx.text("visit_admin.minutes", minutes=minutes),
        flag=" ⚠️" if row["checkin_exception"] or row["checkout_exception"] else "",
    )


def _planned_line(ctx: Ctx, row: sqlite3.Row, with_worker: bool = False) -> str:
    return ctx.text(
        "visit_admin.planned_line",
        date=_short(ctx, row["starts_at"]),
        end=local_time_text(parse_iso(row["ends_at"]), ctx.timezone)[11:],
        client=row["client"],
        worker=f" — {row['worker_name']}" if with_worker else "",
        pending=ctx.text("visit_admin.pending") if row["state"] == "assigned" else "",
    )


def _section(ctx: Ctx, key: str, lines: list[str]) -> list[str]:
    return [ctx.text(key), *lines] if lines else []


# -- /visits ----------------------------------------------------------------------------------
def command(ctx: Ctx, args: str) -> None:
    page = page_index(args)
    if ctx.staff.has(Role.SUPERVISOR, Role.CENTRE_LEADER):
        units_week(ctx, page)
    elif ctx.staff.has(Role.CARE_WORKER):
        worker_week(ctx, page)
    else:
        raise UserError("visit_admin.visits_not_allowed")


def _more(lists: list[list[sqlite3.Row]]) -> bool:
    return any(len(rows) > PAGE for rows in lists)


def worker_week(ctx: Ctx, page: int) -> None:
    start, end = week_bounds(ctx.now, ctx.timezone)
    since, until, offset = iso(start), iso(end), page * PAGE
    missed_before = iso(min(ctx.now - MISSED_AFTER, end))
    done = visit_views.for_worker(ctx.conn, ctx.staff.id, since, until, PAGE + 1, offset)
    coming = visit_requests.coming_for_worker(
        ctx.conn, ctx.staff.id, missed_before, until, PAGE + 1, offset
    )
    missed = visit_requests.missed_for_worker(
        ctx.conn, ctx.staff.id, since, missed_before, PAGE + 1, offset
    )
    lines = [_week_head(ctx, start, end, "visit_admin.worker_head")]
    lines += _section(
        ctx, "visit_admin.done_head", [_visit_line(ctx, r, False) for r in done[:PAGE]]
    )
    lines += _section(
        ctx, "visit_admin.coming_head", [_planned_line(ctx, r) for r in coming[:PAGE]]
    )
    lines += _section(
        ctx, "visit_admin.missed_head", [_planned_line(ctx, r) for r in missed[:PAGE]]
    )
    if len(lines) == 1:
        lines.append(ctx.text("visit_admin.nothing"))
    _say_page(ctx, lines, page, _more([done, coming, missed]))


def units_week(ctx: Ctx, page: int) -> None:
    units = people.subtree_units(ctx.conn, ctx.staff.unit_id)
    start, end = week_bounds(ctx.now, ctx.timezone)
    since, until, offset = iso(start), iso(end), page * PAGE
    missed_before = iso(min(ctx.now - MISSED_AFTER, end))
    done, exceptional = visit_views.counts(ctx.conn, units, since, until)
    lines = [
        _week_head(ctx, start, end, "visit_admin.units_head"),
        ctx.text(
            "visit_admin.counts",
            done=done,
            exceptions=exceptional,
            missed=visit_requests.count_missed_in_units(ctx.conn, units, since, missed_before),
            unusual=visit_views.count_unusual(ctx.conn, units, since, until),
        ),
    ]
    exceptions = visit_views.exceptions(ctx.conn, units, since, until, PAGE + 1, offset)
    missed = visit_requests.missed_in_units(ctx.conn, units, since, missed_before, PAGE + 1, offset)
    latest = visit_views.latest(ctx.conn, units, since, until, PAGE + 1, offset)
    lines += _section(
        ctx, "visit_admin.exceptions_head", [_visit_line(ctx, r, True) for r in exceptions[:PAGE]]
    )
    lines += _section(
        ctx, "visit_admin.missed_head", [_planned_line(ctx, r, True) for r in missed[:PAGE]]
    )
    lines += _section(
        ctx, "visit_admin.latest_head", [_visit_line(ctx, r, True) for r in latest[:PAGE]]
    )
    _say_page(ctx, lines, page, _more([exceptions, missed, latest]))


def _week_head(ctx: Ctx, start: datetime, end: datetime, key: str) -> str:
    last = end - timedelta(days=1)
    return ctx.text(
        key,
        start=local_time_text(start, ctx.timezone)[5:10],
        end=local_time_text(last, ctx.timezone)[5:10],
    )


def _say_page(ctx: Ctx, lines: list[str], page: int, more: bool) -> None:
    if page > 0 or more:
        lines.append(ctx.text("visit_admin.page", page=page + 1))
    if more:
        lines.append(ctx.text("visit_admin.next_page", next=page + 2))
    ctx.say_text("\n".join(lines))
