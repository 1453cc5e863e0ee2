"""What the desk's pages read, on the read connections (bot/store/reader.py):
the unit tree and people, and today's numbers for every unit at once. Only
SELECTs, typed records out; the hazard register is bot/store/hazard_reads.py,
the other registers bot/store/record_reads.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.model import Role, Staff
from bot.store import dialect
from bot.store.hazards import CHASED_STATES, OPEN_STATES

Conn = aiosqlite.Connection


def marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"


async def fetch_all(conn: Conn, sql: str, params: Sequence[object] = ()) -> list[Any]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def fetch_one(conn: Conn, sql: str, params: Sequence[object] = ()) -> Any:
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


async def units(conn: Conn) -> Sequence[Unit]:
    """Every unit: from the process's copy where the engine keeps one and it is
    the version this read sees (dialect.unit_tree_async), else read."""
    kept = await dialect.unit_tree_async(conn, _load_units)
    if kept is not None:
        return kept
    rows = await fetch_all(conn, "SELECT id, parent_id, name, path, timezone FROM units")
    return [Unit(int(r[0]), r[1], str(r[2]), str(r[3]), r[4]) for r in rows]


async def _load_units(conn: Conn) -> tuple[int, tuple[Unit, ...]]:
    """Every unit and the version of the tree they are (PostgreSQL's
    unit_tree_version, migration 0021), in one statement."""
    rows = await fetch_all(
        conn, dialect.units_at_tree_version("u.id, u.parent_id, u.name, u.path, u.timezone")
    )
    found = tuple(
        Unit(int(r[0]), r[1], str(r[2]), str(r[3]), r[4]) for r in rows if r[0] is not None
    )
    return int(rows[0][5]), found


STAFF_COLUMNS = "s.id, s.name, s.phone, s.employee_no, s.unit_id, s.roles, s.language, s.active"


def staff_from_row(row: Any) -> Staff:
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
    row = await fetch_one(conn, f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.id = ?", (staff_id,))
    return staff_from_row(row) if row else None


async def names(conn: Conn, ids: Sequence[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = await fetch_all(
        conn, f"SELECT id, name FROM staff WHERE id IN ({marks(wanted)})", wanted
    )
    return {int(r[0]): str(r[1]) for r in rows}


async def staff_named(conn: Conn, text: str, limit: int = 50) -> list[int]:
    """People whose name contains `text` (or whose phone or employee number it is)."""
    needle = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = await fetch_all(
        conn,
        "SELECT id FROM staff WHERE name LIKE ? ESCAPE '\\' OR phone = ? OR employee_no = ?"
        " ORDER BY id LIMIT ?",
        (f"%{needle}%", text.strip(), text.strip(), limit),
    )
    return [int(r[0]) for r in rows]


async def members(conn: Conn, unit_ids: Sequence[int]) -> list[Staff]:
    """Active staff of these units (their own members), by unit then name."""
    ids = list(unit_ids)
    rows = await fetch_all(
        conn,
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.active = 1 AND s.unit_id IN ({marks(ids)})"
        " ORDER BY s.unit_id, s.name, s.id",
        ids,
    )
    return [staff_from_row(r) for r in rows]


# -- today --------------------------------------------------------------------------
async def active_per_unit(conn: Conn) -> dict[int, int]:
    rows = await fetch_all(
        conn, "SELECT unit_id, COUNT(*) FROM staff WHERE active = 1 GROUP BY unit_id"
    )
    return {int(r[0]): int(r[1]) for r in rows}


async def on_leave_per_unit(conn: Conn, local_date: str) -> dict[int, int]:
    rows = await fetch_all(
        conn,
        "SELECT s.unit_id, COUNT(*) FROM leave l CROSS JOIN staff s ON s.id = l.staff_id"
        " WHERE s.active = 1 AND l.until_date >= ? GROUP BY s.unit_id",
        (local_date,),
    )
    return {int(r[0]): int(r[1]) for r in rows}


async def on_leave(conn: Conn, staff_ids: Sequence[int], local_date: str) -> set[int]:
    ids = list(staff_ids)
    rows = await fetch_all(
        conn,
        f"SELECT staff_id FROM leave WHERE staff_id IN ({marks(ids)}) AND until_date >= ?",
        (*ids, local_date),
    )
    return {int(r[0]) for r in rows}


async def checks_done_per_unit(
    conn: Conn, checklist: str, local_dates: Sequence[str]
) -> dict[tuple[int, str], int]:
    """People who completed `checklist`, per (unit, local date)."""
    dates = list(local_dates)
    rows = await fetch_all(
        conn,
        "SELECT unit_id, local_date, COUNT(DISTINCT staff_id) FROM checklist_runs"
        f" WHERE checklist = ? AND local_date IN ({marks(dates)}) AND completed_at IS NOT NULL"
        " GROUP BY unit_id, local_date",
        (checklist, *dates),
    )
    return {(int(r[0]), str(r[1])): int(r[2]) for r in rows}


async def checked(
    conn: Conn, checklist: str, staff_ids: Sequence[int], local_date: str
) -> set[int]:
    ids = list(staff_ids)
    rows = await fetch_all(
        conn,
        f"SELECT DISTINCT staff_id FROM checklist_runs WHERE staff_id IN ({marks(ids)})"
        " AND checklist = ? AND local_date = ? AND completed_at IS NOT NULL",
        (*ids, checklist, local_date),
    )
    return {int(r[0]) for r in rows}


async def calendars(conn: Conn) -> dict[int, tuple[str, bool]]:
    """Each unit's own calendar row: shift starts ('08:00,20:00') and every_day."""
    rows = await fetch_all(conn, "SELECT unit_id, shift_starts, every_day FROM unit_calendars")
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
    rows = await fetch_all(
        conn,
        "SELECT status, unit_id, severity, COUNT(*), COUNT(CASE WHEN deadline_at < ? THEN 1 END)"
        " FROM hazards"
        f" WHERE status IN ({marks(OPEN_STATES)}) GROUP BY status, unit_id, severity",
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
    within = "" if unit_ids is None else f" AND unit_id IN ({marks(ids)})"
    rows = await fetch_all(
        conn,
        "SELECT id, number, unit_id, kind, occurred_at, report_due_at FROM incidents"
        f" WHERE report_submitted_at IS NULL{within} ORDER BY report_due_at LIMIT ?",
        (*ids, limit),
    )
    return [RunningReport(int(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4], r[5]) for r in rows]


async def reports_per_unit(conn: Conn, now: str) -> dict[int, tuple[int, int]]:
    """Per unit: incidents whose report is not yet submitted, and how many of them are late."""
    rows = await fetch_all(
        conn,
        "SELECT unit_id, COUNT(*), COUNT(CASE WHEN report_due_at < ? THEN 1 END)"
        " FROM incidents"
        " WHERE report_submitted_at IS NULL GROUP BY unit_id",
        (now,),
    )
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


async def drills_done_per_unit(conn: Conn, since: str, until: str) -> dict[int, int]:
    rows = await fetch_all(
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
    planned = await fetch_all(
        conn,
        "SELECT c.unit_id, COUNT(*), COUNT(CASE WHEN r.state IN ('assigned', 'accepted')"
        " AND r.starts_at < ? THEN 1 END)"
        " FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " WHERE r.starts_at >= ? AND r.starts_at < ?"
        " AND r.state IN ('assigned', 'accepted', 'visited') GROUP BY c.unit_id",
        (now, since, until),
    )
    for r in planned:
        day = found.setdefault(int(r[0]), VisitDay())
        day.planned, day.late = int(r[1]), int(r[2])
    done = await fetch_all(
        conn,
        "SELECT unit_id, COUNT(CASE WHEN state = 'done' THEN 1 END), COUNT(CASE WHEN"
        " checkin_exception IS NOT NULL OR checkout_exception IS NOT NULL THEN 1 END) FROM visits"
        " WHERE checkin_at >= ? AND checkin_at < ? GROUP BY unit_id",
        (since, until),
    )
    for r in done:
        day = found.setdefault(int(r[0]), VisitDay())
        day.done, day.exceptions = int(r[1]), int(r[2])
    unusual = await fetch_all(
        conn,
        "SELECT v.unit_id, COUNT(*) FROM visit_notes n JOIN visits v ON v.id = n.visit_id"
        " WHERE n.kind = 'unusual' AND n.at >= ? AND n.at < ? GROUP BY v.unit_id",
        (since, until),
    )
    for r in unusual:
        found.setdefault(int(r[0]), VisitDay()).unusual = int(r[1])
    return found
