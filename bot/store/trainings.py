"""The training register: who was trained in what, and when."""

from __future__ import annotations

import sqlite3

from bot.store import audit


def record(
    conn: sqlite3.Connection, staff_ids: list[int], kind: str, held_on: str, by: int, now: str
) -> None:
    conn.executemany(
        "INSERT INTO trainings (staff_id, kind, held_on, recorded_by, recorded_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(staff_id, kind, held_on, by, now) for staff_id in staff_ids],
    )
    for staff_id in staff_ids:
        audit.record(
            conn,
            at=now,
            actor_id=by,
            entity="staff",
            entity_id=staff_id,
            action="trained",
            detail={"kind": kind, "held_on": held_on},
        )


def last_held(conn: sqlite3.Connection, kind: str) -> dict[int, str | None]:
    """Every active member of staff and the date of their latest training of `kind`."""
    rows = conn.execute(
        "SELECT s.id, MAX(t.held_on) FROM staff s LEFT JOIN trainings t"
        " ON t.staff_id = s.id AND t.kind = ? WHERE s.active = 1 GROUP BY s.id",
        (kind,),
    ).fetchall()
    return {int(row[0]): row[1] for row in rows}


def latest(conn: sqlite3.Connection, staff_id: int, kind: str) -> str | None:
    row = conn.execute(
        "SELECT MAX(held_on) FROM trainings WHERE staff_id = ? AND kind = ?", (staff_id, kind)
    ).fetchone()
    return row[0] if row else None
