"""Follow-ups of home visits (REGULATIONS §5: the centre tracks the quality
of the service): which completed visits still wait for one, and recording
the family's satisfaction. Audited on the visit."""

from __future__ import annotations

import sqlite3

from bot.store import audit, visit_views

_VISIT = (
    "SELECT v.id, v.client_id, v.unit_id, v.checkin_at, v.checkout_at,"
    " c.name AS client, c.number AS client_number, s.name AS worker"
    " FROM visits v JOIN clients c ON c.id = v.client_id JOIN staff s ON s.id = v.worker_id"
)
_AWAITING = (
    "v.state = 'done' AND NOT EXISTS (SELECT 1 FROM visit_followups f WHERE f.visit_id = v.id)"
)


def awaiting(
    conn: sqlite3.Connection, unit_ids: list[int], since: str, limit: int, offset: int
) -> list[sqlite3.Row]:
    """Completed visits to these units' clients checked in since `since` with
    no follow-up yet, newest first."""
    ids = visit_views.newest_ids(conn, unit_ids, since, None, limit, offset, _AWAITING)
    if not ids:
        return []
    return conn.execute(
        f"{_VISIT} WHERE v.id IN ({','.join('?' * len(ids))})"
        " ORDER BY v.checkin_at DESC, v.id DESC",
        ids,
    ).fetchall()


def visit(conn: sqlite3.Connection, visit_id: int) -> sqlite3.Row | None:
    """A visit with its client's and worker's names."""
    row: sqlite3.Row | None = conn.execute(f"{_VISIT} WHERE v.id = ?", (visit_id,)).fetchone()
    return row


def is_awaiting(conn: sqlite3.Connection, visit_id: int, since: str) -> bool:
    return (
        conn.execute(
            f"SELECT 1 FROM visits v WHERE v.id = ? AND v.checkin_at >= ? AND {_AWAITING}",
            (visit_id, since),
        ).fetchone()
        is not None
    )


def record(
    conn: sqlite3.Connection,
    visit_id: int,
    *,
    by_id: int,
    satisfaction: int,
    comments: str | None,
    now: str,
) -> int:
    cursor = conn.execute(
        "INSERT INTO visit_followups (visit_id, by_id, satisfaction, comments, at)"
        " VALUES (?, ?, ?, ?, ?)",
        (visit_id, by_id, satisfaction, comments, now),
    )
    followup_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=by_id,
        entity="visit",
        entity_id=visit_id,
        action="followup",
        detail={"followup": followup_id, "satisfaction": satisfaction, "comments": comments},
    )
    return followup_id
