"""One-time invitations: a code that binds whoever redeems it, once and before
it expires, to one member of staff."""

from __future__ import annotations

import sqlite3

from bot.store import audit


def create(conn: sqlite3.Connection, code: str, staff_id: int, now: str, expires_at: str) -> None:
    conn.execute(
        "INSERT INTO invites (code, staff_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (code, staff_id, now, expires_at),
    )
    audit.record(conn, at=now, actor_id=None, entity="staff", entity_id=staff_id, action="invited")


def redeem(conn: sqlite3.Connection, code: str, redeemer: str, now: str) -> int | None:
    """The staff id the code invites, marking it used; None if it is unknown,
    used, expired, or its person is no longer active."""
    row = conn.execute(
        "SELECT i.staff_id FROM invites i JOIN staff s ON s.id = i.staff_id"
        " WHERE i.code = ? AND i.used_at IS NULL AND i.expires_at > ? AND s.active = 1",
        (code, now),
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE invites SET used_at = ?, used_by = ? WHERE code = ?", (now, redeemer, code)
    )
    return int(row["staff_id"])
