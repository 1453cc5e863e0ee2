"""Reads of home visits for /visits: a worker's week, and a unit subtree's
week for its supervisors (counts, exceptions, the latest). Every query is
bounded by an indexed time range and a LIMIT, so a million stored visits cost
no more than a few hundred."""

from __future__ import annotations

import heapq
import sqlite3

_EXCEPTION = "(v.checkin_exception IS NOT NULL OR v.checkout_exception IS NOT NULL)"
_COLUMNS = (
    "v.id, v.state, v.checkin_at, v.checkout_at, v.checkin_exception, v.checkout_exception,"
    " c.name AS client, s.name AS worker"
)
_JOINS = " FROM visits v JOIN clients c ON c.id = v.client_id JOIN staff s ON s.id = v.worker_id"


def _marks(ids: list[int]) -> str:
    return ",".join("?" * len(ids)) or "NULL"


def for_worker(
    conn: sqlite3.Connection, worker_id: int, since: str, until: str, limit: int, offset: int
) -> list[sqlite3.Row]:
    """The worker's visits checked in during [since, until), latest first."""
    return conn.execute(
        f"SELECT {_COLUMNS}{_JOINS} WHERE v.worker_id = ? AND v.checkin_at >= ?"
        " AND v.checkin_at < ? ORDER BY v.checkin_at DESC, v.id DESC LIMIT ? OFFSET ?",
        (worker_id, since, until, limit, offset),
    ).fetchall()


def counts(
    conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str
) -> tuple[int, int]:
    """Visits done, and visits with a location exception, in these units
    during [since, until): read from the `visits_unit` index alone."""
    row = conn.execute(
        "SELECT COUNT(CASE WHEN v.state = 'done' THEN 1 END),"
        " COUNT(CASE WHEN " + _EXCEPTION + " THEN 1 END)"
        f" FROM visits v WHERE v.unit_id IN ({_marks(unit_ids)})"
        " AND v.checkin_at >= ? AND v.checkin_at < ?",
        (*unit_ids, since, until),
    ).fetchone()
    return int(row[0]), int(row[1])


def count_unusual(conn: sqlite3.Connection, unit_ids: list[int], since: str, until: str) -> int:
    """Unusual reports made during [since, until) on visits to these units' clients."""
    # CROSS JOIN keeps SQLite reading the few unusual notes first (its
    # planner would otherwise walk every visit of the week without statistics).
    row = conn.execute(
        "SELECT COUNT(*) FROM visit_notes n CROSS JOIN visits v"
        " WHERE v.id = n.visit_id AND n.kind = 'unusual' AND n.at >= ? AND n.at < ?"
        f" AND v.unit_id IN ({_marks(unit_ids)})",
        (since, until, *unit_ids),
    ).fetchone()
    return int(row[0])


def newest_ids(
    conn: sqlite3.Connection,
    unit_ids: list[int],
    since: str,
    until: str | None,
    limit: int,
    offset: int,
    where: str = "1 = 1",
) -> list[int]:
    """The ids of the units' visits checked in during [since, until) that
    meet `where`, latest first. Each unit is read newest first along its
    index and the lists merged, so no week is ever sorted whole."""
    wanted = limit + offset
    bound = " AND v.checkin_at < ?" if until is not None else ""
    per_unit = [
        conn.execute(
            "SELECT v.checkin_at, v.id FROM visits v"
            f" WHERE v.unit_id = ? AND v.checkin_at >= ?{bound} AND {where}"
            " ORDER BY v.checkin_at DESC, v.id DESC LIMIT ?",
            (unit_id, since, *([until] if until is not None else []), wanted),
        ).fetchall()
        for unit_id in unit_ids
    ]
    merged = heapq.merge(*([(row[0], row[1]) for row in rows] for rows in per_unit), reverse=True)
    return [int(visit_id) for _, visit_id in list(merged)[offset:wanted]]


def _shown(conn: sqlite3.Connection, ids: list[int]) -> list[sqlite3.Row]:
    if not ids:
        return []
    return conn.execute(
        f"SELECT {_COLUMNS}{_JOINS} WHERE v.id IN ({_marks(ids)})"
        " ORDER BY v.checkin_at DESC, v.id DESC",
        ids,
    ).fetchall()


def exceptions(
    conn: sqlite3.Connection,
    unit_ids: list[int],
    since: str,
    until: str,
    limit: int,
    offset: int,
) -> list[sqlite3.Row]:
    """Visits with a location exception in these units during [since, until), latest first."""
    return _shown(conn, newest_ids(conn, unit_ids, since, until, limit, offset, _EXCEPTION))


def latest(
    conn: sqlite3.Connection,
    unit_ids: list[int],
    since: str,
    until: str,
    limit: int,
    offset: int,
) -> list[sqlite3.Row]:
    """The units' visits during [since, until), latest first."""
    return _shown(conn, newest_ids(conn, unit_ids, since, until, limit, offset))
