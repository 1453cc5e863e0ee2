"""The outbox: every message a person must receive is a row here first. Rows
are written in the transaction that decided to send them and drained by the
sender, which records each attempt. A row is 'pending' (only these are
claimed), 'sending', 'sent', 'failed', or 'cancelled' (its recipient left)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.model import Button, Outbound


@dataclass(frozen=True, slots=True)
class NewMessage:
    staff_id: int | None
    channel: str | None
    address: str | None
    text: str
    idempotency_key: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[str, ...] = ()
    replaces_id: int | None = None


def enqueue(conn: sqlite3.Connection, message: NewMessage, now: str) -> int | None:
    """Queue a message; a second row with the same idempotency key is ignored
    (None is returned), so a retried decision never sends twice."""
    buttons = (
        json.dumps(
            [[[b.label, b.action] for b in row] for row in message.buttons], ensure_ascii=False
        )
        if message.buttons
        else None
    )
    attachments = json.dumps(list(message.attachments)) if message.attachments else None
    cursor = conn.execute(
        "INSERT INTO outbox (staff_id, channel, address, text, buttons, attachments,"
        " idempotency_key, replaces_id, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
        (
            message.staff_id,
            message.channel,
            message.address,
            message.text,
            buttons,
            attachments,
            message.idempotency_key,
            message.replaces_id,
            now,
            now,
        ),
    )
    return cursor.lastrowid if cursor.rowcount else None


def _outbound(row: sqlite3.Row) -> Outbound:
    buttons: tuple[tuple[Button, ...], ...] = ()
    if row["buttons"]:
        buttons = tuple(
            tuple(Button(label, action) for label, action in r) for r in json.loads(row["buttons"])
        )
    return Outbound(
        id=row["id"],
        staff_id=row["staff_id"],
        channel=row["channel"],
        address=row["address"],
        text=row["text"],
        buttons=buttons,
        attachments=tuple(json.loads(row["attachments"])) if row["attachments"] else (),
        idempotency_key=row["idempotency_key"],
        replaces_id=row["replaces_id"],
        attempts=row["attempts"],
    )


_COLUMNS = (
    "id, staff_id, channel, address, text, buttons, attachments, idempotency_key,"
    " replaces_id, attempts"
)


def claim_due(
    conn: sqlite3.Connection, channel: str, now: str, limit: int, address: str | None = None
) -> list[Outbound]:
    """Take up to `limit` due rows of one channel (optionally one address) and
    mark them 'sending', oldest first, inside the caller's transaction."""
    # Skip rows queued behind an earlier row to the same address that waits
    # for a retry: a person reads messages in the order they were queued.
    sql = (
        f"SELECT {_COLUMNS} FROM outbox o WHERE status = 'pending' AND channel = ?"
        " AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox e"
        " WHERE e.channel = o.channel AND e.address = o.address AND e.status = 'pending'"
        " AND e.id < o.id AND e.next_attempt_at > ?)"
    )
    params: list[object] = [channel, now, now]
    if address is not None:
        sql += " AND address = ?"
        params.append(address)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return _take(conn, conn.execute(sql, params).fetchall())


def claim_undeliverable_for(conn: sqlite3.Connection, staff_id: int) -> list[Outbound]:
    """Rows for a person that no channel of theirs can deliver (no reachable
    identity when queued), marked 'sending' for the console to show."""
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND staff_id = ?"
        " AND channel IS NULL ORDER BY id",
        (staff_id,),
    ).fetchall()
    return _take(conn, found)


def _take(conn: sqlite3.Connection, found: Sequence[sqlite3.Row]) -> list[Outbound]:
    """Mark rows 'sending' and return them, their attempt counts including this one."""
    rows = [replace(_outbound(row), attempts=row["attempts"] + 1) for row in found]
    if rows:
        marks = ",".join("?" * len(rows))
        conn.execute(
            f"UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id IN ({marks})",
            [row.id for row in rows],
        )
    return rows


