"""The hazard register (隐患台账). Every change of a hazard is audited."""

from __future__ import annotations

import sqlite3

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
) -> int:
    cursor = conn.execute(
        "INSERT INTO hazards (unit_id, reported_by, source, description, photo, severity, status,"
        " deadline_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
        (unit_id, reported_by, source, description, photo, severity, deadline_at, now),
    )
    hazard_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=reported_by,
        entity="hazard",
        entity_id=hazard_id,
        action="reported",
        detail={"source": source, "severity": severity, "deadline_at": deadline_at},
    )
    return hazard_id


def get(conn: sqlite3.Connection, hazard_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, unit_id, reported_by, responsible_id, description, severity, status,"
        " deadline_at FROM hazards WHERE id = ?",
        (hazard_id,),
    ).fetchone()
    return row
