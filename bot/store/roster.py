"""Roster writes, from a file or a directory sync: units created from their paths,
staff matched, created, updated or deactivated, channel identities bound, and every
change audited. It trusts entries already validated by `bot.roster` (or planned by
`bot.wecom_sync`) and must not read files or decide what is valid."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.store import audit, outbox

# The roster column an identity comes from, per channel: what an admin sees in the file.
IDENTITY_COLUMNS = {"telegram": "telegram_id", "wecom": "wecom_userid"}
_PERSON_COLUMNS = (
    "SELECT id, name, phone, phone_display, employee_no, unit_id, roles, language, active"
    " FROM staff"
)


@dataclass(frozen=True, slots=True)
class StaffEntry:
    """One validated roster row, as the store needs it."""

    line: int
    name: str
    phone: str  # normalised, '+8613800000001'
    unit: str  # a clean path, '物业服务中心/保安部/一班'
    roles: str  # comma-separated Role values, sorted and deduplicated
    language: str
    employee_no: str | None = None
    telegram_id: str | None = None
    wecom_userid: str | None = None
    phone_display: str | None = None  # as the file wrote it, '138-0000-0001'; None: not kept

    def identities(self) -> list[tuple[str, str]]:
        found = [("telegram", self.telegram_id), ("wecom", self.wecom_userid)]
        return [(channel, user_id) for channel, user_id in found if user_id]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A row that contradicts the people already stored. `kind` is one of
    'match_conflict', 'phone_taken', 'same_person', 'identity_taken'."""

    line: int
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RosterResult:
    created: int
    updated: int
    deactivated: int
    units_created: int


@dataclass(frozen=True, slots=True)
class StoredPerson:
    """A stored person as a directory sync sees them: `unit` is the unit's path,
    `user_ids` the identities bound on the synced channel."""

    id: int
    name: str
    phone: str
    unit: str
    roles: str
    language: str
    active: bool
    user_ids: tuple[str, ...]


def ensure_unit(conn: sqlite3.Connection, path: str, now: str) -> int:
    """The id of the unit at `path`, creating it and any missing ancestors."""
    segments = path.split("/")
    if not all(segment and segment == segment.strip() for segment in segments):
        raise ValueError(f"invalid unit path {path!r}")
    unit_id: int | None = None
    for depth, name in enumerate(segments, start=1):
        prefix = "/".join(segments[:depth])
        row = conn.execute("SELECT id FROM units WHERE path = ?", (prefix,)).fetchone()
        if row is not None:
            unit_id = int(row[0])
            continue
        cursor = conn.execute(
            "INSERT INTO units (parent_id, name, path, timezone, created_at)"
            " VALUES (?, ?, ?, NULL, ?)",
            (unit_id, name, prefix, now),
        )
        assert cursor.lastrowid is not None
        unit_id = cursor.lastrowid
    assert unit_id is not None
    return unit_id


def find_conflicts(conn: sqlite3.Connection, entries: Sequence[StaffEntry]) -> list[Conflict]:
    """Rows that cannot be applied to the stored people, in row order."""
    conflicts: list[Conflict] = []
    matched_at: dict[int, int] = {}
    for entry in entries:
        person, conflict = _match(conn, entry)
        if conflict is not None:
            conflicts.append(conflict)
            continue
        staff_id: int | None = None
        if person is not None:
            staff_id = int(person["id"])
            if staff_id in matched_at:
                params = {"first_line": matched_at[staff_id], "name": person["name"]}
                conflicts.append(Conflict(entry.line, "same_person", params))
            else:
                matched_at[staff_id] = entry.line
        for channel, user_id in entry.identities():
            owner = conn.execute(
                "SELECT s.id, s.name FROM channel_identities AS ci"
                " JOIN staff AS s ON s.id = ci.staff_id"
                " WHERE ci.channel = ? AND ci.user_id = ?",
                (channel, user_id),
            ).fetchone()
            if owner is not None and owner["id"] != staff_id:
                params = {
                    "column": IDENTITY_COLUMNS[channel],
                    "value": user_id,
                    "name": owner["name"],
                }
                conflicts.append(Conflict(entry.line, "identity_taken", params))
    return conflicts


def apply_roster(
    conn: sqlite3.Connection,
    entries: Sequence[StaffEntry],
    *,
    deactivate_missing: bool,
    now: str,
) -> RosterResult:
    """Create or update everyone in `entries` (and, if asked, deactivate every
    active person not in them). Call `find_conflicts` first in the same
    transaction: a conflicting entry raises ValueError here."""
    units_before = _count_units(conn)
    # Match against the stored people as they were before this import, so that
    # one row's update cannot change whom a later row refers to.
    plan: list[tuple[StaffEntry, sqlite3.Row | None]] = []
    for entry in entries:
        person, conflict = _match(conn, entry)
        if conflict is not None:
            raise ValueError(f"roster line {entry.line} conflicts ({conflict.kind})")
        plan.append((entry, person))

    created = updated = deactivated = 0
    kept: set[int] = set()
    for entry, person in plan:
        unit_id = ensure_unit(conn, entry.unit, now)
        if person is None:
            staff_id = _create(conn, entry, unit_id, now)
            created += 1
        else:
            staff_id = int(person["id"])
            if _update(conn, person, entry, unit_id, now):
                updated += 1
        kept.add(staff_id)

    if deactivate_missing:
        for row in conn.execute("SELECT id FROM staff WHERE active = 1 ORDER BY id").fetchall():
            if int(row["id"]) not in kept:
                deactivate_staff(conn, int(row["id"]), now)
                deactivated += 1

    return RosterResult(created, updated, deactivated, _count_units(conn) - units_before)


