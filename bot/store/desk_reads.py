"""What the desk's pages read, on the read connections (bot/store/reader.py):
the unit tree, people, today's numbers, the hazard register with its filters
and search, and one hazard's card. Only SELECTs; typed records out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from bot.model import Role, Staff
from bot.store.hazards import CHASED_STATES, OPEN_STATES

Conn = aiosqlite.Connection

# Searches this long or longer use the trigram index; shorter ones LIKE.
TRIGRAM = 3


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"


async def _all(conn: Conn, sql: str, params: Sequence[object] = ()) -> list[Any]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def _one(conn: Conn, sql: str, params: Sequence[object] = ()) -> Any:
    async with conn.execute(sql, params) as cursor:
        return await cursor.fetchone()


# -- units and people ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    parent_id: int | None
    name: str
    path: str
    timezone: str | None


async def units(conn: Conn) -> list[Unit]:
    rows = await _all(conn, "SELECT id, parent_id, name, path, timezone FROM units")
    return [Unit(int(r[0]), r[1], str(r[2]), str(r[3]), r[4]) for r in rows]


_STAFF = "s.id, s.name, s.phone, s.employee_no, s.unit_id, s.roles, s.language, s.active"


def _staff(row: Any) -> Staff:
    return Staff(
        id=int(row[0]),
        name=str(row[1]),
        phone=str(row[2]),
        employee_no=row[3],
        unit_id=int(row[4]),
        roles=frozenset(Role(r) for r in str(row[5]).split(",") if r),
        language=str(row[6]),
        active=bool(row[7]),
    )


async def staff(conn: Conn, staff_id: int) -> Staff | None:
    row = await _one(conn, f"SELECT {_STAFF} FROM staff s WHERE s.id = ?", (staff_id,))
    return _staff(row) if row else None


async def names(conn: Conn, ids: Sequence[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = await _all(conn, f"SELECT id, name FROM staff WHERE id IN ({_marks(wanted)})", wanted)
    return {int(r[0]): str(r[1]) for r in rows}


async def staff_named(conn: Conn, text: str, limit: int = 50) -> list[int]:
    """People whose name contains `text` (or whose phone or employee number it is)."""
    needle = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = await _all(
        conn,
        "SELECT id FROM staff WHERE name LIKE ? ESCAPE '\\' OR phone = ? OR employee_no = ?"
        " ORDER BY id LIMIT ?",
        (f"%{needle}%", text.strip(), text.strip(), limit),
    )
    return [int(r[0]) for r in rows]


async def members(conn: Conn, unit_ids: Sequence[int]) -> list[Staff]:
    """Active staff of these units (their own members), by unit then name."""
    ids = list(unit_ids)
    rows = await _all(
        conn,
        f"SELECT {_STAFF} FROM staff s WHERE s.active = 1 AND s.unit_id IN ({_marks(ids)})"
        " ORDER BY s.unit_id, s.name, s.id",
        ids,
    )
    return [_staff(r) for r in rows]


# -- today --------------------------------------------------------------------------
async def active_per_unit(conn: Conn) -> dict[int, int]:
    rows = await _all(conn, "SELECT unit_id, COUNT(*) FROM staff WHERE active = 1 GROUP BY unit_id")
    return {int(r[0]): int(r[1]) for r in rows}


async def on_leave_per_unit(conn: Conn, local_date: str) -> dict[int, int]:
    rows = await _all(
        conn,
        "SELECT s.unit_id, COUNT(*) FROM leave l CROSS JOIN staff s ON s.id = l.staff_id"
        " WHERE s.active = 1 AND l.until_date >= ? GROUP BY s.unit_id",
        (local_date,),
    )
    return {int(r[0]): int(r[1]) for r in rows}


async def on_leave(conn: Conn, staff_ids: Sequence[int], local_date: str) -> set[int]:
    ids = list(staff_ids)
    rows = await _all(
        conn,
        f"SELECT staff_id FROM leave WHERE staff_id IN ({_marks(ids)}) AND until_date >= ?",
        (*ids, local_date),
    )
    return {int(r[0]) for r in rows}


async def checks_done_per_unit(
    conn: Conn, checklist: str, local_dates: Sequence[str]
) -> dict[tuple[int, str], int]:
    """People who completed `checklist`, per (unit, local date)."""
    dates = list(local_dates)
    rows = await _all(
        conn,
        "SELECT unit_id, local_date, COUNT(DISTINCT staff_id) FROM checklist_runs"
        f" WHERE checklist = ? AND local_date IN ({_marks(dates)}) AND completed_at IS NOT NULL"
        " GROUP BY unit_id, local_date",
        (checklist, *dates),
    )
    return {(int(r[0]), str(r[1])): int(r[2]) for r in rows}


async def checked(
    conn: Conn, checklist: str, staff_ids: Sequence[int], local_date: str
) -> set[int]:
    ids = list(staff_ids)
    rows = await _all(
        conn,
        f"SELECT DISTINCT staff_id FROM checklist_runs WHERE staff_id IN ({_marks(ids)})"
        " AND checklist = ? AND local_date = ? AND completed_at IS NOT NULL",
        (*ids, checklist, local_date),
    )
    return {int(r[0]) for r in rows}


async def calendars(conn: Conn) -> dict[int, tuple[str, bool]]:
    """Each unit's own calendar row: shift starts ('08:00,20:00') and every_day."""
    rows = await _all(conn, "SELECT unit_id, shift_starts, every_day FROM unit_calendars")
    return {int(r[0]): (str(r[1]), bool(r[2])) for r in rows}


