"""Today (`/`), the wall (`/wall`) and who has not checked (`/checks`): for
each unit of the person's part of the tree, today's pre-shift checks, open
hazards by severity, overdue ones, incidents whose 15-day report is running,
drills this year against the yearly requirement, and home visits. Each unit's
numbers include the units below it; every number links to the list behind it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.calendar import WorkCalendar, shift_starts_on
from bot.clock import iso, local_date
from bot.model import Staff
from bot.store import desk_reads, hazard_reads
from bot.store.desk_reads import Conn, RunningReport, VisitDay
from bot.store.hazards import OPEN_STATES
from bot.web.access import Access
from bot.web.context import Desk, desk_of, viewer_of
from bot.web.render import page
from bot.web.units import UnitTree

PRESHIFT = "preshift"
REPORTS_SHOWN = 50  # the running incident reports listed, soonest due first


@dataclass(slots=True)
class Numbers:
    checks_done: int = 0
    checks_expected: int = 0
    general: int = 0
    major: int = 0
    overdue: int = 0
    reports: int = 0
    reports_late: int = 0
    visits: VisitDay = field(default_factory=VisitDay)

    def add(self, other: Numbers) -> None:
        self.checks_done += other.checks_done
        self.checks_expected += other.checks_expected
        self.general += other.general
        self.major += other.major
        self.overdue += other.overdue
        self.reports += other.reports
        self.reports_late += other.reports_late
        for name in ("planned", "done", "late", "exceptions", "unusual"):
            setattr(self.visits, name, getattr(self.visits, name) + getattr(other.visits, name))

    @property
    def open(self) -> int:
        return self.general + self.major


@dataclass(frozen=True, slots=True)
class UnitRow:
    unit_id: int
    depth: int
    name: str
    path: str
    numbers: Numbers
    drills_done: int  # this year, in the unit or a unit above it (the drill's area)
    has_staff: bool


@dataclass(frozen=True, slots=True)
class Report:
    incident: RunningReport
    days_left: int
    unit: str


@dataclass(frozen=True, slots=True)
class TodayView:
    day: date
    rows: list[UnitRow]
    total: Numbers
    reports: list[Report]
    drills_required: int
    units_short_of_drills: int


def _calendar(
    tree: UnitTree, calendars: dict[int, tuple[str, bool]], unit_id: int, timezone: str
) -> WorkCalendar:
    """The calendar set on the unit or the nearest unit above it (calendars.calendar_row)."""
    for uid in tree.chain(unit_id):
        if uid in calendars:
            starts, every_day = calendars[uid]
            shifts = tuple(time.fromisoformat(s) for s in starts.split(",") if s)
            return WorkCalendar(timezone=timezone, shift_starts=shifts, every_day=every_day)
    return WorkCalendar(timezone=timezone)


def _day_bounds(day: date, timezone: str) -> tuple[str, str]:
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(), zone)
    return iso(start), iso(start + timedelta(days=1))


async def gather(
    conn: Conn,
    access: Access,
    *,
    now: datetime,
    default_timezone: str,
    drills_required: int,
) -> TodayView:
    tree = access.tree
    shown = access.units()
    if not shown:  # someone who oversees no unit: only their own part of the day
        return TodayView(local_date(now, default_timezone), [], Numbers(), [], drills_required, 0)
    zone_of = {uid: tree.timezone(uid, default_timezone) for uid in shown}
    days = {zone: local_date(now, zone) for zone in set(zone_of.values())}
    own: dict[int, Numbers] = {uid: Numbers() for uid in shown}
    now_iso = iso(now)

    # Pre-shift checks: who of each unit's own people is expected today, who did it.
    active = await desk_reads.active_per_unit(conn)
    calendars = await desk_reads.calendars(conn)
    done = await desk_reads.checks_done_per_unit(
        conn, PRESHIFT, sorted({d.isoformat() for d in days.values()})
    )
    away: dict[int, int] = {}
    for day in set(days.values()):
        for uid, count in (await desk_reads.on_leave_per_unit(conn, day.isoformat())).items():
            if zone_of.get(uid) is not None and days[zone_of[uid]] == day:
                away[uid] = count
    working_days: dict[tuple[WorkCalendar, date], bool] = {}
    for uid in shown:
        day = days[zone_of[uid]]
        calendar = _calendar(tree, calendars, uid, zone_of[uid])
        if (calendar, day) not in working_days:
            working_days[calendar, day] = bool(shift_starts_on(calendar, day))
        working = working_days[calendar, day]
        if working and active.get(uid):
            own[uid].checks_expected = max(0, active[uid] - away.get(uid, 0))
        own[uid].checks_done = done.get((uid, day.isoformat()), 0)

    for tally in await desk_reads.open_hazards(conn, now_iso):
        if tally.unit_id in own:
            numbers = own[tally.unit_id]
            if tally.severity == "major":
                numbers.major += tally.count
            else:
                numbers.general += tally.count
            numbers.overdue += tally.overdue

    for uid, (count, late) in (await desk_reads.reports_per_unit(conn, now_iso)).items():
        if uid in own:
            own[uid].reports, own[uid].reports_late = count, late
    soonest = await desk_reads.running_reports(
        conn, None if access.every_unit else shown, REPORTS_SHOWN
    )
    reports = [
        Report(incident, days_left(incident.report_due_at, now), tree.path(incident.unit_id))
        for incident in soonest
    ]

    for zone, day in days.items():
        since, until = _day_bounds(day, zone)
        for uid, visit_day in (
            await desk_reads.visits_per_unit(conn, since, until, now_iso)
        ).items():
            if zone_of.get(uid) == zone:
                own[uid].visits = visit_day

    year = local_date(now, default_timezone).year
    since, until = (
        _day_bounds(date(year, 1, 1), default_timezone)[0],
        iso(datetime.combine(date(year + 1, 1, 1), time(), ZoneInfo(default_timezone))),
    )
    drills = await desk_reads.drills_done_per_unit(conn, since, until)

    rows, total = _roll_up(tree, access.top_units(), own, drills, active)
    short = sum(1 for row in rows if row.has_staff and row.drills_done < drills_required)
    return TodayView(
        day=local_date(now, default_timezone),
        rows=rows,
        total=total,
        reports=reports,
        drills_required=drills_required,
        units_short_of_drills=short,
    )


def days_left(due_at: str, now: datetime) -> int:
    """Days until the report is due, a day begun counting whole; negative:
    whole days late (at least one once the moment has passed)."""
    left = (datetime.fromisoformat(due_at) - now).total_seconds() / 86400
    return math.ceil(left) if left > 0 else -max(1, math.floor(-left))


def _roll_up(
    tree: UnitTree,
    tops: Sequence[int],
    own: dict[int, Numbers],
    drills: dict[int, int],
    active: dict[int, int],
) -> tuple[list[UnitRow], Numbers]:
    """Each unit's numbers with those of the units below it, in tree order:
    one walk up from the leaves, one down for the drills of the units above."""
    rows: list[UnitRow] = []
    total = Numbers()
    for top in tops:
        order = tree.subtree(top)
        summed: dict[int, Numbers] = {}
        for uid in reversed(order):  # every unit after the units below it
            numbers = Numbers()
            if uid in own:
                numbers.add(own[uid])
            for child in tree.children(uid):
                numbers.add(summed[child])
            summed[uid] = numbers
        above = sum(drills.get(up, 0) for up in tree.chain(top)[1:])
        area: dict[int, int] = {}
        depth: dict[int, int] = {top: 0}
        for uid in order:  # every unit after the unit above it
            parent = tree.by_id[uid].parent_id
            area[uid] = drills.get(uid, 0) + (area[parent] if uid != top and parent else above)
            if uid != top and parent is not None:
                depth[uid] = depth[parent] + 1
            unit = tree.by_id[uid]
            rows.append(
                UnitRow(
                    unit_id=uid,
                    depth=depth[uid],
                    name=unit.name,
                    path=unit.path,
                    numbers=summed[uid],
                    drills_done=area[uid],
                    has_staff=bool(active.get(uid)),
                )
            )
        total.add(summed[top])
    return rows, total


@dataclass(frozen=True, slots=True)
class Mine:
    """Everyone's own part of today: their check, their open and overdue hazards."""

    checked: bool
    expected: bool
    open: int
    overdue: int