def deactivate_staff(
    conn: sqlite3.Connection,
    staff_id: int,
    now: str,
    *,
    reason: str = "missing_from_roster",
    actor_id: int | None = None,
) -> None:
    """End a person's access at once: inactive, no conversation to resume,
    nothing still queued for them sent, no desk session left open.
    `actor_id`: the admin who did it (None: an import or a sync)."""
    conn.execute("UPDATE staff SET active = 0, updated_at = ? WHERE id = ?", (now, staff_id))
    conn.execute("DELETE FROM conversations WHERE staff_id = ?", (staff_id,))
    conn.execute("DELETE FROM desk_sessions WHERE staff_id = ?", (staff_id,))
    outbox.cancel_for(conn, staff_id, f"deactivated: {reason}")
    _audit(conn, staff_id, "deactivated", {"reason": reason}, now, actor_id)


# -- directory sync (WeCom) -------------------------------------------------------------


def people_for_sync(conn: sqlite3.Connection, channel: str) -> list[StoredPerson]:
    """Everyone stored, active or not, with their identities on `channel`."""
    bound: dict[int, list[str]] = {}
    for row in conn.execute(
        "SELECT staff_id, user_id FROM channel_identities WHERE channel = ? ORDER BY user_id",
        (channel,),
    ):
        bound.setdefault(int(row[0]), []).append(str(row[1]))
    rows = conn.execute(
        "SELECT s.id, s.name, s.phone, u.path, s.roles, s.language, s.active"
        " FROM staff AS s JOIN units AS u ON u.id = s.unit_id ORDER BY s.id"
    ).fetchall()
    return [
        StoredPerson(
            id=int(row[0]),
            name=str(row[1]),
            phone=str(row[2]),
            unit=str(row[3]),
            roles=str(row[4]),
            language=str(row[5]),
            active=bool(row[6]),
            user_ids=tuple(bound.get(int(row[0]), ())),
        )
        for row in rows
    ]


def unit_paths(conn: sqlite3.Connection) -> set[str]:
    return {str(row[0]) for row in conn.execute("SELECT path FROM units")}


def apply_sync(
    conn: sqlite3.Connection,
    *,
    units: Sequence[str],
    creates: Sequence[StaffEntry],
    updates: Sequence[tuple[int, StaffEntry]],
    deactivations: Sequence[int],
    source: str,
    now: str,
) -> RosterResult:
    """Apply a directory sync planned against the people as stored in this same
    transaction: units created, people created or updated (every column from
    their entry, their identity on its channel replacing older ones), people
    deactivated. Each change is audited with `source` ('wecom')."""
    units_before = _count_units(conn)
    for path in units:
        ensure_unit(conn, path, now)
    updated = 0
    for staff_id, entry in updates:
        person = conn.execute(f"{_PERSON_COLUMNS} WHERE id = ?", (staff_id,)).fetchone()
        if person is None:
            raise ValueError(f"no staff member {staff_id}")
        unit_id = ensure_unit(conn, entry.unit, now)
        if _update(conn, person, entry, unit_id, now, source=source):
            updated += 1
    for entry in creates:
        _create(conn, entry, ensure_unit(conn, entry.unit, now), now, source=source)
    for staff_id in deactivations:
        deactivate_staff(conn, staff_id, now, reason=f"missing_from_{source}")
    return RosterResult(
        len(creates), updated, len(deactivations), _count_units(conn) - units_before
    )


def remove_groups(conn: sqlite3.Connection, channel: str, unit_id: int) -> int:
    """Unbind every `channel` alert group of the unit; how many there were.
    (Binding is `bot.store.people.bind_group`.)"""
    cursor = conn.execute(
        "DELETE FROM alert_groups WHERE channel = ? AND unit_id = ?", (channel, unit_id)
    )
    return cursor.rowcount


def _match(
    conn: sqlite3.Connection, entry: StaffEntry
) -> tuple[sqlite3.Row | None, Conflict | None]:
    """The stored person a row refers to: by employee number if it has one, else by phone."""
    by_phone = conn.execute(f"{_PERSON_COLUMNS} WHERE phone = ?", (entry.phone,)).fetchone()
    by_number = None
    if entry.employee_no is not None:
        by_number = conn.execute(
            f"{_PERSON_COLUMNS} WHERE employee_no = ?", (entry.employee_no,)
        ).fetchone()
    if by_number is not None:
        if by_phone is not None and by_phone["id"] != by_number["id"]:
            params = {
                "employee_no": entry.employee_no,
                "name": by_number["name"],
                "other": by_phone["name"],
            }
            return None, Conflict(entry.line, "match_conflict", params)
        return by_number, None
    if by_phone is not None:
        stored_number = by_phone["employee_no"]
        if entry.employee_no is not None and stored_number is not None:
            # The phone belongs to someone filed under another number: a reused
            # phone or a typo, and guessing would merge two people.
            params = {"employee_no": stored_number, "name": by_phone["name"]}
            return None, Conflict(entry.line, "phone_taken", params)
        return by_phone, None
    return None, None


