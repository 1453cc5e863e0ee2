"""Reminder rows: what is due when. A reminder is written in the transaction
that decides on it and marked done in the transaction that acts on it, so it
fires exactly once across crashes and restarts."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reminder:
    id: int
    kind: str
    due_at: str
    target: dict[str, Any]
    key: str


def schedule(
    conn: sqlite3.Connection,
    *,
    kind: str,
    due_at: str,
    target: dict[str, Any],
    key: str,
    now: str,
    revive: bool = False,
) -> bool:
    """Add a reminder; False if one with the same key exists (planning twice is
    harmless). With `revive`, a cancelled one with the key is pending again: a
    plan that was withdrawn (a unit's old shift times) and is wanted once more."""
    return _insert(conn, kind, due_at, target, key, now, revive).rowcount == 1


def plan(
    conn: sqlite3.Connection,
    *,
    kind: str,
    due_at: str,
    target: dict[str, Any],
    key: str,
    now: str,
    revive: bool = False,
) -> None:
    """schedule() for a caller that needs no answer: on PostgreSQL the insert
    then goes with the transaction's next round trip (or its COMMIT)."""
    _insert(conn, kind, due_at, target, key, now, revive)


def _insert(
    conn: sqlite3.Connection,
    kind: str,
    due_at: str,
    target: dict[str, Any],
    key: str,
    now: str,
    revive: bool,
) -> sqlite3.Cursor:
    conflict = (
        "DO UPDATE SET state = 'pending', due_at = excluded.due_at, target = excluded.target,"
        " created_at = excluded.created_at WHERE reminders.state = 'cancelled'"
        if revive
        else "DO NOTHING"
    )
    return conn.execute(
        "INSERT INTO reminders (kind, due_at, target, idempotency_key, created_at)"
        f" VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) {conflict}",
        (kind, due_at, json.dumps(target, ensure_ascii=False), key, now),
    )


def due(conn: sqlite3.Connection, now: str, limit: int) -> list[Reminder]:
    rows = conn.execute(
        "SELECT id, kind, due_at, target, idempotency_key FROM reminders"
        " WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
        (now, limit),
    ).fetchall()
    return [
        Reminder(
            row["id"], row["kind"], row["due_at"], json.loads(row["target"]), row["idempotency_key"]
        )
        for row in rows
    ]


def finish(conn: sqlite3.Connection, reminder_id: int, state: str, now: str, late: bool) -> None:
    conn.execute(
        "UPDATE reminders SET state = ?, fired_at = ?, late = ? WHERE id = ? AND state = 'pending'",
        (state, now, int(late), reminder_id),
    )


def cancel(conn: sqlite3.Connection, key_prefix: str) -> None:
    """Cancel pending reminders whose key starts with `key_prefix` (on PostgreSQL
    with the transaction's next round trip: nothing waits for how many)."""
    conn.execute(
        "UPDATE reminders SET state = 'cancelled' WHERE state = 'pending'"
        " AND idempotency_key >= ? AND idempotency_key < ?",
        (key_prefix, key_prefix + "\uffff"),
    )


def pending_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM reminders WHERE state = 'pending'").fetchone()[0])


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT state, COUNT(*) FROM reminders GROUP BY state").fetchall()
    return {row[0]: int(row[1]) for row in rows}
