"""Notices and who has read them. A notice's recipients are fixed when it is
sent; reading is recorded once, with its time."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bot.model import Role, Staff
from bot.store import audit, people


def create(
    conn: sqlite3.Connection,
    *,
    sender_id: int,
    text: str,
    attachment: str | None,
    audience: dict[str, Any],
    confidential: bool,
    recipients: list[int],
    now: str,
) -> int:
    cursor = conn.execute(
        "INSERT INTO notices (sender_id, text, attachment, audience, confidential, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            sender_id,
            text,
            attachment,
            json.dumps(audience, ensure_ascii=False),
            int(confidential),
            now,
        ),
    )
    notice_id = int(cursor.lastrowid or 0)
    conn.executemany(
        "INSERT INTO notice_recipients (notice_id, staff_id) VALUES (?, ?)",
        [(notice_id, staff_id) for staff_id in recipients],
    )
    audit.record(
        conn,
        at=now,
        actor_id=sender_id,
        entity="notice",
        entity_id=notice_id,
        action="sent",
        detail={"recipients": len(recipients), "confidential": confidential},
    )
    return notice_id


def mark_read(conn: sqlite3.Connection, notice_id: int, staff_id: int, now: str) -> bool | None:
    """True if newly read, False if read before, None if not a recipient."""
    row = conn.execute(
        "SELECT read_at FROM notice_recipients WHERE notice_id = ? AND staff_id = ?",
        (notice_id, staff_id),
    ).fetchone()
    if row is None:
        return None
    if row["read_at"]:
        return False
    conn.execute(
        "UPDATE notice_recipients SET read_at = ? WHERE notice_id = ? AND staff_id = ?",
        (now, notice_id, staff_id),
    )
    return True


def get(conn: sqlite3.Connection, notice_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, sender_id, text, attachment, confidential, created_at FROM notices"
        " WHERE id = ?",
        (notice_id,),
    ).fetchone()
    return row


def unread(conn: sqlite3.Connection, notice_id: int) -> list[Staff]:
    rows = conn.execute(
        "SELECT staff_id FROM notice_recipients WHERE notice_id = ? AND read_at IS NULL",
        (notice_id,),
    ).fetchall()
    found = (people.staff_by_id(conn, int(row[0])) for row in rows)
    return [person for person in found if person is not None and person.active]


def sent_by(conn: sqlite3.Connection, sender_id: int, limit: int = 5) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT n.id, n.text, n.created_at, COUNT(r.staff_id) AS total,"
        " COUNT(r.read_at) AS read FROM notices n JOIN notice_recipients r ON r.notice_id = n.id"
        " WHERE n.sender_id = ? GROUP BY n.id ORDER BY n.id DESC LIMIT ?",
        (sender_id, limit),
    ).fetchall()


def subtree_staff(conn: sqlite3.Connection, unit_id: int) -> list[int]:
    """Active staff of a unit and every unit below it."""
    rows = conn.execute(
        "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL"
        " SELECT u.id FROM units u JOIN tree t ON u.parent_id = t.id)"
        " SELECT s.id FROM staff s JOIN tree t ON s.unit_id = t.id WHERE s.active = 1"
        " ORDER BY s.id",
        (unit_id,),
    ).fetchall()
    return [int(row[0]) for row in rows]


def role_staff(conn: sqlite3.Connection, role: Role) -> list[int]:
    return [person.id for person in people.with_role(conn, role)]


def everyone(conn: sqlite3.Connection) -> list[int]:
    return [
        int(row[0]) for row in conn.execute("SELECT id FROM staff WHERE active = 1 ORDER BY id")
    ]
