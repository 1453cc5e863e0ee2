"""This year's drills (`/drills`): planned and held, in the person's units
and in the units above them (a drill's area is its unit's subtree), and the
units still short of the yearly requirement. For supervisors, safety
officers and admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.clock import iso, local_date
from bot.store import desk_reads, record_reads
from bot.store.record_reads import DrillLine
from bot.web.context import desk_of, viewer_of
from bot.web.render import local, page


@dataclass(frozen=True, slots=True)
class Row:
    drill: DrillLine
    unit: str
    at: str
    organiser: str


async def page_drills(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    access = viewer.access
    if not access.oversees_any:
        raise web.HTTPForbidden()
    zone = the_desk.default_timezone
    year = local_date(the_desk.clock.now(), zone).year
    since = iso(datetime.combine(date(year, 1, 1), time(), ZoneInfo(zone)))
    until = iso(datetime.combine(date(year + 1, 1, 1), time(), ZoneInfo(zone)))
    shown = None if access.every_unit else access.units()
    above = [] if shown is None else access.tree.chain(viewer.staff.unit_id)[1:]
    async with the_desk.reader.connection() as conn:
        drills = await record_reads.drills_between(
            conn, None if shown is None else [*above, *shown], since, until
        )
        names = await desk_reads.names(conn, [d.organiser_id for d in drills])
    rows = [
        Row(
            drill=d,
            unit=access.tree.path(d.unit_id),
            at=local(d.at, access.tree.timezone(d.unit_id, zone)),
            organiser=names.get(d.organiser_id, "—"),
        )
        for d in drills
    ]
    return page(request, "drills.html", rows=rows, year=year, required=the_desk.drills_per_year)
