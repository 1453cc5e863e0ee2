"""The hazard register (隐患台账). Every change of a hazard is audited."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from bot.hazard_rules import Status, hazard_number
from bot.store import audit, dialect


@dataclass(frozen=True, slots=True)
class Hazard:
    """One hazard of the register as it stands (the four fixes once set)."""

    id: int
    number: str
    unit_id: int
    reported_by: int
    source: str
    description: str
    severity: str
    status: Status
    deadline_at: str
    created_at: str
    category: str
    place: str | None
    lat: float | None
    lon: float | None
    # The report's photos (media paths), first one first.
    photos: tuple[str, ...]
    repeat_of: int | None
    failed_rectification: bool
    responsible_id: int | None
    assigned_by: int | None
    measure: str | None
    funding: str | None  # decimal CNY as text; '0' when none is needed
    rectification: str | None
    rectification_photos: tuple[str, ...]
    interim_measures: str | None
    proposed_deadline_at: str | None
    accepted_by: int | None
    closed_at: str | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One audited change of a hazard: when, what, by whom (their name), and its detail."""

    at: str
    action: str
    actor: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Order:
    """A rectification order (整改通知书) as issued."""

    number: str
    hazard_id: int
    issued_at: str
    issued_by: int
    deadline_at: str
    requirement: str


def _paths(value: Any, single: Any = None) -> tuple[str, ...]:
    found = [str(p) for p in json.loads(str(value))] if value else []
    return tuple(found or ([str(single)] if single else []))


def _optional_int(value: Any) -> int | None:
    return int(value) if value else None


def _hazard(row: sqlite3.Row) -> Hazard:
    return Hazard(
        id=int(row["id"]),
        number=str(row["number"] or f"#{row['id']}"),
        unit_id=int(row["unit_id"]),
        reported_by=int(row["reported_by"]),
        source=str(row["source"]),
        description=str(row["description"]),
        severity=str(row["severity"]),
        status=Status(row["status"]),
        deadline_at=str(row["deadline_at"]),
        created_at=str(row["created_at"]),
        category=str(row["category"]),
        place=row["place"],
        lat=None if row["lat"] is None else float(row["lat"]),
        lon=None if row["lon"] is None else float(row["lon"]),
        photos=_paths(row["photos"], row["photo"]),
        repeat_of=_optional_int(row["repeat_of"]),
        failed_rectification=bool(row["failed_rectification"]),
        responsible_id=_optional_int(row["responsible_id"]),
        assigned_by=_optional_int(row["assigned_by"]),
        measure=row["measure"],
        funding=None if row["funding"] is None else str(row["funding"]),
        rectification=row["rectification"],
        rectification_photos=_paths(row["rectification_photos"]),
        interim_measures=row["interim_measures"],
        proposed_deadline_at=row["proposed_deadline_at"],
        accepted_by=_optional_int(row["accepted_by"]),
        closed_at=row["closed_at"],
    )


def create(
    conn: sqlite3.Connection,
    *,
    unit_id: int,
    reported_by: int,
    source: str,
    description: str,
    photo: str | None,
    severity: str,
    deadline_at: str,
    now: str,
    year: int | None = None,
    category: str = "other",
    place: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    photos: list[str] | None = None,
    repeat_of: int | None = None,
    failed_rectification: bool = False,
) -> int:
    """Record a hazard and give it the next register number of its (local) year."""
    number = hazard_number(year or int(now[:4]), next_number(conn, "YH", year or int(now[:4])))
    every_photo = photos if photos is not None else ([photo] if photo else [])
    cursor = conn.execute(
        "INSERT INTO hazards (unit_id, reported_by, source, description, photo, severity, status,"
        " deadline_at, created_at, number, category, place, lat, lon, photos, repeat_of,"
        " failed_rectification) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING *",
        (
            unit_id,
            reported_by,
            source,
            description,
            every_photo[0] if every_photo else None,
            severity,
            deadline_at,
            now,
            number,
            category,
            place,
            lat,
            lon,
            json.dumps(every_photo) if every_photo else None,
            repeat_of,
            int(failed_rectification),
        ),
    )
    hazard = _hazard(cursor.fetchone())
    hazard_id = hazard.id
    # The caller reads it next (to alert people): not again from the server.
    dialect.keep(conn, "hazards", hazard_id, hazard)
    audit.record(
        conn,
        at=now,
        actor_id=reported_by,
        entity="hazard",
        entity_id=hazard_id,
        action="reported",
        detail={
            "number": number,
            "source": source,
            "severity": severity,
            "category": category,
            "deadline_at": deadline_at,
            **({"repeat_of": repeat_of} if repeat_of else {}),
        },
    )
    return hazard_id


