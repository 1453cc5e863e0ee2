"""Planned home visits (REGULATIONS §5): a resident's request assigned to a
worker, the worker's answer, reassignment after a refusal, and the reads that
show planned and missed visits. Every change is audited."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bot.store import audit

ENTITY = "visit_request"


def get(conn: sqlite3.Connection, request_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM visit_requests WHERE id = ?", (request_id,)
    ).fetchone()
    return row


def services(row: sqlite3.Row) -> list[str]:
    return [str(key) for key in json.loads(row["services"] or "[]")]


def taken(
    conn: sqlite3.Connection, client_id: int, worker_id: int, starts_at: str, other_than: int = 0
) -> bool:
    """Whether the worker already has a planned visit to this client at that start."""
    return (
        conn.execute(
            "SELECT 1 FROM visit_requests WHERE client_id = ? AND worker_id = ?"
            " AND starts_at = ? AND id != ?",
            (client_id, worker_id, starts_at, other_than),
        ).fetchone()
        is not None
    )


def create(
    conn: sqlite3.Connection,
    *,
    client_id: int,
    services: list[str],
    starts_at: str,
    ends_at: str,
    worker_id: int,
    requested_by: int,
    now: str,
) -> int:
    """A resident's request, assigned to a worker who has not answered yet."""
    cursor = conn.execute(
        "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
        " worker_id, state, requested_by, created_at)"
        " VALUES (?, 'request', ?, ?, ?, ?, 'assigned', ?, ?)",
        (client_id, json.dumps(services), starts_at, ends_at, worker_id, requested_by, now),
    )
    request_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=requested_by,
        entity=ENTITY,
        entity_id=request_id,
        action="created",
        detail={
            "client": client_id,
            "worker": worker_id,
            "services": services,
            "starts_at": starts_at,
            "ends_at": ends_at,
        },
    )
    return request_id


def decide(
    conn: sqlite3.Connection,
    request_id: int,
    *,
    worker_id: int,
    accepted: bool,
    note: str | None,
    now: str,
) -> bool:
    """The assigned worker accepts or declines; False (nothing written) unless
    the request is still waiting for that worker."""
    state = "accepted" if accepted else "declined"
    changed = conn.execute(
        "UPDATE visit_requests SET state = ?, note = ?, decided_at = ?"
        " WHERE id = ? AND worker_id = ? AND state = 'assigned'",
        (state, note, now, request_id, worker_id),
    ).rowcount
    if changed:
        detail: dict[str, Any] = {"to": state}
        if note:
            detail["reason"] = note
        audit.record(
            conn,
            at=now,
            actor_id=worker_id,
            entity=ENTITY,
            entity_id=request_id,
            action=state,
            detail=detail,
        )
    return bool(changed)


def reassign(
    conn: sqlite3.Connection, request_id: int, *, worker_id: int, actor_id: int, now: str
) -> bool:
    """A declined request goes to another worker (or the same, asked again);
    the refusal and its reason stay in the audit log. False unless declined."""
    row = get(conn, request_id)
    changed = conn.execute(
        "UPDATE visit_requests SET worker_id = ?, state = 'assigned', note = NULL,"
        " decided_at = NULL WHERE id = ? AND state = 'declined'",
        (worker_id, request_id),
    ).rowcount
    if changed and row is not None:
        audit.record(
            conn,
            at=now,
            actor_id=actor_id,
            entity=ENTITY,
            entity_id=request_id,
            action="reassigned",
            detail={"from": row["worker_id"], "worker": worker_id, "to": "assigned"},
        )
    return bool(changed)


def assigned_workers(conn: sqlite3.Connection, client_id: int) -> list[int]:
    """The ids of the workers assigned to a client, in the order they were added."""
    rows = conn.execute(
        "SELECT staff_id FROM client_workers WHERE client_id = ? ORDER BY rowid", (client_id,)
    ).fetchall()
    return [int(row[0]) for row in rows]


def has_clients(conn: sqlite3.Connection, unit_ids: list[int]) -> bool:
    marks = ",".join("?" * len(unit_ids)) or "NULL"
    return (
        conn.execute(
            f"SELECT 1 FROM clients WHERE active = 1 AND unit_id IN ({marks}) LIMIT 1", unit_ids
        ).fetchone()
        is not None
    )


# -- reads for /visits ------------------------------------------------------------------
_NO_VISIT = "NOT EXISTS (SELECT 1 FROM visits v WHERE v.request_id = r.id)"
_REQUEST_COLUMNS = (
    "r.id, r.client_id, r.worker_id, r.state, r.starts_at, r.ends_at, c.name AS client,"
    " (SELECT s.name FROM staff s WHERE s.id = r.worker_id) AS worker_name"
)


def coming_for_worker(
    conn: sqlite3.Connection, worker_id: int, since: str, until: str, limit: int, offset: int = 0
) -> list[sqlite3.Row]:
    """The worker's planned visits (accepted or waiting for their answer)
    starting in [since, until) that nobody has checked in to yet."""
    return conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " WHERE r.worker_id = ? AND r.starts_at >= ? AND r.starts_at < ?"
        f" AND r.state IN ('assigned', 'accepted') AND {_NO_VISIT}"
        " ORDER BY r.starts_at, r.id LIMIT ? OFFSET ?",
        (worker_id, since, until, limit, offset),
    ).fetchall()


def missed_for_worker(
    conn: sqlite3.Connection, worker_id: int, since: str, before: str, limit: int, offset: int = 0
) -> list[sqlite3.Row]:
    """Accepted planned visits of the worker that started in [since, before)
    with no visit checked in against them."""
    return conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " WHERE r.worker_id = ? AND r.starts_at >= ? AND r.starts_at < ?"
        f" AND r.state = 'accepted' AND {_NO_VISIT}"
        " ORDER BY r.starts_at DESC, r.id DESC LIMIT ? OFFSET ?",
        (worker_id, since, before, limit, offset),
    ).fetchall()


def _missed_in_units(unit_ids: list[int]) -> str:
    # `r.state = 'accepted'` literally: it lets SQLite use the partial index of
    # 0013; CROSS JOIN keeps those few rows the outer loop (SQLite's planner
    # would otherwise start from the clients, without statistics).
    marks = ",".join("?" * len(unit_ids)) or "NULL"
    return (
        " FROM visit_requests r CROSS JOIN clients c"
        " WHERE c.id = r.client_id AND r.state = 'accepted'"
        " AND r.starts_at >= ? AND r.starts_at < ?"
        f" AND c.unit_id IN ({marks}) AND {_NO_VISIT}"
    )


def missed_in_units(
    conn: sqlite3.Connection,
    unit_ids: list[int],
    since: str,
    before: str,
    limit: int,
    offset: int = 0,
) -> list[sqlite3.Row]:
    """Accepted planned visits to clients of these units that started in
    [since, before) with no visit checked in against them, latest first."""
    return conn.execute(
        f"SELECT {_REQUEST_COLUMNS}{_missed_in_units(unit_ids)}"
        " ORDER BY r.starts_at DESC, r.id DESC LIMIT ? OFFSET ?",
        (since, before, *unit_ids, limit, offset),
    ).fetchall()


def count_missed_in_units(
    conn: sqlite3.Connection, unit_ids: list[int], since: str, before: str
) -> int:
    row = conn.execute(
        f"SELECT COUNT(*){_missed_in_units(unit_ids)}", (since, before, *unit_ids)
    ).fetchone()
    return int(row[0])