def _create(
    conn: sqlite3.Connection,
    entry: StaffEntry,
    unit_id: int,
    now: str,
    *,
    source: str | None = None,
) -> int:
    cursor = conn.execute(
        "INSERT INTO staff (name, phone, phone_display, employee_no, unit_id, roles, language,"
        " active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (
            entry.name,
            entry.phone,
            entry.phone_display,
            entry.employee_no,
            unit_id,
            entry.roles,
            entry.language,
            now,
            now,
        ),
    )
    assert cursor.lastrowid is not None
    staff_id = cursor.lastrowid
    for channel, user_id in entry.identities():
        _bind(conn, staff_id, channel, user_id)
    detail: dict[str, Any] = {
        "name": entry.name,
        "unit": entry.unit,
        "roles": entry.roles,
        "language": entry.language,
    }
    for key in ("employee_no", "telegram_id", "wecom_userid"):
        if getattr(entry, key) is not None:
            detail[key] = getattr(entry, key)
    if source is not None:
        detail["source"] = source
    _audit(conn, staff_id, "created", detail, now)
    return staff_id


def _update(
    conn: sqlite3.Connection,
    person: sqlite3.Row,
    entry: StaffEntry,
    unit_id: int,
    now: str,
    *,
    source: str | None = None,
) -> bool:
    """Bring a stored person in line with their row; False if nothing changed."""
    staff_id = int(person["id"])
    changes: dict[str, Any] = {}
    for key in ("name", "roles", "language"):
        if person[key] != getattr(entry, key):
            changes[key] = [person[key], getattr(entry, key)]
    if entry.employee_no is not None and person["employee_no"] != entry.employee_no:
        changes["employee_no"] = [person["employee_no"], entry.employee_no]
    if person["unit_id"] != unit_id:
        old_unit = conn.execute("SELECT path FROM units WHERE id = ?", (person["unit_id"],))
        changes["unit"] = [old_unit.fetchone()[0], entry.unit]
    # A sync that does not say how the number is written keeps the roster's
    # spelling of the same number; a new number drops it.
    shown = entry.phone_display
    if shown is None and person["phone"] == entry.phone:
        shown = person["phone_display"]
    respelled = person["phone_display"] is not None and person["phone_display"] != shown
    if person["phone"] != entry.phone or respelled:
        # The audit log outlives the staff row; the number itself stays out of it.
        changes["phone"] = "changed"
    if not person["active"]:
        changes["active"] = [0, 1]

    if not changes and person["phone_display"] != shown:
        # How the number is written, first recorded (people imported before it was
        # kept): nothing anyone would call a change.
        conn.execute("UPDATE staff SET phone_display = ? WHERE id = ?", (shown, staff_id))
    if changes:
        conn.execute(
            "UPDATE staff SET name = ?, phone = ?, phone_display = ?, employee_no = ?,"
            " unit_id = ?, roles = ?, language = ?, active = 1, updated_at = ? WHERE id = ?",
            (
                entry.name,
                entry.phone,
                shown,
                entry.employee_no if entry.employee_no is not None else person["employee_no"],
                unit_id,
                entry.roles,
                entry.language,
                now,
                staff_id,
            ),
        )

    for channel, user_id in entry.identities():
        bound = [
            row[0]
            for row in conn.execute(
                "SELECT user_id FROM channel_identities WHERE staff_id = ? AND channel = ?",
                (staff_id, channel),
            )
        ]
        if bound == [user_id]:
            continue
        # The roster is the authority for this channel: an old account of the
        # person must not keep acting as them.
        conn.execute(
            "DELETE FROM channel_identities WHERE staff_id = ? AND channel = ? AND user_id <> ?",
            (staff_id, channel, user_id),
        )
        if user_id not in bound:
            _bind(conn, staff_id, channel, user_id)
        changes[IDENTITY_COLUMNS[channel]] = [",".join(bound) or None, user_id]

    if changes:
        detail = changes if source is None else {**changes, "source": source}
        _audit(conn, staff_id, "updated", detail, now)
    return bool(changes)


def _bind(conn: sqlite3.Connection, staff_id: int, channel: str, user_id: str) -> None:
    conn.execute(
        "INSERT INTO channel_identities (channel, user_id, staff_id) VALUES (?, ?, ?)",
        (channel, user_id, staff_id),
    )


def _audit(
    conn: sqlite3.Connection,
    staff_id: int,
    action: str,
    detail: dict[str, Any],
    now: str,
    actor_id: int | None = None,
) -> None:
    audit.record(
        conn,
        at=now,
        actor_id=actor_id,
        entity="staff",
        entity_id=staff_id,
        action=action,
        detail=detail,
    )


def _count_units(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM units").fetchone()[0])