def next_number(conn: sqlite3.Connection, register: str, year: int) -> int:
    """The next sequence number of a register in a year (1, 2, ...). Numbers
    never repeat, and a transaction that fails leaves its number to the next
    taker (on PostgreSQL, see below, unless a later number was taken since)."""
    if dialect.engine_of(conn) != "postgresql":
        row = conn.execute(
            "INSERT INTO register_counters (register, year, last) VALUES (?, ?, 1)"
            " ON CONFLICT (register, year) DO UPDATE SET last = register_counters.last + 1"
            " RETURNING last",
            (register, year),
        ).fetchone()
        return int(row[0])
    # PostgreSQL (migration 0019): the number is a row inserted outside the caller's
    # transaction and committed at once, so a report does not hold the counter until
    # it commits (every report behind it waited); if the report does not commit, the
    # row is deleted again while no later number was taken. A number is then skipped
    # only if its process dies before the report commits, or the report fails after
    # a later one took the next number.
    pg = cast(Any, conn)
    params = (register, year, register, year)
    while True:
        row = pg.outside(
            "INSERT INTO register_counters (register, year, last)"
            " SELECT ?, ?, COALESCE(MAX(last), 0) + 1 FROM register_counters"
            " WHERE register = ? AND year = ? ON CONFLICT DO NOTHING RETURNING last",
            params,
        )
        if row is not None:  # else another taker inserted the same number first
            break
    number = int(row[0])
    pg.undo_outside(
        "DELETE FROM register_counters WHERE register = ? AND year = ? AND last = ?"
        " AND NOT EXISTS (SELECT 1 FROM register_counters"
        " WHERE register = ? AND year = ? AND last > ?)",
        (register, year, number, register, year, number),
    )
    return number


def numbers(conn: sqlite3.Connection, hazard_ids: list[int]) -> dict[int, str]:
    if not hazard_ids:
        return {}
    marks = ",".join("?" * len(hazard_ids))
    rows = conn.execute(
        f"SELECT id, number FROM hazards WHERE id IN ({marks})", hazard_ids
    ).fetchall()
    return {int(row["id"]): str(row["number"]) for row in rows}