def route_held(conn: sqlite3.Connection, staff_id: int, channel: str, address: str) -> int:
    """Send what was held for a person (no channel reached them) to a channel
    that now does."""
    return conn.execute(
        "UPDATE outbox SET channel = ?, address = ? WHERE staff_id = ? AND channel IS NULL"
        " AND status = 'pending'",
        (channel, address, staff_id),
    ).rowcount


def mark_sent(
    conn: sqlite3.Connection, outbox_id: int, channel_message_id: str | None, now: str
) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'sent', channel_message_id = ?, sent_at = ?, last_error = NULL"
        " WHERE id = ?",
        (channel_message_id, now, outbox_id),
    )


# Putting a claimed row back to 'pending' never revives one cancelled meanwhile.
def mark_retry(conn: sqlite3.Connection, outbox_id: int, error: str, next_attempt_at: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?"
        " WHERE id = ? AND status = 'sending'",
        (error, next_attempt_at, outbox_id),
    )


def postpone(conn: sqlite3.Connection, outbox_id: int, until: str) -> None:
    """Put a claimed row back unsent, its claim not counted as an attempt."""
    conn.execute(
        "UPDATE outbox SET status = 'pending', attempts = attempts - 1, next_attempt_at = ?"
        " WHERE id = ? AND status = 'sending'",
        (until, outbox_id),
    )


def cancel_for(conn: sqlite3.Connection, staff_id: int, reason: str) -> int:
    """Cancel every message still queued for a person (held, due, or being
    handed over), keeping the rows with `reason` for admins to see."""
    return conn.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ?"
        " WHERE staff_id = ? AND status IN ('pending', 'sending')",
        (reason, staff_id),
    ).rowcount


def mark_failed(conn: sqlite3.Connection, outbox_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?", (error, outbox_id)
    )


def release_interrupted(conn: sqlite3.Connection) -> int:
    """Rows left 'sending' by a process that died: back to pending, so the
    sender decides again (at start, before any sender runs)."""
    return conn.execute("UPDATE outbox SET status = 'pending' WHERE status = 'sending'").rowcount


def channel_message_id(conn: sqlite3.Connection, outbox_id: int) -> str | None:
    row = conn.execute(
        "SELECT channel_message_id FROM outbox WHERE id = ?", (outbox_id,)
    ).fetchone()
    return row["channel_message_id"] if row else None


def delivered_message(
    conn: sqlite3.Connection, channel: str, address: str, channel_message_id: str
) -> Outbound | None:
    """The message we delivered to a chat under the channel's message id."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE channel = ? AND address = ?"
        " AND channel_message_id = ? ORDER BY id DESC LIMIT 1",
        (channel, address, channel_message_id),
    ).fetchone()
    return _outbound(row) if row else None


def latest_question(conn: sqlite3.Connection, channel: str, address: str) -> Outbound | None:
    """The newest message with buttons sent to a chat (the question a bare
    number answers, where a channel shows choices as a numbered list)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE channel = ? AND address = ? AND status = 'sent'"
        " AND buttons IS NOT NULL AND replaces_id IS NULL ORDER BY id DESC LIMIT 1",
        (channel, address),
    ).fetchone()
    return _outbound(row) if row else None


def undelivered(conn: sqlite3.Connection, limit: int = 200) -> Sequence[sqlite3.Row]:
    """Pending, failed and cancelled rows for admins, oldest first, with the
    recipient's name."""
    return conn.execute(
        "SELECT o.id, o.status, o.channel, o.attempts, o.last_error, o.created_at, o.text,"
        " s.name AS recipient FROM outbox o LEFT JOIN staff s ON s.id = o.staff_id"
        " WHERE o.status IN ('pending', 'failed', 'cancelled') ORDER BY o.id LIMIT ?",
        (limit,),
    ).fetchall()
