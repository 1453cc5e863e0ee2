"""Elder-care clients (REGULATIONS §5): who they are, where they live, their
care plan, and which workers are assigned to them."""

from __future__ import annotations

import json
import sqlite3

DEFAULT_TOLERANCE_M = 200


def get(conn: sqlite3.Connection, client_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM clients WHERE id = ?", (client_id,)
    ).fetchone()
    return row


def plan(row: sqlite3.Row) -> list[str]:
    """The client's care plan: service keys."""
    return [str(key) for key in json.loads(row["services"] or "[]")]


def assigned_to(conn: sqlite3.Connection, staff_id: int, limit: int = 50) -> list[sqlite3.Row]:
    """Active clients a worker is assigned to, by name."""
    return conn.execute(
        "SELECT c.* FROM clients c JOIN client_workers w ON w.client_id = c.id"
        " WHERE w.staff_id = ? AND c.active = 1 ORDER BY c.name, c.id LIMIT ?",
        (staff_id, limit),
    ).fetchall()


def is_assigned(conn: sqlite3.Connection, client_id: int, staff_id: int) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM client_workers WHERE client_id = ? AND staff_id = ?",
            (client_id, staff_id),
        ).fetchone()
        is not None
    )


def search(
    conn: sqlite3.Connection, text: str, unit_ids: list[int] | None, limit: int
) -> list[sqlite3.Row]:
    """Active clients whose number is `text` or whose name contains it,
    within `unit_ids` (None: any unit)."""
    needle = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    sql = "SELECT * FROM clients WHERE active = 1 AND (number = ? OR name LIKE ? ESCAPE '\\')"
    params: list[object] = [text.strip(), f"%{needle}%"]
    if unit_ids is not None:
        sql += f" AND unit_id IN ({','.join('?' * len(unit_ids)) or 'NULL'})"
        params += unit_ids
    return conn.execute(sql + " ORDER BY name, id LIMIT ?", [*params, limit]).fetchall()


def tolerance_m(conn: sqlite3.Connection, unit_id: int) -> int:
    """How far from a client a check-in may be: the nearest setting up the tree."""
    row = conn.execute(
        "WITH RECURSIVE chain(id, parent_id, depth) AS ("
        " SELECT id, parent_id, 0 FROM units WHERE id = ?"
        " UNION ALL SELECT u.id, u.parent_id, c.depth + 1 FROM units u"
        " JOIN chain c ON u.id = c.parent_id)"
        " SELECT s.tolerance_m FROM chain c JOIN visit_settings s ON s.unit_id = c.id"
        " ORDER BY c.depth LIMIT 1",
        (unit_id,),
    ).fetchone()
    return int(row[0]) if row else DEFAULT_TOLERANCE_M
