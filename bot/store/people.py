"""Reads and small writes about people and units: who is behind a channel
identity, who supervises a unit, which channel reaches a person."""

from __future__ import annotations

import sqlite3

from bot.model import Role, Staff

_STAFF_COLUMNS = "s.id, s.name, s.phone, s.employee_no, s.unit_id, s.roles, s.language, s.active"


def _staff(row: sqlite3.Row) -> Staff:
    return Staff(
        id=row["id"],
        name=row["name"],
        phone=row["phone"],
        employee_no=row["employee_no"],
        unit_id=row["unit_id"],
        roles=frozenset(Role(r) for r in row["roles"].split(",") if r),
        language=row["language"],
        active=bool(row["active"]),
    )


def staff_by_identity(conn: sqlite3.Connection, channel: str, user_id: str) -> Staff | None:
    found = identify(conn, channel, user_id)
    return found[0] if found else None


def identify(
    conn: sqlite3.Connection, channel: str, user_id: str
) -> tuple[Staff, str | None] | None:
    """Who is behind a channel identity, and when they were last seen there."""
    row = conn.execute(
        f"SELECT {_STAFF_COLUMNS}, i.last_seen_at FROM channel_identities i"
        " JOIN staff s ON s.id = i.staff_id WHERE i.channel = ? AND i.user_id = ?",
        (channel, user_id),
    ).fetchone()
    return (_staff(row), row["last_seen_at"]) if row else None


def staff_by_id(conn: sqlite3.Connection, staff_id: int) -> Staff | None:
    row = conn.execute(
        f"SELECT {_STAFF_COLUMNS} FROM staff s WHERE s.id = ?", (staff_id,)
    ).fetchone()
    return _staff(row) if row else None


def find_staff(conn: sqlite3.Connection, who: str) -> list[Staff]:
    """People matching a phone (any common spelling), an employee number or a name."""
    digits = "".join(ch for ch in who if ch.isdigit())
    phones = {who, f"+{digits}", f"+86{digits}"} if digits else {who}
    marks = ",".join("?" * len(phones))
    rows = conn.execute(
        f"SELECT {_STAFF_COLUMNS} FROM staff s WHERE s.phone IN ({marks})"
        " OR s.employee_no = ? OR s.name = ? ORDER BY s.active DESC, s.id",
        (*phones, who, who),
    ).fetchall()
    return [_staff(row) for row in rows]


def bind_identity(
    conn: sqlite3.Connection, channel: str, user_id: str, staff_id: int, now: str
) -> None:
    conn.execute(
        "INSERT INTO channel_identities (channel, user_id, staff_id, reachable, last_seen_at)"
        " VALUES (?, ?, ?, 1, ?) ON CONFLICT (channel, user_id)"
        " DO UPDATE SET staff_id = excluded.staff_id, last_seen_at = excluded.last_seen_at",
        (channel, user_id, staff_id, now),
    )


def touch_identity(conn: sqlite3.Connection, channel: str, user_id: str, now: str) -> None:
    conn.execute(
        "UPDATE channel_identities SET last_seen_at = ? WHERE channel = ? AND user_id = ?",
        (now, channel, user_id),
    )


def set_language(conn: sqlite3.Connection, staff_id: int, language: str, now: str) -> None:
    conn.execute(
        "UPDATE staff SET language = ?, updated_at = ? WHERE id = ?", (language, now, staff_id)
    )


def unit_chain(conn: sqlite3.Connection, unit_id: int) -> list[sqlite3.Row]:
    """The unit and its ancestors, nearest first (id, name, path, timezone)."""
    return conn.execute(
        "WITH RECURSIVE chain(id, parent_id, name, path, timezone, depth) AS ("
        " SELECT id, parent_id, name, path, timezone, 0 FROM units WHERE id = ?"
        " UNION ALL SELECT u.id, u.parent_id, u.name, u.path, u.timezone, c.depth + 1"
        " FROM units u JOIN chain c ON u.id = c.parent_id)"
        " SELECT id, name, path, timezone FROM chain ORDER BY depth",
        (unit_id,),
    ).fetchall()


def unit_timezone(conn: sqlite3.Connection, unit_id: int, default: str) -> str:
    for row in unit_chain(conn, unit_id):
        if row["timezone"]:
            return str(row["timezone"])
    return default


def unit_path(conn: sqlite3.Connection, unit_id: int) -> str:
    row = conn.execute("SELECT path FROM units WHERE id = ?", (unit_id,)).fetchone()
    return str(row["path"]) if row else ""


def supervisors_for_unit(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    """The active supervisors of the nearest unit, walking up the tree, that has any."""
    for unit in unit_chain(conn, unit_id):
        rows = conn.execute(
            f"SELECT {_STAFF_COLUMNS} FROM staff s WHERE s.unit_id = ? AND s.active = 1"
            " AND (',' || s.roles || ',') LIKE ? ORDER BY s.id",
            (unit["id"], f"%,{Role.SUPERVISOR.value},%"),
        ).fetchall()
        if rows:
            return [_staff(row) for row in rows]
    return []


def reachable_channel(conn: sqlite3.Connection, staff_id: int) -> tuple[str, str] | None:
    """The channel and address that reach a person unprompted (not the console),
    the one they used last first; None if they have none yet."""
    row = conn.execute(
        "SELECT channel, user_id FROM channel_identities"
        " WHERE staff_id = ? AND reachable = 1 AND channel != 'console'"
        " ORDER BY last_seen_at IS NULL, last_seen_at DESC LIMIT 1",
        (staff_id,),
    ).fetchone()
    return (row["channel"], row["user_id"]) if row else None
