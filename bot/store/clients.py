"""Elder-care clients (REGULATIONS §5): who they are, where they live, their
care plan, and which workers are assigned to them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.store import audit

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


# -- the client list import ------------------------------------------------------------
# Writes for `bot.clients`, which has validated every entry and resolved its
# unit and workers; nothing here reads files or decides what is valid.


@dataclass(frozen=True, slots=True)
class ClientEntry:
    """One validated row of the client list, its unit and workers resolved."""

    line: int
    number: str
    name: str
    address: str
    lat: float | None
    lon: float | None
    phone: str | None  # E.164
    emergency_contact: str | None
    unit_id: int
    services: tuple[str, ...]  # service keys, in the file's order
    visit_times: str | None
    worker_ids: tuple[int, ...]  # active staff, in the file's order
    phone_display: str | None = None  # as the file wrote it, '021-63510001'


@dataclass(frozen=True, slots=True)
class ClientsResult:
    created: int
    updated: int
    deactivated: int


# Personal data: the audit log notes that it changed, never the values.
_PERSONAL = ("name", "address", "lat", "lon", "phone", "phone_display", "emergency_contact")


def apply_clients(
    conn: sqlite3.Connection,
    entries: Sequence[ClientEntry],
    *,
    deactivate_missing: bool,
    now: str,
    actor_id: int | None = None,
) -> ClientsResult:
    """Create or update every client in `entries` by client number, replacing
    their assigned workers (and, if asked, deactivate every active client not
    in them). Every change is audited (entity 'client'), with `actor_id` the
    admin who uploaded the list on the desk (None: the command line)."""
    created = updated = deactivated = 0
    kept: set[int] = set()
    for entry in entries:
        row = conn.execute("SELECT * FROM clients WHERE number = ?", (entry.number,)).fetchone()
        if row is None:
            client_id = _create(conn, entry, now, actor_id)
            created += 1
        else:
            client_id = int(row["id"])
            if _update(conn, row, entry, now, actor_id):
                updated += 1
        kept.add(client_id)
    if deactivate_missing:
        for row in conn.execute("SELECT id FROM clients WHERE active = 1 ORDER BY id").fetchall():
            if int(row["id"]) not in kept:
                conn.execute(
                    "UPDATE clients SET active = 0, updated_at = ? WHERE id = ?", (now, row["id"])
                )
                _audit(
                    conn,
                    int(row["id"]),
                    "deactivated",
                    {"reason": "missing_from_list"},
                    now,
                    actor_id,
                )
                deactivated += 1
    return ClientsResult(created, updated, deactivated)


def _values(entry: ClientEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "address": entry.address,
        "lat": entry.lat,
        "lon": entry.lon,
        "phone": entry.phone,
        "phone_display": entry.phone_display,
        "emergency_contact": entry.emergency_contact,
        "unit_id": entry.unit_id,
        "services": json.dumps(list(entry.services)),
        "visit_times": entry.visit_times,
    }


def _create(conn: sqlite3.Connection, entry: ClientEntry, now: str, actor_id: int | None) -> int:
    values = _values(entry)
    columns = ", ".join(values)
    cursor = conn.execute(
        f"INSERT INTO clients (number, {columns}, active, created_at, updated_at)"
        f" VALUES (?, {', '.join('?' * len(values))}, 1, ?, ?)",
        (entry.number, *values.values(), now, now),
    )
    assert cursor.lastrowid is not None
    client_id = cursor.lastrowid
    _assign(conn, client_id, entry.worker_ids)
    detail = {
        "number": entry.number,
        "unit_id": entry.unit_id,
        "services": list(entry.services),
        "visit_times": entry.visit_times,
        "workers": list(entry.worker_ids),
    }
    _audit(conn, client_id, "created", detail, now, actor_id)
    return client_id


def _update(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    entry: ClientEntry,
    now: str,
    actor_id: int | None,
) -> bool:
    """Bring a stored client in line with their row; False if nothing changed."""
    client_id = int(row["id"])
    values = _values(entry)
    changes: dict[str, Any] = {}
    for column, value in values.items():
        if column == "phone_display" and row[column] is None:
            continue  # how the number is written, first recorded: not a change
        if row[column] != value:
            changes[column] = "changed" if column in _PERSONAL else [row[column], value]
    if "services" in changes:
        changes["services"] = [plan(row), list(entry.services)]
    if not row["active"]:
        changes["active"] = [0, 1]
    if not changes and row["phone_display"] != entry.phone_display:
        conn.execute(
            "UPDATE clients SET phone_display = ? WHERE id = ?", (entry.phone_display, client_id)
        )
    if changes:
        assignments = ", ".join(f"{column} = ?" for column in values)
        conn.execute(
            f"UPDATE clients SET {assignments}, active = 1, updated_at = ? WHERE id = ?",
            (*values.values(), now, client_id),
        )
    workers = [
        int(r[0])
        for r in conn.execute(
            # The order they were listed in: the first one gets the regular visits.
            "SELECT staff_id FROM client_workers WHERE client_id = ? ORDER BY rowid",
            (client_id,),
        )
    ]
    if workers != list(dict.fromkeys(entry.worker_ids)):
        conn.execute("DELETE FROM client_workers WHERE client_id = ?", (client_id,))
        _assign(conn, client_id, entry.worker_ids)
        changes["workers"] = [workers, list(entry.worker_ids)]
    if changes:
        _audit(conn, client_id, "updated", changes, now, actor_id)
    return bool(changes)


def _assign(conn: sqlite3.Connection, client_id: int, worker_ids: Sequence[int]) -> None:
    for staff_id in dict.fromkeys(worker_ids):
        conn.execute(
            "INSERT INTO client_workers (client_id, staff_id) VALUES (?, ?)",
            (client_id, staff_id),
        )


def _audit(
    conn: sqlite3.Connection,
    client_id: int,
    action: str,
    detail: dict[str, Any],
    now: str,
    actor_id: int | None,
) -> None:
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="client",
        entity_id=client_id,
        action=action,
        detail=detail,
    )


def set_tolerance(conn: sqlite3.Connection, unit_id: int, metres: int, now: str) -> None:
    """How far from a client a check-in may be, for a unit and the units below it."""
    conn.execute(
        "INSERT INTO visit_settings (unit_id, tolerance_m) VALUES (?, ?)"
        " ON CONFLICT (unit_id) DO UPDATE SET tolerance_m = excluded.tolerance_m",
        (unit_id, metres),
    )
    audit.record(
        conn,
        at=now,
        actor_id=None,
        entity="unit",
        entity_id=unit_id,
        action="visit_tolerance_set",
        detail={"tolerance_m": metres},
    )


# -- regular visits (schedules.visit_plan) ---------------------------------------------
# A regular visit the care plan no longer holds is cancelled with this note, so
# that the planner may bring it back if the plan returns to it.
PLAN_CHANGED = "plan_changed"


def with_visit_times(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Active clients whose care plan has regular visit times."""
    return conn.execute(
        "SELECT * FROM clients WHERE active = 1 AND visit_times IS NOT NULL"
        " AND visit_times <> '' ORDER BY id"
    ).fetchall()


