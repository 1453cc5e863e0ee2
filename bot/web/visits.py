"""Today's home visits (`/visits`): the planned visits of the clients of
this person's units, who goes, whether they checked in and out and how far
from the client's home, late ones, check-in exceptions and anything
unusual. Where `FRONTLINE_MAP_TILES` is set, each visit also shows a small
map of the home and the check-in and check-out points (bot/web/maps.py).
Supervisors and centre leaders read their units' subtree; safety officers
and admins every unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.clock import iso, local_date
from bot.model import Role
from bot.store import record_reads
from bot.store.record_reads import VisitLine
from bot.web import maps
from bot.web.context import desk_of, viewer_of
from bot.web.render import local, page

SHOWN = 300
MAP_WIDTH, MAP_HEIGHT = 320, 200


@dataclass(frozen=True, slots=True)
class Row:
    visit: VisitLine
    unit: str
    window: str
    late: bool
    map: maps.StaticMap | None = None


def visit_map(template: str, visit: VisitLine) -> maps.StaticMap | None:
    """The visit's map: the client's home and where they checked in and out."""
    points = [
        maps.Point(*where, kind)
        for where, kind in (
            (visit.home, "home"),
            (visit.checkin_point, "checkin"),
            (visit.checkout_point, "checkout"),
        )
        if where is not None
    ]
    return maps.static_map(template, points, width=MAP_WIDTH, height=MAP_HEIGHT)


async def page_visits(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    access, staff = viewer.access, viewer.staff
    if access.every_unit:
        units: list[int] | None = None
    elif staff.has(Role.SUPERVISOR, Role.CENTRE_LEADER):
        units = access.tree.subtree(staff.unit_id)
    else:
        raise web.HTTPForbidden()
    zone = access.tree.timezone(staff.unit_id, the_desk.default_timezone)
    now = the_desk.clock.now()
    start = datetime.combine(local_date(now, zone), time(), ZoneInfo(zone))
    async with the_desk.reader.connection() as conn:
        lines = await record_reads.visits_of_day(
            conn, units, iso(start), iso(start + timedelta(days=1)), SHOWN
        )
    tiles = the_desk.map_tiles
    rows = [
        Row(
            visit=line,
            unit=access.tree.path(line.unit_id),
            window=" – ".join(
                local(moment, zone)[-5:]
                for moment in (line.planned_start, line.planned_end)
                if moment
            ),
            late=line.checkin_at is None
            and line.state in ("assigned", "accepted")
            and bool(line.planned_start)
            and str(line.planned_start) < iso(now),
            map=visit_map(tiles, line) if tiles else None,
        )
        for line in lines
    ]
    return page(
        request,
        "visits.html",
        rows=rows,
        with_maps=tiles is not None,
        day=local_date(now, zone).isoformat(),
        local=local,
        zone=zone,
    )
