"""The desk's sign-in: one-time links sent by `/web` and the browser sessions
they start. Only hashes of link tokens and session ids are stored, so a copy
of the database opens nobody's desk. Writes run in the writer's transactions;
the per-request session lookup is `signed_in` on a read connection."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from bot.model import Staff
from bot.store import desk_reads


def create_link(
    conn: sqlite3.Connection, *, token_hash: str, staff_id: int, now: str, expires_at: str
) -> None:
    conn.execute(
        "INSERT INTO desk_links (token_hash, staff_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (token_hash, staff_id, now, expires_at),
    )


@dataclass(frozen=True, slots=True)
class Link:
    staff_id: int
    expires_at: str
    used_at: str | None
    active: bool  # the person is still on the roster


_LINK = (
    "SELECT l.staff_id, l.expires_at, l.used_at, s.active FROM desk_links l"
    " JOIN staff s ON s.id = l.staff_id WHERE l.token_hash = ?"
)


def link(conn: sqlite3.Connection, token_hash: str) -> Link | None:
    row = conn.execute(_LINK, (token_hash,)).fetchone()
    return Link(int(row[0]), str(row[1]), row[2], bool(row[3])) if row else None


async def read_link(conn: aiosqlite.Connection, token_hash: str) -> Link | None:
    async with conn.execute(_LINK, (token_hash,)) as cursor:
        row = await cursor.fetchone()
    return Link(int(row[0]), str(row[1]), row[2], bool(row[3])) if row else None


def use_link(conn: sqlite3.Connection, token_hash: str, now: str) -> bool:
    """Mark the link used; False if it was used already (or expired) meanwhile."""
    cursor = conn.execute(
        "UPDATE desk_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
        " AND expires_at > ?",
        (now, token_hash, now),
    )
    return cursor.rowcount == 1


def start_session(conn: sqlite3.Connection, *, id_hash: str, staff_id: int, now: str) -> None:
    conn.execute(
        "INSERT INTO desk_sessions (id_hash, staff_id, created_at, last_seen_at)"
        " VALUES (?, ?, ?, ?)",
        (id_hash, staff_id, now, now),
    )


def touch_session(conn: sqlite3.Connection, id_hash: str, now: str) -> None:
    conn.execute("UPDATE desk_sessions SET last_seen_at = ? WHERE id_hash = ?", (now, id_hash))


def set_session_language(conn: sqlite3.Connection, id_hash: str, language: str | None) -> None:
    conn.execute("UPDATE desk_sessions SET language = ? WHERE id_hash = ?", (language, id_hash))


def end_session(conn: sqlite3.Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM desk_sessions WHERE id_hash = ?", (id_hash,))


def forget_stale(conn: sqlite3.Connection, *, idle_since: str, links_before: str) -> int:
    """Delete sessions idle since before `idle_since` and links that expired
    before `links_before`; returns how many rows went."""
    gone = conn.execute("DELETE FROM desk_sessions WHERE last_seen_at < ?", (idle_since,)).rowcount
    gone += conn.execute("DELETE FROM desk_links WHERE expires_at < ?", (links_before,)).rowcount
    return int(gone)


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    staff_id: int
    created_at: str
    last_seen_at: str
    language: str | None  # chosen on the desk; None: the person's own


async def signed_in(conn: aiosqlite.Connection, id_hash: str) -> tuple[Session, Staff] | None:
    """The session and the person it is for, in one read: every page asks for both."""
    row = await desk_reads.fetch_one(
        conn,
        "SELECT d.staff_id, d.created_at, d.last_seen_at, d.language,"
        f" {desk_reads.STAFF_COLUMNS} FROM desk_sessions d JOIN staff s ON s.id = d.staff_id"
        " WHERE d.id_hash = ?",
        (id_hash,),
    )
    if row is None:
        return None
    values = tuple(row)
    found = Session(id_hash, int(values[0]), str(values[1]), str(values[2]), values[3])
    return found, desk_reads.staff_from_row(values[4:])


async def staff_for_identity(conn: aiosqlite.Connection, channel: str, user_id: str) -> int | None:
    """The active member of staff behind a channel identity (a WeCom userid)."""
    async with conn.execute(
        "SELECT s.id FROM channel_identities i JOIN staff s ON s.id = i.staff_id"
        " WHERE i.channel = ? AND i.user_id = ? AND s.active = 1",
        (channel, user_id),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else None