async def mine(conn: Conn, access: Access, now: datetime, default_timezone: str) -> Mine:
    staff = access.staff
    zone = access.tree.timezone(staff.unit_id, default_timezone)
    today = local_date(now, zone).isoformat()
    checked = bool(await desk_reads.checked(conn, PRESHIFT, [staff.id], today))
    calendars = await desk_reads.calendars(conn)
    calendar = _calendar(access.tree, calendars, staff.unit_id, zone)
    on_leave = bool(await desk_reads.on_leave(conn, [staff.id], today))
    expected = bool(shift_starts_on(calendar, local_date(now, zone))) and not on_leave
    own = hazard_reads.HazardQuery(person_id=staff.id, own_only=True)
    _, open_count = await hazard_reads.register(
        conn, _with(own, statuses=OPEN_STATES), limit=0, offset=0
    )
    _, overdue = await hazard_reads.register(
        conn, _with(own, overdue_at=iso(now)), limit=0, offset=0
    )
    return Mine(checked=checked, expected=expected, open=open_count, overdue=overdue)


def _with(query: hazard_reads.HazardQuery, **changes: object) -> hazard_reads.HazardQuery:
    return dataclasses.replace(query, **changes)  # type: ignore[arg-type]


# -- the pages ----------------------------------------------------------------------------
async def page_today(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    now = the_desk.clock.now()
    async with the_desk.reader.connection() as conn:
        view = await gather(
            conn,
            viewer.access,
            now=now,
            default_timezone=the_desk.default_timezone,
            drills_required=the_desk.drills_per_year,
        )
        my_day = await mine(conn, viewer.access, now, the_desk.default_timezone)
    return page(request, "today.html", view=view, mine=my_day, updated=_clock(now, the_desk))


async def page_wall(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    if not viewer.access.oversees_any:
        raise web.HTTPForbidden()
    now = the_desk.clock.now()
    async with the_desk.reader.connection() as conn:
        view = await gather(
            conn,
            viewer.access,
            now=now,
            default_timezone=the_desk.default_timezone,
            drills_required=the_desk.drills_per_year,
        )
        overdue, _ = await hazard_reads.register(
            conn,
            _with(viewer.access.hazard_scope(), overdue_at=iso(now), sort="deadline"),
            limit=8,
            offset=0,
        )
    tops = [row for row in view.rows if row.depth <= 1]
    return page(
        request,
        "wall.html",
        view=view,
        units=tops[:14],
        overdue=overdue,
        paths={line.unit_id: viewer.access.tree.path(line.unit_id) for line in overdue},
        updated=_clock(now, the_desk),
    )


@dataclass(frozen=True, slots=True)
class Missing:
    unit: str
    unit_id: int
    shifts: list[str]
    expected: int
    done: int
    names: list[str]


async def page_checks(request: web.Request) -> web.Response:
    """Who has not done today's pre-shift check, unit by unit, with the unit's shifts."""
    the_desk, viewer = desk_of(request), viewer_of(request)
    access = viewer.access
    if not access.oversees_any:
        raise web.HTTPForbidden()
    shown = access.units()
    wanted = request.query.get("unit", "")
    root = int(wanted) if wanted.isdecimal() and int(wanted) in shown else None
    units = access.tree.subtree(root) if root is not None else shown
    now = the_desk.clock.now()
    result: list[Missing] = []
    async with the_desk.reader.connection() as conn:
        calendars = await desk_reads.calendars(conn)
        people = await desk_reads.members(conn, units)
        by_unit: dict[int, list[Staff]] = {}
        for person in people:
            by_unit.setdefault(person.unit_id, []).append(person)
        for uid in units:
            present = by_unit.get(uid, [])
            if not present:
                continue
            zone = access.tree.timezone(uid, the_desk.default_timezone)
            day = local_date(now, zone)
            starts = shift_starts_on(_calendar(access.tree, calendars, uid, zone), day)
            away = await desk_reads.on_leave(conn, [p.id for p in present], day.isoformat())
            present = [p for p in present if p.id not in away]
            done = await desk_reads.checked(
                conn, PRESHIFT, [p.id for p in present], day.isoformat()
            )
            result.append(
                Missing(
                    unit=access.tree.path(uid),
                    unit_id=uid,
                    shifts=[s.astimezone(ZoneInfo(zone)).strftime("%H:%M") for s in starts],
                    expected=len(present) if starts else 0,
                    done=len(done),
                    names=[p.name for p in present if p.id not in done] if starts else [],
                )
            )
    return page(request, "checks.html", units=result, updated=_clock(now, the_desk))


def _clock(now: datetime, the_desk: Desk) -> str:
    return now.astimezone(ZoneInfo(the_desk.default_timezone)).strftime("%Y-%m-%d %H:%M")
