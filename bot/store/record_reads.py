"""The desk's other registers, read on the read connections: incidents,
today's home visits, this year's drills, notices and their readers, people
and the audit log. Only SELECTs; typed records out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.model import Staff
from bot.store.desk_reads import STAFF_COLUMNS, Conn, fetch_all, fetch_one, marks, staff_from_row
from bot.store.hazards import HistoryEntry


@dataclass(frozen=True, slots=True)
class IncidentLine:
    id: int
    number: str
    unit_id: int
    kind: str
    occurred_at: str
    investigation: str
    hurt_count: int
    report_due_at: str
    report_submitted_at: str | None
    report_reference: str | None


async def incident_list(
    conn: Conn,
    *,
    scope_units: Sequence[int] | None,
    reporter_id: int | None,
    units: Sequence[int] | None,
    running_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[IncidentLine], int]:
    """Incidents newest first: of `scope_units` (None: every unit) or
    reported by `reporter_id`, narrowed to `units`, and to those whose report
    is still running; with how many the whole view holds."""
    parts: list[str] = []
    params: list[object] = []
    if scope_units is not None:
        scope = list(scope_units)
        mine = " OR reported_by = ?" if reporter_id is not None else ""
        parts.append(f"(unit_id IN ({marks(scope)}){mine})")
        params += [*scope, *([reporter_id] if reporter_id is not None else [])]
    if units is not None:
        parts.append(f"unit_id IN ({marks(units)})")
        params += list(units)
    if running_only:
        parts.append("report_submitted_at IS NULL")
    where = " AND ".join(parts) or "1 = 1"
    rows = await fetch_all(
        conn,
        "SELECT id, number, unit_id, kind, occurred_at, investigation, hurt_count,"
        " report_due_at, report_submitted_at, report_reference FROM incidents"
        f" WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await fetch_one(conn, f"SELECT COUNT(*) FROM incidents WHERE {where}", params)
    lines = [
        IncidentLine(
            int(r[0]),
            str(r[1]),
            int(r[2]),
            str(r[3]),
            str(r[4]),
            str(r[5]),
            int(r[6]),
            str(r[7]),
            r[8],
            r[9],
        )
        for r in rows
    ]
    return lines, int(total[0])


@dataclass(frozen=True, slots=True)
class VisitLine:
    """A planned visit of the day (or one checked in without a plan)."""

    planned_start: str | None
    planned_end: str | None
    state: str  # the plan's state, or the visit's when there is no plan
    client_number: str
    client_name: str
    unit_id: int
    worker: str | None
    checkin_at: str | None
    checkout_at: str | None
    exception: bool  # check-in or check-out far away or without a location
    unusual: int
    home: tuple[float, float] | None = None  # the client's coordinates
    checkin_point: tuple[float, float] | None = None
    checkin_distance_m: float | None = None  # from home, as the check-in measured it
    checkout_point: tuple[float, float] | None = None
    checkout_distance_m: float | None = None


_VISIT_TAIL = (
    " v.checkin_at, v.checkout_at,"
    " (v.checkin_exception IS NOT NULL OR v.checkout_exception IS NOT NULL),"
    " (SELECT COUNT(*) FROM visit_notes n WHERE n.visit_id = v.id AND n.kind = 'unusual'),"
    " c.lat, c.lon, v.checkin_lat, v.checkin_lon, v.checkin_distance_m,"
    " v.checkout_lat, v.checkout_lon, v.checkout_distance_m"
)


def _point(lat: object, lon: object) -> tuple[float, float] | None:
    return (float(str(lat)), float(str(lon))) if lat is not None and lon is not None else None


async def visits_of_day(
    conn: Conn, unit_ids: Sequence[int] | None, since: str, until: str, limit: int
) -> list[VisitLine]:
    """The day's planned visits of these units' clients (None: every unit)
    with their check-in if any, then visits checked in without a plan."""
    ids = list(unit_ids or ())
    within = "" if unit_ids is None else f" AND c.unit_id IN ({marks(ids)})"
    planned = await fetch_all(
        conn,
        "SELECT r.starts_at, r.ends_at, r.state, c.number, c.name, c.unit_id, w.name,"
        f"{_VISIT_TAIL} FROM visit_requests r JOIN clients c ON c.id = r.client_id"
        " LEFT JOIN staff w ON w.id = r.worker_id LEFT JOIN visits v ON v.request_id = r.id"
        " WHERE r.starts_at >= ? AND r.starts_at < ?"
        f" AND r.state IN ('assigned', 'accepted', 'visited'){within}"
        " ORDER BY r.starts_at LIMIT ?",
        (since, until, *ids, limit),
    )
    unplanned = await fetch_all(
        conn,
        "SELECT NULL, NULL, v.state, c.number, c.name, c.unit_id, w.name,"
        f"{_VISIT_TAIL} FROM visits v JOIN clients c ON c.id = v.client_id"
        " JOIN staff w ON w.id = v.worker_id"
        f" WHERE v.request_id IS NULL AND v.checkin_at >= ? AND v.checkin_at < ?{within}"
        " ORDER BY v.checkin_at LIMIT ?",
        (since, until, *ids, limit),
    )
    return [
        VisitLine(
            r[0],
            r[1],
            str(r[2]),
            str(r[3]),
            str(r[4]),
            int(r[5]),
            r[6],
            r[7],
            r[8],
            bool(r[9]),
            int(r[10]),
            home=_point(r[11], r[12]),
            checkin_point=_point(r[13], r[14]),
            checkin_distance_m=r[15],
            checkout_point=_point(r[16], r[17]),
            checkout_distance_m=r[18],
        )
        for r in [*planned, *unplanned]
    ]


@dataclass(frozen=True, slots=True)
class DrillLine:
    id: int
    unit_id: int
    kind: str
    at: str
    organiser_id: int
    state: str
    participants: int | None
    minutes: int | None


async def drills_between(
    conn: Conn, unit_ids: Sequence[int] | None, since: str, until: str
) -> list[DrillLine]:
    """Drills planned or held in the span in these units (None: every unit), by time."""
    ids = list(unit_ids or ())
    within = "" if unit_ids is None else f" AND unit_id IN ({marks(ids)})"
    rows = await fetch_all(
        conn,
        "SELECT id, unit_id, kind, at, organiser_id, state, participants, minutes FROM drills"
        f" WHERE at >= ? AND at < ? AND state != 'cancelled'{within} ORDER BY at",
        (since, until, *ids),
    )
    return [
        DrillLine(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), r[6], r[7])
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class NoticeLine:
    id: int
    sender_id: int
    text: str
    confidential: bool
    created_at: str
    total: int
    read: int
    read_at: str | None = None  # for a notice someone received: when they read it


async def notices_sent(conn: Conn, sender_id: int, limit: int) -> list[NoticeLine]:
    rows = await fetch_all(
        conn,
        "SELECT n.id, n.sender_id, n.text, n.confidential, n.created_at, COUNT(r.staff_id),"
        " COUNT(r.read_at) FROM notices n LEFT JOIN notice_recipients r ON r.notice_id = n.id"
        " WHERE n.sender_id = ? GROUP BY n.id ORDER BY n.id DESC LIMIT ?",
        (sender_id, limit),
    )
    return [
        NoticeLine(int(r[0]), int(r[1]), str(r[2]), bool(r[3]), str(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]


async def notices_received(conn: Conn, staff_id: int, limit: int) -> list[NoticeLine]:
    rows = await fetch_all(
        conn,
        "SELECT n.id, n.sender_id, n.text, n.confidential, n.created_at, 1, r.read_at IS NOT NULL,"
        " r.read_at FROM notice_recipients r JOIN notices n ON n.id = r.notice_id"
        " WHERE r.staff_id = ? ORDER BY r.read_at IS NOT NULL, n.id DESC LIMIT ?",
        (staff_id, limit),
    )
    return [
        NoticeLine(
            int(r[0]), int(r[1]), str(r[2]), bool(r[3]), str(r[4]), int(r[5]), int(r[6]), r[7]
        )
        for r in rows
    ]


async def unread_names(conn: Conn, notice_ids: Sequence[int]) -> dict[int, list[str]]:
    """Who has not yet read each notice, by name."""
    ids = list(notice_ids)
    rows = await fetch_all(
        conn,
        "SELECT r.notice_id, s.name FROM notice_recipients r JOIN staff s ON s.id = r.staff_id"
        f" WHERE r.notice_id IN ({marks(ids)}) AND r.read_at IS NULL ORDER BY s.name",
        ids,
    )
    found: dict[int, list[str]] = {}
    for r in rows:
        found.setdefault(int(r[0]), []).append(str(r[1]))
    return found


# -- people and the audit log ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PersonLine:
    staff: Staff
    channels: tuple[str, ...]  # where they have signed in: telegram, wecom, console


async def people(
    conn: Conn, unit_ids: Sequence[int] | None, *, search: str, limit: int, offset: int
) -> tuple[list[PersonLine], int]:
    """People of these units (None: every unit), active first, by unit and name."""
    parts: list[str] = []
    params: list[object] = []
    if unit_ids is not None:
        ids = list(unit_ids)
        parts.append(f"s.unit_id IN ({marks(ids)})")
        params += ids
    if search:
        needle = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(
            "(s.name LIKE ? ESCAPE '\\' OR s.phone LIKE ? ESCAPE '\\' OR s.employee_no = ?)"
        )
        params += [f"%{needle}%", f"%{needle}%", search]
    where = " AND ".join(parts) or "1 = 1"
    rows = await fetch_all(
        conn,
        f"SELECT {STAFF_COLUMNS}, (SELECT GROUP_CONCAT(DISTINCT i.channel)"
        f" FROM channel_identities i WHERE i.staff_id = s.id) FROM staff s WHERE {where}"
        " ORDER BY s.active DESC, s.unit_id, s.name, s.id LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await fetch_one(conn, f"SELECT COUNT(*) FROM staff s WHERE {where}", params)
    lines = [
        PersonLine(staff_from_row(r), tuple(sorted(str(r[8]).split(","))) if r[8] else ())
        for r in rows
    ]
    return lines, int(total[0])


@dataclass(frozen=True, slots=True)
class AuditLine:
    id: int
    at: str
    actor: str | None
    entity: str
    entity_id: int
    action: str
    detail: str


async def audit_log(
    conn: Conn, *, entity: str | None, entity_id: int | None, limit: int, offset: int
) -> list[AuditLine]:
    """The audit log newest first, optionally one entity kind (and one of them)."""
    parts: list[str] = []
    params: list[object] = []
    if entity:
        parts.append("a.entity = ?")
        params.append(entity)
        if entity_id is not None:
            parts.append("a.entity_id = ?")
            params.append(entity_id)
    where = " AND ".join(parts) or "1 = 1"
    rows = await fetch_all(
        conn,
        "SELECT a.id, a.at, s.name, a.entity, a.entity_id, a.action, a.detail FROM audit_log a"
        f" LEFT JOIN staff s ON s.id = a.actor_id WHERE {where}"
        " ORDER BY a.id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [
        AuditLine(int(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]), str(r[5]), str(r[6] or ""))
        for r in rows
    ]


async def audit_entities(conn: Conn) -> list[str]:
    rows = await fetch_all(conn, "SELECT DISTINCT entity FROM audit_log ORDER BY entity")
    return [str(r[0]) for r in rows]


# -- one incident's card -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """An incident as the register holds it (bot/store/incidents.py)."""

    id: int
    number: str
    unit_id: int
    reported_by: int
    reporter: str | None
    occurred_at: str
    place: str
    kind: str
    description: str
    hurt_count: int
    hurt_names: str | None
    first_actions: str | None
    photos: int
    investigation: str
    report_due_at: str
    report_reference: str | None
    report_submitted_at: str | None
    report_submitted_by: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class InvestigationEntry:
    status: str
    responsible: str | None
    findings: str
    recorded_by: str | None
    recorded_at: str


@dataclass(frozen=True, slots=True)
class CorrectiveAction:
    description: str
    hazard: str  # the hazard's register number: each action is chased as one
    status: str
    added_at: str


@dataclass(frozen=True, slots=True)
class IncidentCard:
    record: IncidentRecord
    investigations: list[InvestigationEntry]
    actions: list[CorrectiveAction]
    history: list[HistoryEntry]


async def incident(conn: Conn, number: str) -> IncidentCard | None:
    """The incident numbered `number` with its investigation entries, its
    corrective actions and its audit trail, oldest first; None if no such."""
    row = await fetch_one(
        conn,
        "SELECT i.id, i.number, i.unit_id, i.reported_by, r.name, i.occurred_at, i.place,"
        " i.kind, i.description, i.hurt_count, i.hurt_names, i.first_actions, i.photos,"
        " i.investigation, i.report_due_at, i.report_reference, i.report_submitted_at,"
        " b.name, i.created_at FROM incidents i LEFT JOIN staff r ON r.id = i.reported_by"
        " LEFT JOIN staff b ON b.id = i.report_submitted_by WHERE i.number = ?",
        (number.strip().upper(),),
    )
    if row is None:
        return None
    record = IncidentRecord(
        id=int(row[0]),
        number=str(row[1]),
        unit_id=int(row[2]),
        reported_by=int(row[3]),
        reporter=row[4],
        occurred_at=str(row[5]),
        place=str(row[6]),
        kind=str(row[7]),
        description=str(row[8]),
        hurt_count=int(row[9]),
        hurt_names=row[10],
        first_actions=row[11],
        photos=len(json.loads(row[12])) if row[12] else 0,
        investigation=str(row[13]),
        report_due_at=str(row[14]),
        report_reference=row[15],
        report_submitted_at=row[16],
        report_submitted_by=row[17],
        created_at=str(row[18]),
    )
    investigations = await fetch_all(
        conn,
        "SELECT v.status, v.responsible, v.findings, s.name, v.recorded_at"
        " FROM incident_investigations v LEFT JOIN staff s ON s.id = v.recorded_by"
        " WHERE v.incident_id = ? ORDER BY v.id",
        (record.id,),
    )
    actions = await fetch_all(
        conn,
        "SELECT a.description, h.number, h.status, a.added_at FROM incident_actions a"
        " JOIN hazards h ON h.id = a.hazard_id WHERE a.incident_id = ? ORDER BY a.id",
        (record.id,),
    )
    history = await fetch_all(
        conn,
        "SELECT a.at, a.action, s.name, a.detail FROM audit_log a"
        " LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = 'incident' AND a.entity_id = ? ORDER BY a.id",
        (record.id,),
    )
    return IncidentCard(
        record,
        [InvestigationEntry(str(r[0]), r[1], str(r[2]), r[3], str(r[4])) for r in investigations],
        [CorrectiveAction(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in actions],
        [HistoryEntry(str(r[0]), str(r[1]), r[2], json.loads(r[3] or "{}")) for r in history],
    )
