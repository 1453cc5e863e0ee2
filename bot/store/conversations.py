"""Conversation state, kept in the database so that a restart resumes every
person at the step they were at; and the record of inbound events already
processed, so that a redelivered event changes nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.store import dialect, people


@dataclass(slots=True)
class Conversation:
    """Where one person is. `flow` is empty when they are in none; `version`
    only ever grows, so a button sent at an older version is known stale."""

    staff_id: int
    flow: str = ""
    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0


def lock_person(conn: sqlite3.Connection, channel: str, user_id: str) -> None:
    """Serialise one person's events across processes: taken first in the event's
    transaction, before anything is read, and held until it ends. SQLite needs
    nothing (its one writer runs one transaction at a time); on PostgreSQL it is
    an advisory lock on a key from (channel, user id). Two people whose keys
    collide (one in 2**63) are merely serialised too."""
    lock = getattr(conn, "lock", None)
    if lock is not None:
        lock(person_key(channel, user_id))


def person_key(channel: str, user_id: str) -> int:
    digest = hashlib.blake2b(f"person:{channel}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def claim_event(
    conn: sqlite3.Connection, channel: str, event_id: str, now: str
) -> Callable[[], bool]:
    """Record an inbound event. The answer, asked when needed, is False if it was
    processed before: asked after the next read, the claim goes with that read
    in one round trip on PostgreSQL (bot/store/postgres.py)."""
    cursor = conn.execute(
        "INSERT INTO processed_events (channel, event_id, processed_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (channel, event_id, now),
    )
    return lambda: cursor.rowcount == 1


def load(conn: sqlite3.Connection, staff_id: int) -> Conversation:
    row = conn.execute(
        "SELECT flow, step, data, version FROM conversations WHERE staff_id = ?", (staff_id,)
    ).fetchone()
    return _conversation(staff_id, row)


def arrive(
    conn: sqlite3.Connection, channel: str, user_id: str
) -> tuple[people.Identity, Conversation] | None:
    """people.identify and load in one query: who is behind a channel identity
    and where their conversation stands (an event's first read; on PostgreSQL
    a round trip saved on every event)."""
    row = conn.execute(
        f"SELECT {people.STAFF_COLUMNS}, i.last_seen_at, i.reachable,"
        " c.staff_id AS talking, c.flow, c.step, c.data, c.version FROM channel_identities i"
        " JOIN staff s ON s.id = i.staff_id LEFT JOIN conversations c ON c.staff_id = s.id"
        " WHERE i.channel = ? AND i.user_id = ?",
        (channel, user_id),
    ).fetchone()
    if row is None:
        return None
    staff = people.staff_from_row(row)
    dialect.keep(conn, "staff", staff.id, staff)
    found = people.Identity(staff, row["last_seen_at"], bool(row["reachable"]))
    return found, _conversation(staff.id, row if row["talking"] is not None else None)


def _conversation(staff_id: int, row: sqlite3.Row | None) -> Conversation:
    if row is None:
        return Conversation(staff_id=staff_id)
    return Conversation(
        staff_id=staff_id,
        flow=row["flow"],
        step=row["step"],
        data=json.loads(row["data"]),
        version=row["version"],
    )


def save(conn: sqlite3.Connection, conversation: Conversation, now: str) -> None:
    conn.execute(
        "INSERT INTO conversations (staff_id, flow, step, data, version, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (staff_id) DO UPDATE SET flow = excluded.flow,"
        " step = excluded.step, data = excluded.data, version = excluded.version,"
        " updated_at = excluded.updated_at",
        (
            conversation.staff_id,
            conversation.flow,
            conversation.step,
            json.dumps(conversation.data, ensure_ascii=False),
            conversation.version,
            now,
        ),
    )
