"""Conversation state, kept in the database so that a restart resumes every
person at the step they were at; and the record of inbound events already
processed, so that a redelivered event changes nothing."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Conversation:
    """Where one person is. `flow` is empty when they are in none; `version`
    only ever grows, so a button sent at an older version is known stale."""

    staff_id: int
    flow: str = ""
    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0


def claim_event(conn: sqlite3.Connection, channel: str, event_id: str, now: str) -> bool:
    """Record an inbound event; False if it was processed before."""
    cursor = conn.execute(
        "INSERT INTO processed_events (channel, event_id, processed_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (channel, event_id, now),
    )
    return cursor.rowcount == 1


def load(conn: sqlite3.Connection, staff_id: int) -> Conversation:
    row = conn.execute(
        "SELECT flow, step, data, version FROM conversations WHERE staff_id = ?", (staff_id,)
    ).fetchone()
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
