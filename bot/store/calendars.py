"""Unit work calendars and personal leave, as stored."""

from __future__ import annotations

import sqlite3

from bot.store import people


def calendar_row(conn: sqlite3.Connection, unit_id: int) -> sqlite3.Row | None:
    """The calendar set on the unit or the nearest unit above it."""
    for unit in people.unit_chain(conn, unit_id):
        row: sqlite3.Row | None = conn.execute(
            "SELECT shift_starts, every_day, nudge_minutes, digest_minutes FROM unit_calendars"
            " WHERE unit_id = ?",
            (unit["id"],),
        ).fetchone()
        if row is not None:
            return row
    return None


def set_calendar(
    conn: sqlite3.Connection,
    unit_id: int,
    *,
    shift_starts: str,
    every_day: bool,
    nudge_minutes: int,
    digest_minutes: int,
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO unit_calendars (unit_id, shift_starts, every_day, nudge_minutes,"
        " digest_minutes, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO UPDATE"
        " SET shift_starts = excluded.shift_starts, every_day = excluded.every_day,"
        " nudge_minutes = excluded.nudge_minutes, digest_minutes = excluded.digest_minutes,"
        " updated_at = excluded.updated_at",
        (unit_id, shift_starts, int(every_day), nudge_minutes, digest_minutes, now),
    )


def staffed_units(conn: sqlite3.Connection) -> list[int]:
    """Units with at least one active member of staff of their own."""
    rows = conn.execute("SELECT DISTINCT unit_id FROM staff WHERE active = 1 ORDER BY unit_id")
    return [int(row[0]) for row in rows.fetchall()]


def set_leave(conn: sqlite3.Connection, staff_id: int, until_date: str, now: str) -> None:
    conn.execute(
        "INSERT INTO leave (staff_id, until_date, set_at) VALUES (?, ?, ?)"
        " ON CONFLICT (staff_id) DO UPDATE SET until_date = excluded.until_date,"
        " set_at = excluded.set_at",
        (staff_id, until_date, now),
    )


def end_leave(conn: sqlite3.Connection, staff_id: int) -> None:
    conn.execute("DELETE FROM leave WHERE staff_id = ?", (staff_id,))


def leave_until(conn: sqlite3.Connection, staff_id: int) -> str | None:
    row = conn.execute("SELECT until_date FROM leave WHERE staff_id = ?", (staff_id,)).fetchone()
    return row["until_date"] if row else None


def on_leave(conn: sqlite3.Connection, staff_ids: list[int], local_date: str) -> set[int]:
    if not staff_ids:
        return set()
    marks = ",".join("?" * len(staff_ids))
    rows = conn.execute(
        f"SELECT staff_id FROM leave WHERE until_date >= ? AND staff_id IN ({marks})",
        (local_date, *staff_ids),
    ).fetchall()
    return {int(row[0]) for row in rows}
