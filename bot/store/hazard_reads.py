"""The hazard register as the desk reads it (bot/store/reader.py's read
connections): one page of a filtered, searched and sorted view, the same view
for its spreadsheet, and one hazard's card with its history and orders.
Searches of three characters or more use the trigram index (migration 30)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.store import dialect
from bot.store.desk_reads import Conn, fetch_all, fetch_one, marks
from bot.store.hazards import CHASED_STATES, ORDER_COLUMNS, order_from_row
from bot.store.hazards import HistoryEntry as HistoryEntry  # the desk's, too
from bot.store.hazards import Order as Order

# Searches this long or longer use the trigram index; shorter ones LIKE.
TRIGRAM = 3


# -- the hazard register ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HazardQuery:
    """Which hazards a register page shows. `scope_units` None: every unit;
    `person_id`: what they reported or must fix is in scope too; `own_only`:
    only that. The rest are the filters someone chose."""

    scope_units: tuple[int, ...] | None = None
    person_id: int | None = None
    own_only: bool = False
    units: tuple[int, ...] | None = None
    statuses: tuple[str, ...] | None = None
    severity: str | None = None
    category: str | None = None
    created_from: str | None = None
    created_before: str | None = None
    overdue_at: str | None = None
    responsible_ids: tuple[int, ...] | None = None
    search: tuple[str, ...] = ()
    sort: str = "new"


_ORDER = {
    "new": "h.id DESC",
    "old": "h.id",
    "deadline": "h.deadline_at, h.id",
    "severity": "h.severity = 'major' DESC, h.id DESC",
}


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _where(query: HazardQuery, engine: str) -> tuple[str, list[object]]:
    parts: list[str] = []
    params: list[object] = []
    if query.own_only:
        parts.append("(h.reported_by = ? OR h.responsible_id = ?)")
        params += [query.person_id, query.person_id]
    elif query.scope_units is not None:  # else: every unit
        scope = list(query.scope_units)
        mine = " OR h.reported_by = ? OR h.responsible_id = ?" if query.person_id else ""
        parts.append(f"(h.unit_id IN ({marks(scope)}){mine})")
        params += scope
        if query.person_id:
            params += [query.person_id, query.person_id]
    if query.units is not None:
        parts.append(f"h.unit_id IN ({marks(query.units)})")
        params += query.units
    if query.statuses is not None:
        parts.append(f"h.status IN ({marks(query.statuses)})")
        params += query.statuses
    if query.severity:
        parts.append("h.severity = ?")
        params.append(query.severity)
    if query.category:
        parts.append("h.category = ?")
        params.append(query.category)
    if query.created_from:
        parts.append("h.created_at >= ?")
        params.append(query.created_from)
    if query.created_before:
        parts.append("h.created_at < ?")
        params.append(query.created_before)
    if query.overdue_at:
        parts.append(f"h.status IN ({marks(CHASED_STATES)}) AND h.deadline_at < ?")
        params += [*CHASED_STATES, query.overdue_at]
    if query.responsible_ids is not None:
        parts.append(f"h.responsible_id IN ({marks(query.responsible_ids)})")
        params += query.responsible_ids
    long_terms = [term for term in query.search if len(term) >= TRIGRAM]
    conditions, values = dialect.hazard_search(engine, long_terms, _fts_phrase)
    parts += conditions
    params += values
    for term in query.search:
        if len(term) < TRIGRAM:
            needle = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append(
                "(h.description LIKE ? ESCAPE '\\' OR COALESCE(h.place, '') LIKE ? ESCAPE '\\')"
            )
            params += [f"%{needle}%", f"%{needle}%"]
    return " AND ".join(parts) or "1 = 1", params


@dataclass(frozen=True, slots=True)
class HazardLine:
    id: int
    number: str
    unit_id: int
    category: str
    severity: str
    status: str
    description: str
    place: str
    deadline_at: str
    created_at: str
    reported_by: int
    responsible_id: int | None
    closed_at: str | None


_LINE = (
    "h.id, h.number, h.unit_id, h.category, h.severity, h.status, h.description, h.place,"
    " h.deadline_at, h.created_at, h.reported_by, h.responsible_id, h.closed_at"
)


def _line(r: Any) -> HazardLine:
    return HazardLine(
        id=int(r[0]),
        number=str(r[1] or f"#{r[0]}"),
        unit_id=int(r[2]),
        category=str(r[3]),
        severity=str(r[4]),
        status=str(r[5]),
        description=str(r[6]),
        place=str(r[7] or ""),
        deadline_at=str(r[8]),
        created_at=str(r[9]),
        reported_by=int(r[10]),
        responsible_id=int(r[11]) if r[11] is not None else None,
        closed_at=r[12],
    )


async def register(
    conn: Conn, query: HazardQuery, *, limit: int, offset: int
) -> tuple[list[HazardLine], int]:
    """One page of the register and how many hazards the whole view holds."""
    where, params = _where(query, dialect.engine_of(conn))
    rows = await fetch_all(
        conn,
        f"SELECT {_LINE} FROM hazards h WHERE {where} ORDER BY {_ORDER[query.sort]}"
        " LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await fetch_one(conn, f"SELECT COUNT(*) FROM hazards h WHERE {where}", params)
    return [_line(r) for r in rows], int(total[0])


@dataclass(frozen=True, slots=True)
class ExportLine:
    line: HazardLine
    measure: str
    funding: str
    interim_measures: str
    rectification: str
    accepted_by: int | None
    photos: tuple[str, ...]
    rectification_photos: tuple[str, ...]


async def register_export(conn: Conn, query: HazardQuery, limit: int) -> list[ExportLine]:
    """Every hazard of the view (up to `limit`), with what the spreadsheet shows besides."""
    where, params = _where(query, dialect.engine_of(conn))
    rows = await fetch_all(
        conn,
        f"SELECT {_LINE}, h.measure, h.funding, h.interim_measures, h.rectification,"
        " h.accepted_by, h.photo, h.photos, h.rectification_photos FROM hazards h"
        f" WHERE {where} ORDER BY {_ORDER[query.sort]} LIMIT ?",
        (*params, limit),
    )
    return [
        ExportLine(
            line=_line(r),
            measure=str(r[13] or ""),
            funding=str(r[14] or ""),
            interim_measures=str(r[15] or ""),
            rectification=str(r[16] or ""),
            accepted_by=r[17],
            photos=_photos(r[19], r[18]),
            rectification_photos=_photos(r[20]),
        )
        for r in rows
    ]


def _photos(value: str | None, *single: str | None) -> tuple[str, ...]:
    found = [p for p in single if p]
    if value:
        found += [str(p) for p in json.loads(value)]
    return tuple(dict.fromkeys(found))


# -- one hazard ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HazardCard:
    line: HazardLine
    source: str
    lat: float | None
    lon: float | None
    measure: str
    funding: str | None
    assigned_by: int | None
    interim_measures: str
    proposed_deadline_at: str | None
    rectification: str
    accepted_by: int | None
    repeat_of: int | None
    failed_rectification: bool
    photos: tuple[str, ...]
    rectification_photos: tuple[str, ...]


async def hazard(conn: Conn, number: str) -> HazardCard | None:
    r = await fetch_one(
        conn,
        f"SELECT {_LINE}, h.source, h.lat, h.lon, h.measure, h.funding, h.assigned_by,"
        " h.interim_measures, h.proposed_deadline_at, h.rectification, h.accepted_by,"
        " h.repeat_of, h.failed_rectification, h.photo, h.photos, h.rectification_photos"
        " FROM hazards h WHERE h.number = ?",
        (number.strip().upper(),),
    )
    if r is None:
        return None
    return HazardCard(
        line=_line(r),
        source=str(r[13]),
        lat=r[14],
        lon=r[15],
        measure=str(r[16] or ""),
        funding=r[17],
        assigned_by=r[18],
        interim_measures=str(r[19] or ""),
        proposed_deadline_at=r[20],
        rectification=str(r[21] or ""),
        accepted_by=r[22],
        repeat_of=r[23],
        failed_rectification=bool(r[24]),
        photos=_photos(r[26], r[25]),
        rectification_photos=_photos(r[27]),
    )


async def history(conn: Conn, hazard_id: int) -> list[HistoryEntry]:
    rows = await fetch_all(
        conn,
        "SELECT a.at, a.action, s.name, a.detail FROM audit_log a"
        " LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = 'hazard' AND a.entity_id = ? ORDER BY a.id",
        (hazard_id,),
    )
    return [HistoryEntry(str(r[0]), str(r[1]), r[2], json.loads(r[3] or "{}")) for r in rows]


async def histories(conn: Conn, hazard_ids: Sequence[int]) -> dict[int, list[HistoryEntry]]:
    """The audit trails of many hazards at once (for an export), oldest first."""
    found: dict[int, list[HistoryEntry]] = {}
    ids = list(hazard_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await fetch_all(
            conn,
            "SELECT a.entity_id, a.at, a.action, s.name FROM audit_log a"
            " LEFT JOIN staff s ON s.id = a.actor_id"
            f" WHERE a.entity = 'hazard' AND a.entity_id IN ({marks(chunk)}) ORDER BY a.id",
            chunk,
        )
        for r in rows:
            found.setdefault(int(r[0]), []).append(HistoryEntry(str(r[1]), str(r[2]), r[3]))
    return found


async def orders(conn: Conn, hazard_id: int) -> list[Order]:
    rows = await fetch_all(
        conn,
        f"SELECT {ORDER_COLUMNS} FROM rectification_orders WHERE hazard_id = ? ORDER BY id",
        (hazard_id,),
    )
    return [order_from_row(r) for r in rows]


async def hazard_numbers(conn: Conn, ids: Sequence[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await fetch_all(
        conn, f"SELECT id, number FROM hazards WHERE id IN ({marks(wanted)})", wanted
    )
    return {int(r[0]): str(r[1]) for r in rows}
