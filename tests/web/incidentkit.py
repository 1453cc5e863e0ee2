"""Incidents as the chat files them, for the desk's tests: one reported, and
optionally investigated, given a corrective action and its report recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.app import App
from bot.clock import iso
from bot.incident_rules import report_deadline
from bot.store import hazards, incidents
from bot.store.incidents import NewIncident


async def file_incident(
    app: App,
    *,
    unit_path: str,
    reporter: int,
    occurred: datetime,
    description: str = "搬运时扭伤脚踝",
    kind: str = "injury",
) -> str:
    """An incident as /incident files it; returns its register number."""

    def file(conn: Any) -> str:
        unit = conn.execute("SELECT id FROM units WHERE path = ?", (unit_path,)).fetchone()[0]
        incident_id = incidents.create(
            conn,
            NewIncident(
                unit_id=unit,
                reported_by=reporter,
                occurred_at=iso(occurred),
                place="地下车库",
                kind=kind,
                description=description,
                hurt_count=1 if kind == "injury" else 0,
                hurt_names="陈磊" if kind == "injury" else None,
                first_actions="送医",
                photos=[],
                report_due_at=iso(report_deadline(occurred, "Asia/Shanghai")),
            ),
            year=occurred.year,
            now=iso(occurred),
        )
        return str(incidents.get(conn, incident_id)["number"])  # type: ignore[index]

    return await app.db.transaction(file)


async def investigate(
    app: App, number: str, *, actor: int, now: datetime, action: str | None = None
) -> str | None:
    """Record an investigation and, if `action` is given, a corrective action
    (a hazard of the incident's unit); returns that hazard's number."""

    def act(conn: Any) -> str | None:
        row = incidents.by_number(conn, number)
        assert row is not None
        incidents.record_investigation(
            conn,
            int(row["id"]),
            status="investigating",
            responsible="班长",
            findings="地面有油污，未设警示",
            actor_id=actor,
            now=iso(now),
        )
        if action is None:
            return None
        hazard_id = hazards.create(
            conn,
            unit_id=int(row["unit_id"]),
            reported_by=actor,
            source=f"incident:{row['id']}",
            description=action,
            photo=None,
            severity="general",
            deadline_at=iso(now),
            now=iso(now),
        )
        incidents.add_action(
            conn,
            int(row["id"]),
            description=action,
            hazard_id=hazard_id,
            actor_id=actor,
            now=iso(now),
        )
        return str(hazards.numbers(conn, [hazard_id])[hazard_id])

    return await app.db.transaction(act)


async def record_report(
    app: App, number: str, *, actor: int, reference: str, now: datetime
) -> None:
    def act(conn: Any) -> None:
        row = incidents.by_number(conn, number)
        assert row is not None
        incidents.record_report(
            conn, int(row["id"]), reference=reference, actor_id=actor, now=iso(now)
        )

    await app.db.transaction(act)
