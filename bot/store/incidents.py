"""The incident register (事故台账): incidents, their investigation entries,
corrective actions and the 15-day report. Entries are appended, never
rewritten; every change is audited (entity 'incident')."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from bot.hazard_rules import incident_number
from bot.store import audit
from bot.store.hazards import next_number


@dataclass(frozen=True, slots=True)
class NewIncident:
    unit_id: int
    reported_by: int
    occurred_at: str
    place: str
    kind: str
    description: str
    hurt_count: int
    hurt_names: str | None
    first_actions: str | None
    photos: list[str]
    report_due_at: str


def create(conn: sqlite3.Connection, incident: NewIncident, *, year: int, now: str) -> int:
    """Register an incident under the next SG number of `year` (its local year)."""
    number = incident_number(year, next_number(conn, "SG", year))
    cursor = conn.execute(
        "INSERT INTO incidents (number, unit_id, reported_by, occurred_at, place, kind,"
        " description, hurt_count, hurt_names, first_actions, photos, report_due_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            number,
            incident.unit_id,
            incident.reported_by,
            incident.occurred_at,
            incident.place,
            incident.kind,
            incident.description,
            incident.hurt_count,
            incident.hurt_names,
            incident.first_actions,
            json.dumps(incident.photos) if incident.photos else None,
            incident.report_due_at,
            now,
        ),
    )
    incident_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=incident.reported_by,
        entity="incident",
        entity_id=incident_id,
        action="reported",
        detail={
            "number": number,
            "kind": incident.kind,
            "occurred_at": incident.occurred_at,
            "hurt": incident.hurt_count,
            "photos": len(incident.photos),
        },
    )
    return incident_id


def get(conn: sqlite3.Connection, incident_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM incidents WHERE id = ?", (incident_id,)
    ).fetchone()
    return row


def by_number(conn: sqlite3.Connection, number: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM incidents WHERE number = ?", (number.strip().upper(),)
    ).fetchone()
    return row


def photos(row: sqlite3.Row) -> list[str]:
    return list(json.loads(row["photos"])) if row["photos"] else []


def listing(
    conn: sqlite3.Connection,
    *,
    under_unit: int | None = None,
    reported_by: int | None = None,
    limit: int,
    offset: int,
) -> list[sqlite3.Row]:
    """Incidents newest first: of a unit's subtree, or reported by someone,
    or (neither given) all of them."""
    columns = "i.id, i.number, i.unit_id, i.kind, i.occurred_at, i.investigation,"
    columns += " i.report_submitted_at"
    if under_unit is not None:
        return conn.execute(
            "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL"
            " SELECT u.id FROM units u JOIN tree t ON u.parent_id = t.id)"
            f" SELECT {columns} FROM incidents i WHERE i.unit_id IN (SELECT id FROM tree)"
            " ORDER BY i.id DESC LIMIT ? OFFSET ?",
            (under_unit, limit, offset),
        ).fetchall()
    if reported_by is not None:
        return conn.execute(
            f"SELECT {columns} FROM incidents i WHERE i.reported_by = ?"
            " ORDER BY i.id DESC LIMIT ? OFFSET ?",
            (reported_by, limit, offset),
        ).fetchall()
    return conn.execute(
        f"SELECT {columns} FROM incidents i ORDER BY i.id DESC LIMIT ? OFFSET ?",
        (limit, offset),
    ).fetchall()


def record_investigation(
    conn: sqlite3.Connection,
    incident_id: int,
    *,
    status: str,
    responsible: str | None,
    findings: str,
    actor_id: int,
    now: str,
) -> None:
    previous = conn.execute(
        "SELECT investigation FROM incidents WHERE id = ?", (incident_id,)
    ).fetchone()
    conn.execute(
        "INSERT INTO incident_investigations (incident_id, status, responsible, findings,"
        " recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
        (incident_id, status, responsible, findings, actor_id, now),
    )
    conn.execute("UPDATE incidents SET investigation = ? WHERE id = ?", (status, incident_id))
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="incident",
        entity_id=incident_id,
        action="investigation",
        detail={"from": previous["investigation"] if previous else None, "to": status},
    )


def latest_investigation(conn: sqlite3.Connection, incident_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT status, responsible, findings, recorded_at FROM incident_investigations"
        " WHERE incident_id = ? ORDER BY id DESC LIMIT 1",
        (incident_id,),
    ).fetchone()
    return row


def add_action(
    conn: sqlite3.Connection,
    incident_id: int,
    *,
    description: str,
    hazard_id: int,
    actor_id: int,
    now: str,
) -> None:
    """A corrective action, already registered as hazard `hazard_id`."""
    conn.execute(
        "INSERT INTO incident_actions (incident_id, description, hazard_id, added_by, added_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (incident_id, description, hazard_id, actor_id, now),
    )
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="incident",
        entity_id=incident_id,
        action="corrective_action",
        detail={"hazard": hazard_id},
    )


def actions(conn: sqlite3.Connection, incident_id: int) -> list[sqlite3.Row]:
    """Corrective actions, oldest first, with their hazard's number and status."""
    return conn.execute(
        "SELECT a.description, h.number AS hazard, h.status FROM incident_actions a"
        " JOIN hazards h ON h.id = a.hazard_id WHERE a.incident_id = ? ORDER BY a.id",
        (incident_id,),
    ).fetchall()


def record_report(
    conn: sqlite3.Connection, incident_id: int, *, reference: str, actor_id: int, now: str
) -> bool:
    """The 15-day report went to the labour authority under `reference`.
    False, and nothing written, if it was recorded already."""
    cursor = conn.execute(
        "UPDATE incidents SET report_reference = ?, report_submitted_at = ?,"
        " report_submitted_by = ? WHERE id = ? AND report_submitted_at IS NULL",
        (reference, now, actor_id, incident_id),
    )
    if cursor.rowcount != 1:
        return False
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="incident",
        entity_id=incident_id,
        action="report_submitted",
        detail={"reference": reference},
    )
    return True


def history(conn: sqlite3.Connection, incident_id: int) -> list[sqlite3.Row]:
    """The incident's audit trail, oldest first, with the actor's name."""
    return conn.execute(
        "SELECT a.at, a.action, a.detail, s.name AS actor FROM audit_log a"
        " LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = 'incident' AND a.entity_id = ? ORDER BY a.id",
        (incident_id,),
    ).fetchall()