@dataclass(frozen=True, slots=True)
class OpenCount:
    unit_id: int
    status: str
    severity: str
    count: int
    overdue: int  # past the deadline (only states still waiting on someone count)


async def open_hazards(conn: Conn, now: str) -> list[OpenCount]:
    chased = set(CHASED_STATES)
    rows = await _all(
        conn,
        "SELECT status, unit_id, severity, COUNT(*), SUM(deadline_at < ?) FROM hazards"
        f" WHERE status IN ({_marks(OPEN_STATES)}) GROUP BY status, unit_id, severity",
        (now, *OPEN_STATES),
    )
    return [
        OpenCount(int(r[1]), str(r[0]), str(r[2]), int(r[3]), int(r[4]) if r[0] in chased else 0)
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class RunningReport:
    """An incident whose report to the authority is not yet submitted."""

    id: int
    number: str
    unit_id: int
    kind: str
    occurred_at: str
    report_due_at: str


async def running_reports(
    conn: Conn, unit_ids: Sequence[int] | None, limit: int
) -> list[RunningReport]:
    """The `limit` incidents whose report is due soonest (or most overdue)."""
    ids = list(unit_ids or ())
    within = "" if unit_ids is None else f" AND unit_id IN ({_marks(ids)})"
    rows = await _all(
        conn,
        "SELECT id, number, unit_id, kind, occurred_at, report_due_at FROM incidents"
        f" WHERE report_submitted_at IS NULL{within} ORDER BY report_due_at LIMIT ?",
        (*ids, limit),
    )
    return [RunningReport(int(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4], r[5]) for r in rows]


async def reports_per_unit(conn: Conn, now: str) -> dict[int, tuple[int, int]]:
    """Per unit: incidents whose report is not yet submitted, and how many of them are late."""
    rows = await _all(
        conn,
        "SELECT unit_id, COUNT(*), SUM(report_due_at < ?) FROM incidents"
        " WHERE report_submitted_at IS NULL GROUP BY unit_id",
        (now,),
    )
    return {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}


@dataclass(frozen=True, slots=True)
class IncidentLine:
    id: int
    number: str
    unit_id: int
    kind: str
    occurred_at: str
    investigation: str
    hurt_count: int
    report_due_at: str
    report_submitted_at: str | None
    report_reference: str | None


async def incident_list(
    conn: Conn,
    *,
    scope_units: Sequence[int] | None,
    reporter_id: int | None,
    units: Sequence[int] | None,
    running_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[IncidentLine], int]:
    """Incidents newest first: of `scope_units` (None: every unit) or
    reported by `reporter_id`, narrowed to `units`, and to those whose report
    is still running; with how many the whole view holds."""
    parts: list[str] = []
    params: list[object] = []
    if scope_units is not None:
        scope = list(scope_units)
        mine = " OR reported_by = ?" if reporter_id is not None else ""
        parts.append(f"(unit_id IN ({_marks(scope)}){mine})")
        params += [*scope, *([reporter_id] if reporter_id is not None else [])]
    if units is not None:
        parts.append(f"unit_id IN ({_marks(units)})")
        params += list(units)
    if running_only:
        parts.append("report_submitted_at IS NULL")
    where = " AND ".join(parts) or "1 = 1"
    rows = await _all(
        conn,
        "SELECT id, number, unit_id, kind, occurred_at, investigation, hurt_count,"
        " report_due_at, report_submitted_at, report_reference FROM incidents"
        f" WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await _one(conn, f"SELECT COUNT(*) FROM incidents WHERE {where}", params)
    lines = [
        IncidentLine(
            int(r[0]),
            str(r[1]),
            int(r[2]),
            str(r[3]),
            str(r[4]),
            str(r[5]),
            int(r[6]),
            str(r[7]),
            r[8],
            r[9],
        )
        for r in rows
    ]
    return lines, int(total[0])


async def drills_done_per_unit(conn: Conn, since: str, until: str) -> dict[int, int]:
    rows = await _all(
        conn,
        "SELECT unit_id, COUNT(*) FROM drills WHERE state = 'done' AND at >= ? AND at < ?"
        " GROUP BY unit_id",
        (since, until),
    )
    return {int(r[0]): int(r[1]) for r in rows}


@dataclass(slots=True)
class VisitDay:
    planned: int = 0
    done: int = 0
    late: int = 0  # planned, its start passed, nobody checked in
    exceptions: int = 0  # check-in or check-out far away or without a location
    unusual: int = 0  # falls, illness, not at home ... reported during a visit


async def visits_per_unit(conn: Conn, since: str, until: str, now: str) -> dict[int, VisitDay]:
    found: dict[int, VisitDay] = {}
    planned = await _all(
        conn,
        "SELECT c.unit_id, COUNT(*), SUM(r.state IN ('assigned', 'accepted') AND r.starts_at < ?)"
        " FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " WHERE r.starts_at >= ? AND r.starts_at < ?"
        " AND r.state IN ('assigned', 'accepted', 'visited') GROUP BY c.unit_id",
        (now, since, until),
    )
    for r in planned:
        day = found.setdefault(int(r[0]), VisitDay())
        day.planned, day.late = int(r[1]), int(r[2] or 0)
    done = await _all(
        conn,
        "SELECT unit_id, SUM(state = 'done'), SUM(checkin_exception IS NOT NULL"
        " OR checkout_exception IS NOT NULL) FROM visits"
        " WHERE checkin_at >= ? AND checkin_at < ? GROUP BY unit_id",
        (since, until),
    )
    for r in done:
        day = found.setdefault(int(r[0]), VisitDay())
        day.done, day.exceptions = int(r[1] or 0), int(r[2] or 0)
    unusual = await _all(
        conn,
        "SELECT v.unit_id, COUNT(*) FROM visit_notes n JOIN visits v ON v.id = n.visit_id"
        " WHERE n.kind = 'unusual' AND n.at >= ? AND n.at < ? GROUP BY v.unit_id",
        (since, until),
    )
    for r in unusual:
        found.setdefault(int(r[0]), VisitDay()).unusual = int(r[1])
    return found


@dataclass(frozen=True, slots=True)
class VisitLine:
    """A planned visit of the day (or one checked in without a plan)."""

    planned_start: str | None
    planned_end: str | None
    state: str  # the plan's state, or the visit's when there is no plan
    client_number: str
    client_name: str
    unit_id: int
    worker: str | None
    checkin_at: str | None
    checkout_at: str | None
    exception: bool  # check-in or check-out far away or without a location
    unusual: int


_VISIT_TAIL = (
    " v.checkin_at, v.checkout_at,"
    " (v.checkin_exception IS NOT NULL OR v.checkout_exception IS NOT NULL),"
    " (SELECT COUNT(*) FROM visit_notes n WHERE n.visit_id = v.id AND n.kind = 'unusual')"
)


async def visits_of_day(
    conn: Conn, unit_ids: Sequence[int] | None, since: str, until: str, limit: int
) -> list[VisitLine]:
    """The day's planned visits of these units' clients (None: every unit)
    with their check-in if any, then visits checked in without a plan."""
    ids = list(unit_ids or ())
    within = "" if unit_ids is None else f" AND c.unit_id IN ({_marks(ids)})"
    planned = await _all(
        conn,
        "SELECT r.starts_at, r.ends_at, r.state, c.number, c.name, c.unit_id, w.name,"
        f"{_VISIT_TAIL} FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " LEFT JOIN staff w ON w.id = r.worker_id LEFT JOIN visits v ON v.request_id = r.id"
        " WHERE r.starts_at >= ? AND r.starts_at < ?"
        f" AND r.state IN ('assigned', 'accepted', 'visited'){within}"
        " ORDER BY r.starts_at LIMIT ?",
        (since, until, *ids, limit),
    )
    unplanned = await _all(
        conn,
        "SELECT NULL, NULL, v.state, c.number, c.name, c.unit_id, w.name,"
        f"{_VISIT_TAIL} FROM visits v JOIN clients c ON c.id = v.client_id"
        " JOIN staff w ON w.id = v.worker_id"
        f" WHERE v.request_id IS NULL AND v.checkin_at >= ? AND v.checkin_at < ?{within}"
        " ORDER BY v.checkin_at LIMIT ?",
        (since, until, *ids, limit),
    )
    return [
        VisitLine(
            r[0],
            r[1],
            str(r[2]),
            str(r[3]),
            str(r[4]),
            int(r[5]),
            r[6],
            r[7],
            r[8],
            bool(r[9]),
            int(r[10]),
        )
        for r in [*planned, *unplanned]
    ]


@dataclass(frozen=True, slots=True)
class DrillLine:
    id: int
    unit_id: int
    kind: str
    at: str
    organiser_id: int
    state: str
    participants: int | None
    minutes: int | None


async def drills_between(
    conn: Conn, unit_ids: Sequence[int] | None, since: str, until: str
) -> list[DrillLine]:
    """Drills planned or held in the span in these units (None: every unit), by time."""
    ids = list(unit_ids or ())
    within = "" if unit_ids is None else f" AND unit_id IN ({_marks(ids)})"
    rows = await _all(
        conn,
        "SELECT id, unit_id, kind, at, organiser_id, state, participants, minutes FROM drills"
        f" WHERE at >= ? AND at < ? AND state != 'cancelled'{within} ORDER BY at",
        (since, until, *ids),
    )
    return [
        DrillLine(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), r[6], r[7])
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class NoticeLine:
    id: int
    sender_id: int
    text: str
    confidential: bool
    created_at: str
    total: int
    read: int
    read_at: str | None = None  # for a notice someone received: when they read it


async def notices_sent(conn: Conn, sender_id: int, limit: int) -> list[NoticeLine]:
    rows = await _all(
        conn,
        "SELECT n.id, n.sender_id, n.text, n.confidential, n.created_at, COUNT(r.staff_id),"
        " COUNT(r.read_at) FROM notices n LEFT JOIN notice_recipients r ON r.notice_id = n.id"
        " WHERE n.sender_id = ? GROUP BY n.id ORDER BY n.id DESC LIMIT ?",
        (sender_id, limit),
    )
    return [
        NoticeLine(int(r[0]), int(r[1]), str(r[2]), bool(r[3]), str(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]


async def notices_received(conn: Conn, staff_id: int, limit: int) -> list[NoticeLine]:
    rows = await _all(
        conn,
        "SELECT n.id, n.sender_id, n.text, n.confidential, n.created_at, 1, r.read_at IS NOT NULL,"
        " r.read_at FROM notice_recipients r JOIN notices n ON n.id = r.notice_id"
        " WHERE r.staff_id = ? ORDER BY r.read_at IS NOT NULL, n.id DESC LIMIT ?",
        (staff_id, limit),
    )
    return [
        NoticeLine(
            int(r[0]), int(r[1]), str(r[2]), bool(r[3]), str(r[4]), int(r[5]), int(r[6]), r[7]
        )
        for r in rows
    ]


async def unread_names(conn: Conn, notice_ids: Sequence[int]) -> dict[int, list[str]]:
    """Who has not yet read each notice, by name."""
    ids = list(notice_ids)
    rows = await _all(
        conn,
        "SELECT r.notice_id, s.name FROM notice_recipients r JOIN staff s ON s.id = r.staff_id"
        f" WHERE r.notice_id IN ({_marks(ids)}) AND r.read_at IS NULL ORDER BY s.name",
        ids,
    )
    found: dict[int, list[str]] = {}
    for r in rows:
        found.setdefault(int(r[0]), []).append(str(r[1]))
    return found


# -- the hazard register ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HazardQuery:
    """Which hazards a register page shows. `scope_units` None: every unit;
    `person_id`: what they reported or must fix is in scope too; `own_only`:
    only that. The rest are the filters someone chose."""

    scope_units: tuple[int, ...] | None = None
    person_id: int | None = None
    own_only: bool = False
    units: tuple[int, ...] | None = None
    statuses: tuple[str, ...] | None = None
    severity: str | None = None
    category: str | None = None
    created_from: str | None = None
    created_before: str | None = None
    overdue_at: str | None = None
    responsible_ids: tuple[int, ...] | None = None
    search: tuple[str, ...] = ()
    sort: str = "new"


_ORDER = {
    "new": "h.id DESC",
    "old": "h.id",
    "deadline": "h.deadline_at, h.id",
    "severity": "h.severity = 'major' DESC, h.id DESC",
}


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _where(query: HazardQuery) -> tuple[str, list[object]]:
    parts: list[str] = []
    params: list[object] = []
    if query.own_only:
        parts.append("(h.reported_by = ? OR h.responsible_id = ?)")
        params += [query.person_id, query.person_id]
    elif query.scope_units is not None:  # else: every unit
        scope = list(query.scope_units)
        mine = " OR h.reported_by = ? OR h.responsible_id = ?" if query.person_id else ""
        parts.append(f"(h.unit_id IN ({_marks(scope)}){mine})")
        params += scope
        if query.person_id:
            params += [query.person_id, query.person_id]
    if query.units is not None:
        parts.append(f"h.unit_id IN ({_marks(query.units)})")
        params += query.units
    if query.statuses is not None:
        parts.append(f"h.status IN ({_marks(query.statuses)})")
        params += query.statuses
    if query.severity:
        parts.append("h.severity = ?")
        params.append(query.severity)
    if query.category:
        parts.append("h.category = ?")
        params.append(query.category)
    if query.created_from:
        parts.append("h.created_at >= ?")
        params.append(query.created_from)
    if query.created_before:
        parts.append("h.created_at < ?")
        params.append(query.created_before)
    if query.overdue_at:
        parts.append(f"h.status IN ({_marks(CHASED_STATES)}) AND h.deadline_at < ?")
        params += [*CHASED_STATES, query.overdue_at]
    if query.responsible_ids is not None:
        parts.append(f"h.responsible_id IN ({_marks(query.responsible_ids)})")
        params += query.responsible_ids
    long_terms = [term for term in query.search if len(term) >= TRIGRAM]
    if long_terms:
        parts.append("h.id IN (SELECT rowid FROM hazards_search WHERE hazards_search MATCH ?)")
        params.append(" AND ".join(_fts_phrase(term) for term in long_terms))
    for term in query.search:
        if len(term) < TRIGRAM:
            needle = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append(
                "(h.description LIKE ? ESCAPE '\\' OR COALESCE(h.place, '') LIKE ? ESCAPE '\\')"
            )
            params += [f"%{needle}%", f"%{needle}%"]
    return " AND ".join(parts) or "1 = 1", params


@dataclass(frozen=True, slots=True)
class HazardLine:
    id: int
    number: str
    unit_id: int
    category: str
    severity: str
    status: str
    description: str
    place: str
    deadline_at: str
    created_at: str
    reported_by: int
    responsible_id: int | None
    closed_at: str | None


_LINE = (
    "h.id, h.number, h.unit_id, h.category, h.severity, h.status, h.description, h.place,"
    " h.deadline_at, h.created_at, h.reported_by, h.responsible_id, h.closed_at"
)


def _line(r: Any) -> HazardLine:
    return HazardLine(
        id=int(r[0]),
        number=str(r[1] or f"#{r[0]}"),
        unit_id=int(r[2]),
        category=str(r[3]),
        severity=str(r[4]),
        status=str(r[5]),
        description=str(r[6]),
        place=str(r[7] or ""),
        deadline_at=str(r[8]),
        created_at=str(r[9]),
        reported_by=int(r[10]),
        responsible_id=int(r[11]) if r[11] is not None else None,
        closed_at=r[12],
    )


async def register(
    conn: Conn, query: HazardQuery, *, limit: int, offset: int
) -> tuple[list[HazardLine], int]:
    """One page of the register and how many hazards the whole view holds."""
    where, params = _where(query)
    rows = await _all(
        conn,
        f"SELECT {_LINE} FROM hazards h WHERE {where} ORDER BY {_ORDER[query.sort]}"
        " LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await _one(conn, f"SELECT COUNT(*) FROM hazards h WHERE {where}", params)
    return [_line(r) for r in rows], int(total[0])


@dataclass(frozen=True, slots=True)
class ExportLine:
    line: HazardLine
    measure: str
    funding: str
    interim_measures: str
    rectification: str
    accepted_by: int | None
    photos: tuple[str, ...]
    rectification_photos: tuple[str, ...]


async def register_export(conn: Conn, query: HazardQuery, limit: int) -> list[ExportLine]:
    """Every hazard of the view (up to `limit`), with what the spreadsheet shows besides."""
    where, params = _where(query)
    rows = await _all(
        conn,
        f"SELECT {_LINE}, h.measure, h.funding, h.interim_measures, h.rectification,"
        " h.accepted_by, h.photo, h.photos, h.rectification_photos FROM hazards h"
        f" WHERE {where} ORDER BY {_ORDER[query.sort]} LIMIT ?",
        (*params, limit),
    )
    return [
        ExportLine(
            line=_line(r),
            measure=str(r[13] or ""),
            funding=str(r[14] or ""),
            interim_measures=str(r[15] or ""),
            rectification=str(r[16] or ""),
            accepted_by=r[17],
            photos=_photos(r[19], r[18]),
            rectification_photos=_photos(r[20]),
        )
        for r in rows
    ]


def _photos(value: str | None, *single: str | None) -> tuple[str, ...]:
    found = [p for p in single if p]
    if value:
        found += [str(p) for p in json.loads(value)]
    return tuple(dict.fromkeys(found))


# -- one hazard ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HazardCard:
    line: HazardLine
    source: str
    lat: float | None
    lon: float | None
    measure: str
    funding: str | None
    assigned_by: int | None
    interim_measures: str
    proposed_deadline_at: str | None
    rectification: str
    accepted_by: int | None
    repeat_of: int | None
    failed_rectification: bool
    photos: tuple[str, ...]
    rectification_photos: tuple[str, ...]


async def hazard(conn: Conn, number: str) -> HazardCard | None:
    r = await _one(
        conn,
        f"SELECT {_LINE}, h.source, h.lat, h.lon, h.measure, h.funding, h.assigned_by,"
        " h.interim_measures, h.proposed_deadline_at, h.rectification, h.accepted_by,"
        " h.repeat_of, h.failed_rectification, h.photo, h.photos, h.rectification_photos"
        " FROM hazards h WHERE h.number = ?",
        (number.strip().upper(),),
    )
    if r is None:
        return None
    return HazardCard(
        line=_line(r),
        source=str(r[13]),
        lat=r[14],
        lon=r[15],
        measure=str(r[16] or ""),
        funding=r[17],
        assigned_by=r[18],
        interim_measures=str(r[19] or ""),
        proposed_deadline_at=r[20],
        rectification=str(r[21] or ""),
        accepted_by=r[22],
        repeat_of=r[23],
        failed_rectification=bool(r[24]),
        photos=_photos(r[26], r[25]),
        rectification_photos=_photos(r[27]),
    )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: str
    action: str
    actor: str | None
    detail: dict[str, Any] = field(default_factory=dict)


async def history(conn: Conn, hazard_id: int) -> list[HistoryEntry]:
    rows = await _all(
        conn,
        "SELECT a.at, a.action, s.name, a.detail FROM audit_log a"
        " LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = 'hazard' AND a.entity_id = ? ORDER BY a.id",
        (hazard_id,),
    )
    return [HistoryEntry(str(r[0]), str(r[1]), r[2], json.loads(r[3] or "{}")) for r in rows]


async def histories(conn: Conn, hazard_ids: Sequence[int]) -> dict[int, list[HistoryEntry]]:
    """The audit trails of many hazards at once (for an export), oldest first."""
    found: dict[int, list[HistoryEntry]] = {}
    ids = list(hazard_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await _all(
            conn,
            "SELECT a.entity_id, a.at, a.action, s.name FROM audit_log a"
            " LEFT JOIN staff s ON s.id = a.actor_id"
            f" WHERE a.entity = 'hazard' AND a.entity_id IN ({_marks(chunk)}) ORDER BY a.id",
            chunk,
        )
        for r in rows:
            found.setdefault(int(r[0]), []).append(HistoryEntry(str(r[1]), str(r[2]), r[3]))
    return found


@dataclass(frozen=True, slots=True)
class Order:
    number: str
    issued_at: str
    issued_by: int
    deadline_at: str
    requirement: str


async def orders(conn: Conn, hazard_id: int) -> list[Order]:
    rows = await _all(
        conn,
        "SELECT number, issued_at, issued_by, deadline_at, requirement FROM rectification_orders"
        " WHERE hazard_id = ? ORDER BY id",
        (hazard_id,),
    )
    return [Order(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]


# -- people and the audit log ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PersonLine:
    staff: Staff
    channels: tuple[str, ...]  # where they have signed in: telegram, wecom, console


async def people(
    conn: Conn, unit_ids: Sequence[int] | None, *, search: str, limit: int, offset: int
) -> tuple[list[PersonLine], int]:
    """People of these units (None: every unit), active first, by unit and name."""
    parts: list[str] = []
    params: list[object] = []
    if unit_ids is not None:
        ids = list(unit_ids)
        parts.append(f"s.unit_id IN ({_marks(ids)})")
        params += ids
    if search:
        needle = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(
            "(s.name LIKE ? ESCAPE '\\' OR s.phone LIKE ? ESCAPE '\\' OR s.employee_no = ?)"
        )
        params += [f"%{needle}%", f"%{needle}%", search]
    where = " AND ".join(parts) or "1 = 1"
    rows = await _all(
        conn,
        f"SELECT {_STAFF}, (SELECT GROUP_CONCAT(DISTINCT i.channel) FROM channel_identities i"
        f" WHERE i.staff_id = s.id) FROM staff s WHERE {where}"
        " ORDER BY s.active DESC, s.unit_id, s.name, s.id LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await _one(conn, f"SELECT COUNT(*) FROM staff s WHERE {where}", params)
    lines = [
        PersonLine(_staff(r), tuple(sorted(str(r[8]).split(","))) if r[8] else ()) for r in rows
    ]
    return lines, int(total[0])


@dataclass(frozen=True, slots=True)
class AuditLine:
    id: int
    at: str
    actor: str | None
    entity: str
    entity_id: int
    action: str
    detail: str


async def audit_log(
    conn: Conn, *, entity: str | None, entity_id: int | None, limit: int, offset: int
) -> list[AuditLine]:
    """The audit log newest first, optionally one entity kind (and one of them)."""
    parts: list[str] = []
    params: list[object] = []
    if entity:
        parts.append("a.entity = ?")
        params.append(entity)
        if entity_id is not None:
            parts.append("a.entity_id = ?")
            params.append(entity_id)
    where = " AND ".join(parts) or "1 = 1"
    rows = await _all(
        conn,
        "SELECT a.id, a.at, s.name, a.entity, a.entity_id, a.action, a.detail FROM audit_log a"
        f" LEFT JOIN staff s ON s.id = a.actor_id WHERE {where}"
        " ORDER BY a.id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [
        AuditLine(int(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]), str(r[5]), str(r[6] or ""))
        for r in rows
    ]


async def audit_entities(conn: Conn) -> list[str]:
    rows = await _all(conn, "SELECT DISTINCT entity FROM audit_log ORDER BY entity")
    return [str(r[0]) for r in rows]


async def hazard_numbers(conn: Conn, ids: Sequence[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await _all(
        conn, f"SELECT id, number FROM hazards WHERE id IN ({_marks(wanted)})", wanted
    )
    return {int(r[0]): str(r[1]) for r in rows}