def first_worker(conn: sqlite3.Connection, client_id: int) -> int | None:
    """The assigned worker regular visits go to: the first listed still active."""
    row = conn.execute(
        "SELECT s.id FROM client_workers w JOIN staff s ON s.id = w.staff_id"
        " WHERE w.client_id = ? AND s.active = 1 ORDER BY w.rowid LIMIT 1",
        (client_id,),
    ).fetchone()
    return int(row[0]) if row else None


def regular_ahead(conn: sqlite3.Connection, now: str) -> dict[int, list[sqlite3.Row]]:
    """Planned regular visits still ahead and not begun, by client."""
    rows = conn.execute(
        "SELECT r.id, r.client_id, r.worker_id, r.starts_at FROM visit_requests r"
        " WHERE r.origin = 'regular' AND r.state = 'accepted' AND r.starts_at > ?"
        " AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.request_id = r.id)"
        " ORDER BY r.client_id, r.starts_at",
        (now,),
    ).fetchall()
    ahead: dict[int, list[sqlite3.Row]] = {}
    for row in rows:
        ahead.setdefault(int(row["client_id"]), []).append(row)
    return ahead


def plan_regular(
    conn: sqlite3.Connection,
    *,
    client_id: int,
    worker_id: int,
    services: Sequence[str],
    starts_at: str,
    ends_at: str,
    now: str,
) -> int | None:
    """Plan one regular visit; its id if it is new, brought back or changed, None
    if it stands as planned (or was declined, done or cancelled by someone)."""
    row = conn.execute(
        "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at, worker_id,"
        " state, created_at, decided_at) VALUES (?, 'regular', ?, ?, ?, ?, 'accepted', ?, ?)"
        " ON CONFLICT (client_id, worker_id, starts_at) DO UPDATE SET"
        " services = excluded.services, ends_at = excluded.ends_at, state = 'accepted',"
        " note = NULL"
        " WHERE visit_requests.origin = 'regular' AND ("
        " (visit_requests.state = 'cancelled' AND visit_requests.note = ?)"
        " OR (visit_requests.state = 'accepted' AND (visit_requests.services <> excluded.services"
        " OR visit_requests.ends_at <> excluded.ends_at)))"
        " RETURNING id",
        (
            client_id,
            json.dumps(list(services)),
            starts_at,
            ends_at,
            worker_id,
            now,
            now,
            PLAN_CHANGED,
        ),
    ).fetchone()
    return int(row[0]) if row else None


def cancel_regular(conn: sqlite3.Connection, request_ids: Sequence[int]) -> int:
    """Cancel planned regular visits the care plan no longer holds."""
    cancelled = 0
    for request_id in request_ids:
        cancelled += conn.execute(
            "UPDATE visit_requests SET state = 'cancelled', note = ?"
            " WHERE id = ? AND origin = 'regular' AND state = 'accepted'",
            (PLAN_CHANGED, request_id),
        ).rowcount
    return cancelled
