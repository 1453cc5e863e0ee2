"""Duty occurrences and pauses, as stored."""

from __future__ import annotations

import sqlite3

from bot.store import audit, people


def occurrence(
    conn: sqlite3.Connection,
    *,
    duty: str,
    staff_id: int,
    period: str,
    starts_at: str,
    due_at: str,
) -> int | None:
    """Create the occurrence if it is new; its id, or None if it existed."""
    cursor = conn.execute(
        "INSERT INTO duty_occurrences (duty, staff_id, period, starts_at, due_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (duty, staff_id, period) DO NOTHING",
        (duty, staff_id, period, starts_at, due_at),
    )
    return int(cursor.lastrowid or 0) if cursor.rowcount else None


def get(conn: sqlite3.Connection, occurrence_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, duty, staff_id, period, starts_at, due_at, done_at FROM duty_occurrences"
        " WHERE id = ?",
        (occurrence_id,),
    ).fetchone()
    return row


def complete(conn: sqlite3.Connection, duty: str, staff_id: int, now: str) -> int | None:
    """Mark the person's open occurrence of a duty, current at `now`, done."""
    row = conn.execute(
        "SELECT id FROM duty_occurrences WHERE duty = ? AND staff_id = ? AND done_at IS NULL"
        " AND starts_at <= ? ORDER BY due_at LIMIT 1",
        (duty, staff_id, now),
    ).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE duty_occurrences SET done_at = ? WHERE id = ?", (now, row["id"]))
    audit.record(
        conn, at=now, actor_id=staff_id, entity="duty", entity_id=int(row["id"]), action="done"
    )
    return int(row["id"])


def mark_escalated(conn: sqlite3.Connection, occurrence_id: int, now: str) -> None:
    conn.execute("UPDATE duty_occurrences SET escalated_at = ? WHERE id = ?", (now, occurrence_id))
    audit.record(
        conn, at=now, actor_id=None, entity="duty", entity_id=occurrence_id, action="escalated"
    )


def pause(conn: sqlite3.Connection, unit_id: int, duty: str, staff_id: int, now: str) -> None:
    conn.execute(
        "INSERT INTO duty_pauses (unit_id, duty, paused_by, paused_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (unit_id, duty) DO NOTHING",
        (unit_id, duty, staff_id, now),
    )


def resume(conn: sqlite3.Connection, unit_id: int, duty: str) -> None:
    conn.execute("DELETE FROM duty_pauses WHERE unit_id = ? AND duty = ?", (unit_id, duty))


def paused(conn: sqlite3.Connection, unit_id: int, duty: str) -> bool:
    """Paused on the unit or any unit above it."""
    ids = [row["id"] for row in people.unit_chain(conn, unit_id)]
    marks = ",".join("?" * len(ids))
    row = conn.execute(
        f"SELECT 1 FROM duty_pauses WHERE duty = ? AND unit_id IN ({marks})", (duty, *ids)
    ).fetchone()
    return row is not None


def upcoming(conn: sqlite3.Connection, staff_ids: list[int], now: str) -> list[sqlite3.Row]:
    if not staff_ids:
        return []
    marks = ",".join("?" * len(staff_ids))
    return conn.execute(
        f"SELECT o.id, o.duty, o.staff_id, o.due_at, o.done_at, s.name FROM duty_occurrences o"
        f" JOIN staff s ON s.id = o.staff_id WHERE o.staff_id IN ({marks}) AND o.due_at >= ?"
        " ORDER BY o.due_at LIMIT 30",
        (*staff_ids, now),
    ).fetchall()


def set_setting(
    conn: sqlite3.Connection,
    unit_id: int,
    duty: str,
    *,
    cadence: str | None,
    owner_id: int | None,
    now: str,
) -> None:
    if cadence is None and owner_id is None:
        conn.execute("DELETE FROM duty_settings WHERE unit_id = ? AND duty = ?", (unit_id, duty))
        return
    conn.execute(
        "INSERT INTO duty_settings (unit_id, duty, cadence, owner_id, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (unit_id, duty) DO UPDATE SET"
        " cadence = excluded.cadence, owner_id = excluded.owner_id,"
        " updated_at = excluded.updated_at",
        (unit_id, duty, cadence, owner_id, now),
    )


def cadence_for(conn: sqlite3.Connection, unit_id: int, duty: str) -> str | None:
    """The cadence set on the unit or the nearest unit above it, if any."""
    for unit in people.unit_chain(conn, unit_id):
        row = conn.execute(
            "SELECT cadence FROM duty_settings WHERE unit_id = ? AND duty = ?"
            " AND cadence IS NOT NULL",
            (unit["id"], duty),
        ).fetchone()
        if row is not None:
            return str(row["cadence"])
    return None


def owner_overrides(conn: sqlite3.Connection, duty: str) -> dict[int, int]:
    """Units whose duty is owned by a named person instead: unit id -> staff id."""
    rows = conn.execute(
        "SELECT unit_id, owner_id FROM duty_settings WHERE duty = ? AND owner_id IS NOT NULL",
        (duty,),
    ).fetchall()
    return {int(row["unit_id"]): int(row["owner_id"]) for row in rows}