def get(conn: sqlite3.Connection, hazard_id: int) -> Hazard | None:
    def read() -> Hazard | None:
        row = conn.execute("SELECT * FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
        return _hazard(row) if row is not None else None

    return dialect.remember(conn, "hazards", hazard_id, read)


def by_number(conn: sqlite3.Connection, number: str) -> Hazard | None:
    return by_number_ahead(conn, number)()


def by_number_ahead(conn: sqlite3.Connection, number: str) -> Callable[[], Hazard | None]:
    """by_number(), asked now and read when called: on PostgreSQL the read goes
    with the transaction's next round trip (a desk action's, for who acts)."""
    cursor = dialect.ahead(
        conn, "SELECT * FROM hazards WHERE number = ?", (number.strip().upper(),)
    )

    def read() -> Hazard | None:
        row = cursor.fetchone()
        return _hazard(row) if row is not None else None

    return read


# Columns an action may set besides the status.
_SETTABLE = frozenset(
    {
        "responsible_id",
        "assigned_by",
        "measure",
        "deadline_at",
        "funding",
        "rectification",
        "rectification_photos",
        "interim_measures",
        "proposed_deadline_at",
        "accepted_by",
        "closed_at",
    }
)


def apply(
    conn: sqlite3.Connection,
    hazard_id: int,
    *,
    expected: str,
    status: str,
    actor_id: int,
    action: str,
    now: str,
    changes: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Move a hazard from `expected` to `status`, setting `changes`, and audit
    it (who, what, when, old -> new). False, and nothing written, if the
    hazard is no longer in `expected` (someone else acted first)."""
    changes = changes or {}
    unknown = set(changes) - _SETTABLE
    if unknown:
        raise ValueError(f"not hazard columns an action sets: {sorted(unknown)}")
    sets = "".join(f", {column} = ?" for column in changes)
    moved = conn.execute(
        f"UPDATE hazards SET status = ?{sets} WHERE id = ? AND status = ? RETURNING *",
        (status, *changes.values(), hazard_id, expected),
    ).fetchone()
    if moved is None:
        return False
    # The caller reads it next (its card, its alerts): not again from the server.
    dialect.keep(conn, "hazards", hazard_id, _hazard(moved))
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="hazard",
        entity_id=hazard_id,
        action=action,
        detail={"from": expected, "to": status, **(detail or {})},
    )
    return True


def note(
    conn: sqlite3.Connection,
    hazard_id: int,
    *,
    actor_id: int,
    action: str,
    now: str,
    detail: dict[str, Any],
) -> None:
    """Something said about a hazard that does not change it (a repeat report added to it)."""
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="hazard",
        entity_id=hazard_id,
        action=action,
        detail=detail,
    )


def history(conn: sqlite3.Connection, hazard_id: int) -> list[HistoryEntry]:
    """The hazard's audit trail, oldest first, with the actor's name."""
    rows = conn.execute(
        "SELECT a.at, a.action, s.name, a.detail FROM audit_log a"
        " LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = 'hazard' AND a.entity_id = ? ORDER BY a.id",
        (hazard_id,),
    ).fetchall()
    return [HistoryEntry(str(r[0]), str(r[1]), r[2], json.loads(r[3] or "{}")) for r in rows]


OPEN_STATES = ("open", "assigned", "in_progress", "extension_requested", "submitted")
_OPEN_MARKS = ",".join(f"'{state}'" for state in OPEN_STATES)


def repeat_candidates(
    conn: sqlite3.Connection, unit_id: int, category: str, closed_since: str, limit: int = 200
) -> list[sqlite3.Row]:
    """Hazards of a unit and category a new report may repeat: open ones, and
    those closed since `closed_since`; newest first."""
    return conn.execute(
        "SELECT id, number, status, description, place, lat, lon, closed_at FROM hazards"
        f" WHERE unit_id = ? AND category = ? AND (status IN ({_OPEN_MARKS}) OR closed_at >= ?)"
        " ORDER BY id DESC LIMIT ?",
        (unit_id, category, closed_since, limit),
    ).fetchall()


def add_photos(conn: sqlite3.Connection, hazard_id: int, paths: list[str]) -> None:
    row = conn.execute("SELECT photos FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
    every = [*json.loads(row["photos"] or "[]"), *paths] if row else paths
    conn.execute("UPDATE hazards SET photos = ? WHERE id = ?", (json.dumps(every), hazard_id))


def flag_failed_rectification(conn: sqlite3.Connection, hazard_id: int) -> None:
    conn.execute("UPDATE hazards SET failed_rectification = 1 WHERE id = ?", (hazard_id,))


def issue_order(
    conn: sqlite3.Connection,
    *,
    hazard_id: int,
    issued_by: int,
    deadline_at: str,
    requirement: str,
    now: str,
    year: int,
) -> str:
    """A rectification order (整改通知书) with the next ZG number of the year."""
    number = f"ZG-{year}-{next_number(conn, 'ZG', year):03d}"
    conn.execute(
        "INSERT INTO rectification_orders (number, hazard_id, issued_by, issued_at, deadline_at,"
        " requirement) VALUES (?, ?, ?, ?, ?, ?)",
        (number, hazard_id, issued_by, now, deadline_at, requirement),
    )
    return number


ORDER_COLUMNS = "number, hazard_id, issued_at, issued_by, deadline_at, requirement"


def order_from_row(r: Any) -> Order:
    return Order(str(r[0]), int(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]))


def orders(conn: sqlite3.Connection, hazard_id: int) -> list[Order]:
    rows = conn.execute(
        f"SELECT {ORDER_COLUMNS} FROM rectification_orders WHERE hazard_id = ? ORDER BY id",
        (hazard_id,),
    ).fetchall()
    return [order_from_row(r) for r in rows]


def order_by_number(conn: sqlite3.Connection, number: str) -> Order | None:
    """One rectification order as issued, for its printable copy."""
    row = conn.execute(
        f"SELECT {ORDER_COLUMNS} FROM rectification_orders WHERE number = ?",
        (number.strip().upper(),),
    ).fetchone()
    return order_from_row(row) if row is not None else None


# Open states in which the deadline is still the responsible person's to meet
# (a submitted rectification waits for acceptance, not for them).
CHASED_STATES = ("open", "assigned", "in_progress", "extension_requested")
_CHASED_MARKS = ",".join(f"'{state}'" for state in CHASED_STATES)


def listing(
    conn: sqlite3.Connection,
    *,
    person_id: int | None = None,
    unit_ids: list[int] | None = None,
    every_unit: bool = False,
    overdue_at: str | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[sqlite3.Row]:
    """Hazards newest first: those `person_id` reported or must fix (open or
    not), and the open ones of `unit_ids` (or of `every_unit`); with
    `overdue_at`, only those past their deadline still waiting on someone."""
    if overdue_at is not None:
        scope = f"status IN ({_CHASED_MARKS}) AND deadline_at < ?"
        params: list[object] = [overdue_at]
    else:
        scope = f"status IN ({_OPEN_MARKS})"
        params = []
    ors: list[str] = []
    if every_unit:
        ors.append("1 = 1")
    elif unit_ids:
        ors.append(f"unit_id IN ({','.join('?' * len(unit_ids))})")
        params += unit_ids
    mine = ""
    if person_id is not None and overdue_at is None:
        mine = " OR reported_by = ? OR responsible_id = ?"
    where = f"({scope} AND ({' OR '.join(ors) or '1 = 0'})){mine}"
    if person_id is not None and overdue_at is None:
        params += [person_id, person_id]
    sql = (
        "SELECT id, number, unit_id, description, status, severity, deadline_at FROM hazards"
        f" WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?"
    )
    return conn.execute(sql, [*params, limit, offset]).fetchall()
