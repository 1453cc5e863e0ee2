"""The incident register (`/incidents`): what this person may see by the
chat's rules (bot/incident_rules.py: an incident's overseers and whoever
reported it), newest first, optionally only those whose 15-day report is
still running, optionally one unit's subtree."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.store import record_reads
from bot.store.record_reads import IncidentLine
from bot.web.context import desk_of, viewer_of
from bot.web.filters import PAGE_SIZE
from bot.web.render import local, page
from bot.web.today import days_left


@dataclass(frozen=True, slots=True)
class Row:
    line: IncidentLine
    unit: str
    occurred: str
    days_left: int | None  # None: the report is submitted


async def page_incidents(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    access = viewer.access
    query = request.query
    running = query.get("running", "") == "1"
    wanted = query.get("unit", "")
    unit = int(wanted) if wanted.isdecimal() and int(wanted) in access.tree else None
    number = query.get("page", "1")
    page_no = max(1, min(int(number), 100_000)) if number.isdecimal() else 1
    if access.every_unit:
        scope: list[int] | None = None
    else:
        scope = access.units()  # a supervisor's subtree; nobody else oversees any
    now = the_desk.clock.now()
    async with the_desk.reader.connection() as conn:
        lines, total = await record_reads.incident_list(
            conn,
            scope_units=scope,
            reporter_id=viewer.staff.id,
            units=access.tree.subtree(unit) if unit is not None else None,
            running_only=running,
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
        )
    rows = [
        Row(
            line=line,
            unit=access.tree.path(line.unit_id),
            occurred=local(
                line.occurred_at, access.tree.timezone(line.unit_id, the_desk.default_timezone)
            ),
            days_left=None if line.report_submitted_at else days_left(line.report_due_at, now),
        )
        for line in lines
    ]
    return page(
        request,
        "incidents.html",
        rows=rows,
        total=total,
        running=running,
        unit=unit,
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
    )
