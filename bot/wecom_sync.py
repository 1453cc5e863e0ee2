"""The WeCom directory sync: departments become units, active members become staff
with their 'wecom' identity bound, and people whose WeCom account is gone are
deactivated. `plan_sync` is pure (directory and stored people in, changes out);
`sync_directory` fetches, plans and applies in one transaction. Also what a group
robot's webhook key looks like. No SQL here."""

from __future__ import annotations

import logging
import re
import sqlite3
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.channels.wecom.api import Department, Member, WeComAPI
from bot.channels.wecom.transport import ROBOT_CHANNEL as ROBOT_CHANNEL
from bot.clock import iso
from bot.i18n import t
from bot.model import Role
from bot.roster import MAX_NAME, normalize_phone
from bot.store import roster as store
from bot.store.db import Database
from bot.store.roster import StaffEntry, StoredPerson

log = logging.getLogger(__name__)

CHANNEL = "wecom"
ACTIVE = 1  # a member's WeCom status: 1 active, 2 disabled, 4 not activated, 5 left
# staff.phone is NOT NULL UNIQUE, and WeCom hides mobiles from apps created after
# June 2022. A member without one is filed under this, which no real phone (always
# '+digits' once normalised) can equal, so no sign-in by phone can match it.
PLACEHOLDER_PREFIX = "wecom:"
# A unit's alert group on WeCom: a group robot, addressed by its webhook key. The
# channel name is the one the WeCom transport delivers 'wecom_robot' rows through.
ROBOT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{6,62}[A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class Change:
    """One column of a person that the sync changes: 'name', 'unit', 'phone',
    'active' or 'wecom_userid' (old and new; phones are never shown)."""

    column: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class Update:
    staff_id: int
    name: str  # as stored before the sync, how the admin knows them
    entry: StaffEntry
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Departure:
    staff_id: int
    name: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """A member the sync could not (fully) apply; `key` is a catalog key."""

    userid: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SyncPlan:
    units: tuple[str, ...]  # unit paths to create, parents first
    created: tuple[StaffEntry, ...]
    updated: tuple[Update, ...]
    deactivated: tuple[Departure, ...]
    problems: tuple[Problem, ...]

    @property
    def changes_anything(self) -> bool:
        return bool(self.units or self.created or self.updated or self.deactivated)


class SyncError(Exception):
    """The sync was refused before anything changed; `key` is a catalog key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# -- planning (pure) ---------------------------------------------------------------------


def department_paths(departments: Sequence[Department]) -> dict[int, str]:
    """Each department's unit path: its names from the top down. The top is a
    department whose parent the application does not see (WeCom's root, id 1
    with parentid 0, or the top of a narrower visible scope)."""
    by_id = {d.id: d for d in departments}
    paths: dict[int, str] = {}

    def path(department: Department) -> str:
        chain: list[Department] = []
        current: Department | None = department
        while current is not None and current.id not in paths and current not in chain:
            chain.append(current)
            current = by_id.get(current.parentid) if current.parentid != current.id else None
        above = paths[current.id] if current is not None and current.id in paths else ""
        for item in reversed(chain):
            segment = _segment(item)
            above = f"{above}/{segment}" if above else segment
            paths[item.id] = above
        return paths[department.id]

    for department in departments:
        path(department)
    return paths


def plan_sync(
    departments: Sequence[Department],
    members: Sequence[Member],
    people: Sequence[StoredPerson],
    existing_units: Collection[str],
    *,
    default_language: str,
) -> SyncPlan:
    """What the sync changes: units for departments not stored yet; a person per
    active member (matched by their bound WeCom identity, then by mobile) created
    or brought in line with WeCom's name, unit and mobile, roles and language kept;
    people bound to a WeCom account that is no longer active, deactivated."""
    paths = department_paths(departments)
    by_identity = {user_id: p for p in people for user_id in p.user_ids}
    by_phone = {p.phone: p for p in people}
    listed: dict[str, Member] = {}
    for member in members:
        if member.status == ACTIVE:
            listed.setdefault(member.userid, member)

    claimed: dict[int, str] = {}  # staff id -> the member who is them
    new_phones: dict[str, str] = {}  # phone -> userid of a person this sync creates
    created: list[StaffEntry] = []
    updated: list[Update] = []
    problems: list[Problem] = []

    for userid, member in listed.items():
        person = by_identity.get(userid)
        if person is not None and person.id in claimed:
            params = {"other": person.name, "other_userid": claimed[person.id]}
            problems.append(Problem(userid, "wecom.same_person", params))
            continue
        if person is not None:
            claimed[person.id] = userid  # in the directory: never deactivated, even if skipped
        unit = next((paths[d] for d in member.department if d in paths), None)
        if unit is None:
            problems.append(Problem(userid, "wecom.no_department"))
            continue
        mobile = normalize_phone(member.mobile) if member.mobile else None
        placeholder = f"{PLACEHOLDER_PREFIX}{userid}"
        if person is None:
            # A placeholder matches too: the person an earlier sync filed for this
            # account, if their identity has since been unbound.
            holder = by_phone.get(mobile or placeholder)
            if holder is not None:
                other = claimed.get(holder.id) or next(
                    (u for u in holder.user_ids if u in listed and u != userid), None
                )
                if other is not None:
                    params = {"other": holder.name, "other_userid": other}
                    problems.append(Problem(userid, "wecom.phone_taken", params))
                    continue
                person = holder
                claimed[person.id] = userid
            elif mobile is not None and mobile in new_phones:
                params = {"other_userid": new_phones[mobile]}
                problems.append(Problem(userid, "wecom.phone_duplicate", params))
                continue
        name = _name(member.name)
        if person is None:
            phone = mobile or placeholder
            new_phones[phone] = userid
            created.append(
                StaffEntry(
                    line=0,
                    name=name or userid,
                    phone=phone,
                    unit=unit,
                    roles=Role.STAFF.value,
                    language=default_language,
                    wecom_userid=userid,
                )
            )
            continue
        phone = person.phone
        if mobile is not None and mobile != person.phone:
            holder = by_phone.get(mobile)
            if holder is not None or mobile in new_phones:
                other = holder.name if holder is not None else new_phones[mobile]
                problems.append(Problem(userid, "wecom.phone_kept", {"other": other}))
            else:
                phone = mobile
                new_phones[phone] = userid
        entry = StaffEntry(
            line=0,
            name=name or person.name,
            phone=phone,
            unit=unit,
            roles=person.roles,
            language=person.language,
            wecom_userid=userid,
        )
        changes = _changes(person, entry)
        if changes:
            updated.append(Update(person.id, person.name, entry, changes))

    deactivated = tuple(
        Departure(p.id, p.name, p.user_ids)
        for p in people
        if p.active and p.user_ids and p.id not in claimed
    )
    return SyncPlan(
        units=_new_units(paths.values(), existing_units),
        created=tuple(created),
        updated=tuple(updated),
        deactivated=deactivated,
        problems=tuple(problems),
    )


def _changes(person: StoredPerson, entry: StaffEntry) -> tuple[Change, ...]:
    changes: list[Change] = []
    if entry.name != person.name:
        changes.append(Change("name", person.name, entry.name))
    if entry.unit != person.unit:
        changes.append(Change("unit", person.unit, entry.unit))
    if entry.phone != person.phone:
        changes.append(Change("phone", None, None))
    if not person.active:
        changes.append(Change("active", None, None))
    if person.user_ids != (entry.wecom_userid,):
        changes.append(
            Change("wecom_userid", ",".join(person.user_ids) or None, entry.wecom_userid)
        )
    return tuple(changes)


def _new_units(paths: Collection[str], existing: Collection[str]) -> tuple[str, ...]:
    """Every path (and ancestor path) not stored yet, parents before children."""
    wanted: set[str] = set()
    for path in paths:
        segments = path.split("/")
        wanted.update("/".join(segments[:depth]) for depth in range(1, len(segments) + 1))
    return tuple(sorted(wanted - set(existing), key=lambda p: (p.count("/"), p)))


def _segment(department: Department) -> str:
    """A department name as one level of a unit path: '/' separates levels, so a
    name that has one gets the full-width '／'."""
    name = _clean(department.name).replace("/", "／")
    return name or str(department.id)


def _name(raw: str) -> str:
    return _clean(raw)[:MAX_NAME].strip()


def _clean(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc").strip()


# -- fetching and applying ---------------------------------------------------------------


async def fetch_directory(api: WeComAPI) -> tuple[list[Department], list[Member]]:
    """The departments and members the application may see."""
    departments = await api.departments()
    ids = {d.id for d in departments}
    members: dict[str, Member] = {}
    for top in (d for d in departments if d.parentid not in ids):
        for member in await api.users(top.id, fetch_child=True):
            members.setdefault(member.userid, member)
    return departments, list(members.values())


async def sync_directory(
    db: Database, api: WeComAPI, *, default_language: str, now: datetime, dry_run: bool
) -> SyncPlan:
    """Read WeCom's directory and bring units and people in line with it in one
    transaction (with `dry_run`, only say what would change). Raises WeComError
    when WeCom cannot be read, SyncError when what it answered must not be applied."""
    departments, members = await fetch_directory(api)
    if not any(member.status == ACTIVE for member in members):
        # An app whose visible scope was narrowed to nothing would deactivate everyone.
        raise SyncError("wecom.directory_empty")
    stamp = iso(now)

    def plan(conn: sqlite3.Connection) -> SyncPlan:
        return plan_sync(
            departments,
            members,
            store.people_for_sync(conn, CHANNEL),
            store.unit_paths(conn),
            default_language=default_language,
        )

    def apply(conn: sqlite3.Connection) -> SyncPlan:
        changes = plan(conn)
        store.apply_sync(
            conn,
            units=changes.units,
            creates=changes.created,
            updates=[(update.staff_id, update.entry) for update in changes.updated],
            deactivations=[departure.staff_id for departure in changes.deactivated],
            source=CHANNEL,
            now=stamp,
        )
        return changes

    result = await (db.read(plan) if dry_run else db.transaction(apply))
    log.info(
        "wecom sync dry_run=%s members=%d units_created=%d created=%d updated=%d"
        " deactivated=%d problems=%d",
        dry_run,
        len(members),
        len(result.units),
        len(result.created),
        len(result.updated),
        len(result.deactivated),
        len(result.problems),
    )
    return result


# -- the report --------------------------------------------------------------------------


def report(plan: SyncPlan, language: str, *, dry_run: bool) -> list[str]:
    """What the sync changed (or, dry, would change), one line each, then the total."""
    lines = [t(language, "wecom.unit_created", unit=unit) for unit in plan.units]
    lines += [
        t(language, "wecom.person_created", name=entry.name, unit=entry.unit)
        for entry in plan.created
    ]
    separator = t(language, "wecom.change_separator")
    for update in plan.updated:
        described = separator.join(_describe(change, language) for change in update.changes)
        lines.append(t(language, "wecom.person_updated", name=update.name, changes=described))
    lines += [
        t(language, "wecom.person_deactivated", name=departure.name)
        for departure in plan.deactivated
    ]
    lines += [
        t(language, "wecom.problem", userid=p.userid, reason=t(language, p.key, **p.params))
        for p in plan.problems
    ]
    if not plan.changes_anything:
        lines.append(t(language, "wecom.unchanged"))
        return lines
    counts = {
        "created": len(plan.created),
        "updated": len(plan.updated),
        "deactivated": len(plan.deactivated),
        "units": len(plan.units),
    }
    lines.append(t(language, "wecom.dry_run" if dry_run else "wecom.synced", **counts))
    return lines


def _describe(change: Change, language: str) -> str:
    key = {
        "name": "wecom.change_name",
        "unit": "wecom.change_unit",
        "phone": "wecom.change_phone",
        "active": "wecom.change_active",
        "wecom_userid": "wecom.change_identity",
    }[change.column]
    return t(language, key, old=change.old or "-", new=change.new or "-")


# -- group robots ------------------------------------------------------------------------


def robot_key(text: str) -> str | None:
    """The webhook key in `text` (the key itself, or the webhook URL an admin
    copied from the group's robot settings), or None if it does not look like one."""
    text = text.strip()
    query = parse_qs(urlsplit(text).query) if "?" in text else {}
    key = query.get("key", [text])[0]
    return key if ROBOT_KEY.fullmatch(key) else None
