"""The hazard register (隐患台账). Every change of a hazard is audited."""

from __future__ import annotations

import sqlite3

from bot.hazard_rules import hazard_number
from bot.store import audit


def create(
    conn: sqlite3.Connection,
    *,
    unit_id: int,
    reported_by: int,
    source: str,
    description: str,
    photo: str | None,
    severity: str,
    deadline_at: str,
    now: str,
    year: int | None = None,
) -> int:
    """Record a hazard and give it the next register number of its (local) year."""
    number = hazard_number(year or int(now[:4]), next_number(conn, "YH", year or int(now[:4])))
    cursor = conn.execute(
        "INSERT INTO hazards (unit_id, reported_by, source, description, photo, severity, status,"
        " deadline_at, created_at, number) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
        (unit_id, reported_by, source, description, photo, severity, deadline_at, now, number),
    )
    hazard_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=reported_by,
        entity="hazard",
        entity_id=hazard_id,
        action="reported",
        detail={
            "number": number,
            "source": source,
            "severity": severity,
            "deadline_at": deadline_at,
        },
    )
    return hazard_id


def next_number(conn: sqlite3.Connection, register: str, year: int) -> int:
    """The next sequence number of a register in a year (1, 2, ...), taken in
    the caller's transaction, so numbers never repeat and never skip."""
    row = conn.execute(
        "INSERT INTO register_counters (register, year, last) VALUES (?, ?, 1)"
        " ON CONFLICT (register, year) DO UPDATE SET last = last + 1 RETURNING last",
        (register, year),
    ).fetchone()
    return int(row[0])


def numbers(conn: sqlite3.Connection, hazard_ids: list[int]) -> dict[int, str]:
    if not hazard_ids:
        return {}
    marks = ",".join("?" * len(hazard_ids))
    rows = conn.execute(
        f"SELECT id, number FROM hazards WHERE id IN ({marks})", hazard_ids
    ).fetchall()
    return {int(row["id"]): str(row["number"]) for row in rows}


def get(conn: sqlite3.Connection, hazard_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, number, unit_id, reported_by, responsible_id, description, severity, status,"
        " deadline_at FROM hazards WHERE id = ?",
        (hazard_id,),
    ).fetchone()
    return row
