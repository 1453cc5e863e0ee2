"""Home visits: check-in, the services done, observations and anything
unusual, check-out. Every change is audited (entity 'visit')."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from bot.store import audit


@dataclass(frozen=True, slots=True)
class Stamp:
    """Where and how a worker checked in or out."""

    at: str
    lat: float | None
    lon: float | None
    distance_m: float | None
    exception: str | None  # None, 'far', 'no_location'
    reason: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Gifts:
    """What a worker declares about gifts at check-out (REGULATIONS §5)."""

    outcome: str  # 'none', 'declined', 'handed_in'
    note: str | None = None


NO_GIFTS = Gifts("none")


def open_visit(conn: sqlite3.Connection, worker_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM visits WHERE worker_id = ? AND state = 'open'", (worker_id,)
    ).fetchone()
    return row


def get(conn: sqlite3.Connection, visit_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM visits WHERE id = ?", (visit_id,)
    ).fetchone()
    return row


def check_in(
    conn: sqlite3.Connection,
    *,
    client_id: int,
    worker_id: int,
    unit_id: int,
    request_id: int | None,
    stamp: Stamp,
) -> int:
    cursor = conn.execute(
        "INSERT INTO visits (client_id, worker_id, unit_id, request_id, state, checkin_at,"
        " checkin_lat, checkin_lon, checkin_distance_m, checkin_exception, checkin_reason,"
        " checkin_note, created_at) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            client_id,
            worker_id,
            unit_id,
            request_id,
            stamp.at,
            stamp.lat,
            stamp.lon,
            stamp.distance_m,
            stamp.exception,
            stamp.reason,
            stamp.note,
            stamp.at,
        ),
    )
    visit_id = int(cursor.lastrowid or 0)
    if request_id is not None:
        conn.execute(
            "UPDATE visit_requests SET state = 'visited' WHERE id = ? AND state = 'accepted'",
            (request_id,),
        )
    audit.record(
        conn,
        at=stamp.at,
        actor_id=worker_id,
        entity="visit",
        entity_id=visit_id,
        action="checkin",
        detail={"client": client_id, "exception": stamp.exception, "reason": stamp.reason},
    )
    return visit_id


def check_out(
    conn: sqlite3.Connection, visit_id: int, worker_id: int, stamp: Stamp, gifts: Gifts
) -> bool:
    """Close an open visit with what the worker declared about gifts; False if
    it was not open any more."""
    cursor = conn.execute(
        "UPDATE visits SET state = 'done', checkout_at = ?, checkout_lat = ?, checkout_lon = ?,"
        " checkout_distance_m = ?, checkout_exception = ?, checkout_reason = ?,"
        " checkout_note = ?, no_gifts = ?, gifts = ?, gifts_note = ?"
        " WHERE id = ? AND state = 'open'",
        (
            stamp.at,
            stamp.lat,
            stamp.lon,
            stamp.distance_m,
            stamp.exception,
            stamp.reason,
            stamp.note,
            int(gifts.outcome == "none"),
            gifts.outcome,
            gifts.note,
            visit_id,
        ),
    )
    if cursor.rowcount != 1:
        return False
    audit.record(
        conn,
        at=stamp.at,
        actor_id=worker_id,
        entity="visit",
        entity_id=visit_id,
        action="checkout",
        detail={"exception": stamp.exception, "reason": stamp.reason, "gifts": gifts.outcome},
    )
    return True


def services_done(row: sqlite3.Row) -> list[str]:
    return [str(key) for key in json.loads(row["services"] or "[]")]


def set_services(conn: sqlite3.Connection, visit_id: int, services: list[str]) -> None:
    conn.execute(
        "UPDATE visits SET services = ? WHERE id = ? AND state = 'open'",
        (json.dumps(services), visit_id),
    )


def add_note(
    conn: sqlite3.Connection,
    visit_id: int,
    *,
    worker_id: int,
    kind: str,
    at: str,
    text: str | None,
    photo: str | None,
    readings: dict[str, float] | None = None,
    unusual_kind: str | None = None,
    noteworthy: tuple[str, ...] = (),
) -> int:
    """An observation or something unusual; `noteworthy` names the readings
    outside their normal range, flagged to the supervisors (audited)."""
    cursor = conn.execute(
        "INSERT INTO visit_notes (visit_id, kind, unusual_kind, text, photo, readings, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            visit_id,
            kind,
            unusual_kind,
            text,
            photo,
            json.dumps(readings) if readings else None,
            at,
        ),
    )
    note_id = int(cursor.lastrowid or 0)
    detail: dict[str, Any] = {"note": note_id}
    if unusual_kind:
        detail["unusual"] = unusual_kind
    if noteworthy:
        detail["noteworthy"] = list(noteworthy)
    audit.record(
        conn,
        at=at,
        actor_id=worker_id,
        entity="visit",
        entity_id=visit_id,
        action=kind,
        detail=detail,
    )
    return note_id


def link_hazard(conn: sqlite3.Connection, note_id: int, hazard_id: int) -> None:
    conn.execute("UPDATE visit_notes SET hazard_id = ? WHERE id = ?", (hazard_id, note_id))


def notes(conn: sqlite3.Connection, visit_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM visit_notes WHERE visit_id = ? ORDER BY id", (visit_id,)
    ).fetchall()


def planned(
    conn: sqlite3.Connection, worker_id: int, client_id: int, since: str, until: str
) -> sqlite3.Row | None:
    """The worker's accepted planned visit to this client starting in [since, until]."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM visit_requests WHERE worker_id = ? AND client_id = ? AND state = 'accepted'"
        " AND starts_at BETWEEN ? AND ? ORDER BY starts_at LIMIT 1",
        (worker_id, client_id, since, until),
    ).fetchone()
    return row


def planned_clients(
    conn: sqlite3.Connection, worker_id: int, since: str, until: str
) -> list[sqlite3.Row]:
    """Clients of the worker's accepted planned visits in [since, until], soonest first."""
    return conn.execute(
        "SELECT c.*, r.starts_at FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " WHERE r.worker_id = ? AND r.state = 'accepted' AND r.starts_at BETWEEN ? AND ?"
        " ORDER BY r.starts_at",
        (worker_id, since, until),
    ).fetchall()
