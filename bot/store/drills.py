"""The drill register: planned, then recorded as done. Every change is audited."""

from __future__ import annotations

import sqlite3

from bot.store import audit


def plan(
    conn: sqlite3.Connection, *, unit_id: int, kind: str, at: str, organiser_id: int, now: str
) -> int:
    cursor = conn.execute(
        "INSERT INTO drills (unit_id, kind, at, organiser_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (unit_id, kind, at, organiser_id, now),
    )
    drill_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=organiser_id,
        entity="drill",
        entity_id=drill_id,
        action="planned",
        detail={"unit": unit_id, "kind": kind, "at": at},
    )
    return drill_id


def enter_held(
    conn: sqlite3.Connection, *, unit_id: int, kind: str, at: str, organiser_id: int, now: str
) -> int:
    """A drill that was held without a plan, entered when it is recorded (so
    that it counts for the year like any other): it is recorded next, in the
    same transaction."""
    cursor = conn.execute(
        "INSERT INTO drills (unit_id, kind, at, organiser_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (unit_id, kind, at, organiser_id, now),
    )
    drill_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=organiser_id,
        entity="drill",
        entity_id=drill_id,
        action="entered",
        detail={"unit": unit_id, "kind": kind, "at": at, "unplanned": True},
    )
    return drill_id


def get(conn: sqlite3.Connection, drill_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, unit_id, kind, at, organiser_id, state FROM drills WHERE id = ?", (drill_id,)
    ).fetchone()
    return row


def awaiting_record(conn: sqlite3.Connection, organiser_id: int, now: str) -> list[sqlite3.Row]:
    """The organiser's planned drills whose time has come."""
    return conn.execute(
        "SELECT id, unit_id, kind, at FROM drills WHERE organiser_id = ? AND state = 'planned'"
        " AND at <= ? ORDER BY at",
        (organiser_id, now),
    ).fetchall()


def record(
    conn: sqlite3.Connection,
    drill_id: int,
    *,
    participants: int,
    minutes: int,
    problems: str | None,
    photo: str | None,
    hazard_id: int | None,
    actor_id: int,
    now: str,
) -> None:
    conn.execute(
        "UPDATE drills SET state = 'done', participants = ?, minutes = ?, problems = ?, photo = ?,"
        " hazard_id = ?, recorded_at = ? WHERE id = ? AND state = 'planned'",
        (participants, minutes, problems, photo, hazard_id, now, drill_id),
    )
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="drill",
        entity_id=drill_id,
        action="recorded",
        detail={"participants": participants, "minutes": minutes, "hazard": hazard_id},
    )


def count_for_year(conn: sqlite3.Connection, unit_ids: list[int], year: int, done: bool) -> int:
    """Drills of the year in any of these units (planned or done, or done only)."""
    if not unit_ids:
        return 0
    marks = ",".join("?" * len(unit_ids))
    states = ("done",) if done else ("planned", "done")
    state_marks = ",".join("?" * len(states))
    row = conn.execute(
        f"SELECT COUNT(*) FROM drills WHERE unit_id IN ({marks}) AND state IN ({state_marks})"
        " AND at >= ? AND at < ?",
        (*unit_ids, *states, f"{year}-01-01", f"{year + 1}-01-01"),
    ).fetchone()
    return int(row[0])


def units(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT id, path FROM units ORDER BY path LIMIT 40").fetchall()


def upcoming_in(conn: sqlite3.Connection, unit_id: int, now: str) -> list[sqlite3.Row]:
    """Planned drills whose area touches the unit: above it or within its subtree."""
    return conn.execute(
        "WITH RECURSIVE below(id) AS (SELECT ? UNION ALL"
        " SELECT u.id FROM units u JOIN below b ON u.parent_id = b.id),"
        " above(id, parent_id) AS (SELECT id, parent_id FROM units WHERE id = ? UNION ALL"
        " SELECT u.id, u.parent_id FROM units u JOIN above a ON u.id = a.parent_id)"
        " SELECT d.id, d.kind, d.at, d.unit_id FROM drills d WHERE d.state = 'planned'"
        " AND d.at >= ? AND (d.unit_id IN (SELECT id FROM below) OR d.unit_id IN"
        " (SELECT id FROM above)) ORDER BY d.at LIMIT 10",
        (unit_id, unit_id, now),
    ).fetchall()
