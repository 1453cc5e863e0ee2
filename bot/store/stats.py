"""The counts behind the weekly picture (bot/stats.py): pre-shift checks,
hazards, incidents, drills and visits of a set of units in a time span. Only
reads; every bound is a UTC ISO string except checklist local dates."""

from __future__ import annotations

import sqlite3

from bot.store.hazards import CHASED_STATES

_CHASED_MARKS = ",".join(f"'{state}'" for state in CHASED_STATES)


def _in(unit_ids: list[int]) -> str:
    return ",".join("?" * len(unit_ids)) or "NULL"


def all_units(conn: sqlite3.Connection) -> list[int]:
    return [int(row[0]) for row in conn.execute("SELECT id FROM units ORDER BY id").fetchall()]


def has_clients(conn: sqlite3.Connection, unit_ids: list[int]) -> bool:
    """Whether any of the units serves elder-care clients (home visits are theirs)."""
    row = conn.execute(
        f"SELECT 1 FROM clients WHERE active = 1 AND unit_id IN ({_in(unit_ids)}) LIMIT 1",
        unit_ids,
    ).fetchone()
    return row is not None


def active_staff(conn: sqlite3.Connection, unit_ids: list[int]) -> int:
    row = conn.execute(
        f"SELECT COUNT(*) FROM staff WHERE active = 1 AND unit_id IN ({_in(unit_ids)})", unit_ids
    ).fetchone()
    return int(row[0])


def checks_by_day(
    conn: sqlite3.Connection, unit_ids: list[int], checklist: str, first: str, last: str
) -> dict[str, int]:
    """People who completed `checklist`, per local date from `first` to `last` (inclusive)."""
    rows = conn.execute(
        "SELECT local_date, COUNT(DISTINCT staff_id) FROM checklist_runs"
        f" WHERE checklist = ? AND completed_at IS NOT NULL AND unit_id IN ({_in(unit_ids)})"
        " AND local_date BETWEEN ? AND ? GROUP BY local_date",
        (checklist, *unit_ids, first, last),
    ).fetchall()
    return {str(row[0]): int(row[1]) for row in rows}


def hazards_opened(conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str) -> int:
    return _count(conn, "hazards", "created_at", unit_ids, since, until)


def hazards_closed(conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str) -> int:
    return _count(conn, "hazards", "closed_at", unit_ids, since, until)


def hazards_overdue(conn: sqlite3.Connection, unit_ids: list[int], at: str) -> int:
    """Hazards past their deadline at `at` and not closed by then. Those open
    now count only while still waiting on someone (not on acceptance)."""
    row = conn.execute(
        f"SELECT COUNT(*) FROM hazards WHERE unit_id IN ({_in(unit_ids)})"
        " AND created_at < ? AND deadline_at < ?"
        f" AND (status IN ({_CHASED_MARKS}) OR (closed_at IS NOT NULL AND closed_at >= ?))",
        (*unit_ids, at, at, at),
    ).fetchone()
    return int(row[0])


def incidents(conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str) -> int:
    return _count(conn, "incidents", "occurred_at", unit_ids, since, until)


def drills_held(conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str) -> int:
    row = conn.execute(
        f"SELECT COUNT(*) FROM drills WHERE state = 'done' AND unit_id IN ({_in(unit_ids)})"
        " AND at >= ? AND at < ?",
        (*unit_ids, since, until),
    ).fetchone()
    return int(row[0])


def visits(
    conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str
) -> tuple[int, int]:
    """Visits checked in during the span, and how many of them had a
    check-in or check-out exception."""
    row = conn.execute(
        "SELECT COUNT(*), COUNT(CASE WHEN checkin_exception IS NOT NULL"
        " OR checkout_exception IS NOT NULL THEN 1 END) FROM visits"
        f" WHERE unit_id IN ({_in(unit_ids)}) AND checkin_at >= ? AND checkin_at < ?",
        (*unit_ids, since, until),
    ).fetchone()
    return int(row[0]), int(row[1])


def _count(
    conn: sqlite3.Connection, table: str, column: str, unit_ids: list[int], since: str, until: str
) -> int:
    row = conn.execute(
        f"SELECT COUNT(*) FROM {table} WHERE unit_id IN ({_in(unit_ids)})"
        f" AND {column} >= ? AND {column} < ?",
        (*unit_ids, since, until),
    ).fetchone()
    return int(row[0])
