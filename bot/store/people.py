"""Reads and small writes about people and units: who is behind a channel
identity, who supervises a unit, which channel reaches a person."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from bot.model import Role, Staff
from bot.store import dialect

STAFF_COLUMNS = (
    "s.id, s.name, s.phone, s.phone_display, s.employee_no, s.unit_id, s.roles, s.language,"
    " s.active"
)

# The unit (the statement's first parameter) and its ancestors, `depth` 0 nearest.
_CHAIN = (
    "WITH RECURSIVE chain(id, parent_id, depth) AS ("
    " SELECT id, parent_id, 0 FROM units WHERE id = ?"
    " UNION ALL SELECT u.id, u.parent_id, c.depth + 1"
    " FROM units u JOIN chain c ON u.id = c.parent_id)"
)


def staff_from_row(row: sqlite3.Row) -> Staff:
    return Staff(
        id=row["id"],
        name=row["name"],
        phone=row["phone"],
        employee_no=row["employee_no"],
        unit_id=row["unit_id"],
        roles=frozenset(Role(r) for r in row["roles"].split(",") if r),
        language=row["language"],
        active=bool(row["active"]),
        phone_display=row["phone_display"],
    )


def staff_by_identity(conn: sqlite3.Connection, channel: str, user_id: str) -> Staff | None:
    found = identify(conn, channel, user_id)
    return found.staff if found else None


@dataclass(frozen=True, slots=True)
class Identity:
    staff: Staff
    last_seen: str | None
    reachable: bool


def identify(conn: sqlite3.Connection, channel: str, user_id: str) -> Identity | None:
    """Who is behind a channel identity, when they were last seen there, and
    whether the channel still delivers to them."""
    row = conn.execute(
        f"SELECT {STAFF_COLUMNS}, i.last_seen_at, i.reachable FROM channel_identities i"
        " JOIN staff s ON s.id = i.staff_id WHERE i.channel = ? AND i.user_id = ?",
        (channel, user_id),
    ).fetchone()
    if row is None:
        return None
    return Identity(staff_from_row(row), row["last_seen_at"], bool(row["reachable"]))


def staff_by_id(conn: sqlite3.Connection, staff_id: int) -> Staff | None:
    def read() -> Staff | None:
        row = conn.execute(
            f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.id = ?", (staff_id,)
        ).fetchone()
        return staff_from_row(row) if row else None

    return dialect.remember(conn, "staff", staff_id, read)


def find_staff(conn: sqlite3.Connection, who: str) -> list[Staff]:
    """People matching a phone (any common spelling), an employee number or a name."""
    digits = "".join(ch for ch in who if ch.isdigit())
    phones = {who, f"+{digits}", f"+86{digits}"} if digits else {who}
    marks = ",".join("?" * len(phones))
    rows = conn.execute(
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.phone IN ({marks})"
        " OR s.employee_no = ? OR s.name = ? ORDER BY s.active DESC, s.id",
        (*phones, who, who),
    ).fetchall()
    return [staff_from_row(row) for row in rows]


def bind_identity(
    conn: sqlite3.Connection, channel: str, user_id: str, staff_id: int, now: str
) -> None:
    conn.execute(
        "INSERT INTO channel_identities (channel, user_id, staff_id, reachable, last_seen_at)"
        " VALUES (?, ?, ?, 1, ?) ON CONFLICT (channel, user_id)"
        " DO UPDATE SET staff_id = excluded.staff_id, last_seen_at = excluded.last_seen_at",
        (channel, user_id, staff_id, now),
    )


def touch_identity(conn: sqlite3.Connection, channel: str, user_id: str, now: str) -> None:
    """They wrote to us from here: seen now, and reachable again if they had blocked us."""
    conn.execute(
        "UPDATE channel_identities SET last_seen_at = ?, reachable = 1"
        " WHERE channel = ? AND user_id = ?",
        (now, channel, user_id),
    )


def mark_unreachable(conn: sqlite3.Connection, channel: str, user_id: str) -> Staff | None:
    """The channel refuses to deliver to this identity (the person blocked the
    bot); returns who it belonged to if it was reachable until now."""
    changed = conn.execute(
        "UPDATE channel_identities SET reachable = 0"
        " WHERE channel = ? AND user_id = ? AND reachable = 1",
        (channel, user_id),
    ).rowcount
    return staff_by_identity(conn, channel, user_id) if changed else None


def menu_signature(conn: sqlite3.Connection, channel: str, user_id: str) -> str | None:
    row = conn.execute(
        "SELECT menu FROM channel_identities WHERE channel = ? AND user_id = ?", (channel, user_id)
    ).fetchone()
    return row["menu"] if row else None


def set_menu_signature(conn: sqlite3.Connection, channel: str, user_id: str, menu: str) -> None:
    conn.execute(
        "UPDATE channel_identities SET menu = ? WHERE channel = ? AND user_id = ?",
        (menu, channel, user_id),
    )


def admins(conn: sqlite3.Connection) -> list[Staff]:
    return with_role(conn, Role.ADMIN)


def members(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    """The unit's own active staff (not its sub-units')."""
    rows = conn.execute(
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.unit_id = ? AND s.active = 1 ORDER BY s.id",
        (unit_id,),
    ).fetchall()
    return [staff_from_row(row) for row in rows]


def with_role(conn: sqlite3.Connection, role: Role) -> list[Staff]:
    """Every active member of staff who holds `role`."""
    holds, param = dialect.has_role(dialect.engine_of(conn), role.value)
    rows = conn.execute(
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.active = 1 AND {holds} ORDER BY s.id",
        (param,),
    ).fetchall()
    return [staff_from_row(row) for row in rows]


def active_by_phone(conn: sqlite3.Connection, phone: str) -> Staff | None:
    row = conn.execute(
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.phone = ? AND s.active = 1", (phone,)
    ).fetchone()
    return staff_from_row(row) if row else None


def bind_group(
    conn: sqlite3.Connection, channel: str, chat_id: str, unit_id: int, staff_id: int, now: str
) -> None:
    conn.execute(
        "INSERT INTO alert_groups (channel, chat_id, unit_id, bound_by, bound_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, chat_id) DO UPDATE SET"
        " unit_id = excluded.unit_id, bound_by = excluded.bound_by, bound_at = excluded.bound_at",
        (channel, chat_id, unit_id, staff_id, now),
    )


@dataclass(frozen=True, slots=True)
class GroupBinding:
    unit_id: int
    bound_by: int


def group_binding(conn: sqlite3.Connection, channel: str, chat_id: str) -> GroupBinding | None:
    """The unit a group chat is the alert group of, and who bound it; None if unbound."""
    row = conn.execute(
        "SELECT unit_id, bound_by FROM alert_groups WHERE channel = ? AND chat_id = ?",
        (channel, chat_id),
    ).fetchone()
    return GroupBinding(int(row["unit_id"]), int(row["bound_by"])) if row else None


def alert_groups(conn: sqlite3.Connection, unit_id: int) -> list[tuple[str, str, str]]:
    """Group chats bound to the unit or any unit above it, as (channel, chat
    id, language): a group reads the language of the supervisor who bound it."""
    return alert_groups_ahead(conn, unit_id)()


def alert_groups_ahead(
    conn: sqlite3.Connection, unit_id: int
) -> Callable[[], list[tuple[str, str, str]]]:
    """alert_groups(), asked now and read when called: on PostgreSQL the read goes
    with the transaction's next round trip (a report's, for its supervisors)."""
    cursor = dialect.ahead(
        conn,
        f"{_CHAIN} SELECT g.channel, g.chat_id, s.language FROM alert_groups g"
        " JOIN staff s ON s.id = g.bound_by WHERE g.unit_id IN (SELECT id FROM chain)"
        " ORDER BY g.channel, g.chat_id",
        (unit_id,),
    )
    return lambda: [(row["channel"], row["chat_id"], row["language"]) for row in cursor]


def set_language(conn: sqlite3.Connection, staff_id: int, language: str, now: str) -> None:
    conn.execute(
        "UPDATE staff SET language = ?, updated_at = ? WHERE id = ?", (language, now, staff_id)
    )


@dataclass(frozen=True, slots=True)
class UnitTree:
    """Every unit as one transaction saw it (rows of id, name, path, timezone,
    parent_id): a unit's chain, subtree and path without a read, where the
    engine keeps a copy of the tree for the process (dialect.unit_tree)."""

    units: dict[int, Any]
    children: dict[int, tuple[int, ...]]

    def chain(self, unit_id: int) -> list[Any]:
        rows: list[Any] = []
        row = self.units.get(unit_id)
        while row is not None and len(rows) <= len(self.units):  # a cycle cannot loop
            rows.append(row)
            parent = row["parent_id"]
            row = self.units.get(int(parent)) if parent is not None else None
        return rows

    def subtree(self, unit_id: int) -> list[int]:
        ids = [unit_id]
        for below in ids:  # grows as it goes: breadth first
            if len(ids) > len(self.units):
                break
            ids.extend(self.children.get(below, ()))
        return ids

    def path(self, unit_id: int) -> str:
        row = self.units.get(unit_id)
        return str(row["path"]) if row is not None else ""


def _load_tree(conn: sqlite3.Connection) -> tuple[int, UnitTree]:
    """The whole tree and the version it is (PostgreSQL's unit_tree_version,
    migration 0021), in one statement: one snapshot at any isolation level."""
    rows = conn.execute(
        dialect.units_at_tree_version("u.id, u.name, u.path, u.timezone, u.parent_id")
        + " ORDER BY u.id"
    ).fetchall()
    units = {int(row["id"]): row for row in rows if row["id"] is not None}
    children: dict[int, list[int]] = {}
    for row in units.values():
        if row["parent_id"] is not None:
            children.setdefault(int(row["parent_id"]), []).append(int(row["id"]))
    tree = UnitTree(units, {parent: tuple(ids) for parent, ids in children.items()})
    return int(rows[0]["version"]), tree


def unit_chain(conn: sqlite3.Connection, unit_id: int) -> list[sqlite3.Row]:
    """The unit and its ancestors, nearest first (id, name, path, timezone)."""
    tree = dialect.unit_tree(conn, _load_tree)
    if tree is not None:
        return tree.chain(unit_id)

    def read() -> list[sqlite3.Row]:
        rows = conn.execute(
            "WITH RECURSIVE chain(id, parent_id, name, path, timezone, depth) AS ("
            " SELECT id, parent_id, name, path, timezone, 0 FROM units WHERE id = ?"
            " UNION ALL SELECT u.id, u.parent_id, u.name, u.path, u.timezone, c.depth + 1"
            " FROM units u JOIN chain c ON u.id = c.parent_id)"
            " SELECT id, name, path, timezone FROM chain ORDER BY depth",
            (unit_id,),
        ).fetchall()
        for row in rows:  # unit_path() of any of them needs no read of its own
            dialect.keep(conn, "units", ("path", int(row["id"])), str(row["path"]))
        return rows

    return list(dialect.remember(conn, "units", ("chain", unit_id), read))


def subtree_units(conn: sqlite3.Connection, unit_id: int) -> list[int]:
    """The unit and every unit below it."""
    tree = dialect.unit_tree(conn, _load_tree)
    if tree is not None:
        return tree.subtree(unit_id)

    def read() -> list[int]:
        rows = conn.execute(
            "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL"
            " SELECT u.id FROM units u JOIN tree t ON u.parent_id = t.id) SELECT id FROM tree",
            (unit_id,),
        ).fetchall()
        return [int(row[0]) for row in rows]

    return list(dialect.remember(conn, "units", ("subtree", unit_id), read))


def unit_timezone(conn: sqlite3.Connection, unit_id: int, default: str) -> str:
    for row in unit_chain(conn, unit_id):
        if row["timezone"]:
            return str(row["timezone"])
    return default


def set_unit_timezone(conn: sqlite3.Connection, unit_id: int, timezone: str | None) -> None:
    """The unit's own zone (None: inherit it from above); its sub-units without
    one of their own follow it."""
    conn.execute("UPDATE units SET timezone = ? WHERE id = ?", (timezone, unit_id))


def unit_id(conn: sqlite3.Connection, path: str) -> int | None:
    row = conn.execute("SELECT id FROM units WHERE path = ?", (path,)).fetchone()
    return int(row["id"]) if row else None


def unit_path(conn: sqlite3.Connection, unit_id: int) -> str:
    tree = dialect.unit_tree(conn, _load_tree)
    if tree is not None:
        return tree.path(unit_id)

    def read() -> str:
        row = conn.execute("SELECT path FROM units WHERE id = ?", (unit_id,)).fetchone()
        return str(row["path"]) if row else ""

    return dialect.remember(conn, "units", ("path", unit_id), read)


def unit_paths(conn: sqlite3.Connection, unit_ids: Collection[int]) -> dict[int, str]:
    """The path of each of these units, by id, in one query; an unknown id is left out."""
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    tree = dialect.unit_tree(conn, _load_tree)
    if tree is not None:
        return {i: tree.path(i) for i in ids if i in tree.units}
    rows = conn.execute(
        f"SELECT id, path FROM units WHERE id IN ({','.join('?' * len(ids))})", ids
    ).fetchall()
    return {int(row["id"]): str(row["path"]) for row in rows}


def supervisors_for_unit(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    """The active supervisors of the nearest unit, walking up the tree, that has any."""
    holds, param = dialect.has_role(dialect.engine_of(conn), Role.SUPERVISOR.value)
    for unit in unit_chain(conn, unit_id):
        rows = conn.execute(
            f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.unit_id = ? AND s.active = 1"
            f" AND {holds} ORDER BY s.id",
            (unit["id"], param),
        ).fetchall()
        if rows:
            return [staff_from_row(row) for row in rows]
    return []


def chain_supervisors(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    """The active supervisors of the unit and of every unit above it, nearest first."""
    return chain_supervisors_ahead(conn, unit_id)()


def chain_supervisors_ahead(
    conn: sqlite3.Connection, unit_id: int, *, with_routes: bool = False
) -> Callable[[], list[Staff]]:
    """chain_supervisors(), asked now and read when called: on PostgreSQL the read
    goes with the transaction's next round trip (a report's entry in the register).
    `with_routes`: they are to be alerted; where the engine keeps reads, the
    channels that reach them come in the same round trip, and reachable_channel()
    then needs no read."""
    holds, param = dialect.has_role(dialect.engine_of(conn), Role.SUPERVISOR.value)
    chain = "FROM chain c JOIN staff s ON s.unit_id = c.id"
    active = f"s.active = 1 AND {holds}"
    cursor = dialect.ahead(
        conn,
        f"{_CHAIN} SELECT {STAFF_COLUMNS} {chain} WHERE {active} ORDER BY c.depth, s.id",
        (unit_id, param),
    )
    routes = None
    if with_routes and dialect.remembers(conn):
        keep = dialect.keeping(conn, "channel_identities")
        routes = dialect.ahead(
            conn,
            f"{_CHAIN} SELECT i.staff_id, {_IDENTITY_COLUMNS} {chain}"
            f" JOIN channel_identities i ON i.staff_id = s.id WHERE {active} AND {_REACHABLE}"
            " ORDER BY i.channel",
            (unit_id, param),
        )

    def read() -> list[Staff]:
        found = [staff_from_row(row) for row in cursor]
        if routes is not None:
            candidates: dict[int, list[Route]] = {person.id: [] for person in found}
            for row in routes:
                candidates.setdefault(int(row["staff_id"]), []).append(_route(row))
            for staff_id, reaching in candidates.items():
                keep(staff_id, reaching)
        return found

    return read


def supervises(conn: sqlite3.Connection, staff: Staff, unit_id: int) -> bool:
    """Whether `staff` is a supervisor of the unit or of a unit above it."""
    if not staff.has(Role.SUPERVISOR):
        return False
    return staff.unit_id in {int(u["id"]) for u in unit_chain(conn, unit_id)}


def reachable_channel(
    conn: sqlite3.Connection,
    staff_id: int,
    *,
    avoid: str | None = None,
    served: Collection[str] | None = None,
) -> tuple[str, str] | None:
    """The channel and address that reach a person unprompted (not the console):
    among the `served` channels (all when None), the one they used last first,
    any but `avoid` before `avoid`; None if they have none yet."""

    def read() -> list[Route]:
        return [
            _route(row)
            for row in conn.execute(
                f"SELECT {_IDENTITY_COLUMNS} FROM channel_identities i"
                f" WHERE i.staff_id = ? AND {_REACHABLE} ORDER BY i.channel",
                (staff_id,),
            )
        ]

    found = [
        route
        for route in dialect.remember(conn, "channel_identities", staff_id, read)
        if served is None or route.channel in served
    ]
    # The one used last first (never seen last), then any but `avoid` before it.
    found.sort(key=lambda route: route.last_seen_at or "", reverse=True)
    found.sort(key=lambda route: (route.channel == avoid, route.last_seen_at is None))
    return (found[0].channel, found[0].user_id) if found else None


@dataclass(frozen=True, slots=True)
class Route:
    """A channel that reaches a person (reachable_channel's candidates)."""

    channel: str
    user_id: str
    last_seen_at: str | None


_IDENTITY_COLUMNS = "i.channel, i.user_id, i.last_seen_at"
_REACHABLE = "i.reachable = 1 AND i.channel != 'console'"


def _route(row: Any) -> Route:
    return Route(str(row["channel"]), str(row["user_id"]), row["last_seen_at"])


def language_of(conn: sqlite3.Connection, staff_id: int | None) -> str:
    """A person's language (zh-CN for a group chat or someone unknown)."""
    row = conn.execute("SELECT language FROM staff WHERE id = ?", (staff_id,)).fetchone()
    return str(row["language"]) if row else "zh-CN"


def search_active(
    conn: sqlite3.Connection, text: str, limit: int, units: Sequence[int] | None = None
) -> list[Staff]:
    """Active people whose name contains `text` (or whose phone or employee
    number is it), by name; only members of `units` when given."""
    needle = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    within = ""
    if units is not None:
        if not units:
            return []
        within = f" AND s.unit_id IN ({','.join('?' * len(units))})"
    rows = conn.execute(
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.active = 1 AND (s.name LIKE ? ESCAPE '\\'"
        f" OR s.phone = ? OR s.employee_no = ?){within} ORDER BY s.name, s.id LIMIT ?",
        (f"%{needle}%", text.strip(), text.strip(), *(units or ()), limit),
    ).fetchall()
    return [staff_from_row(row) for row in rows]


def in_units(conn: sqlite3.Connection, unit_ids: list[int], limit: int, offset: int) -> list[Staff]:
    """Active members of these units, in the order given, then by id."""
    if not unit_ids:
        return []
    marks = ",".join("?" * len(unit_ids))
    order = " ".join(f"WHEN {int(uid)} THEN {rank}" for rank, uid in enumerate(unit_ids))
    rows = conn.execute(
        f"SELECT {STAFF_COLUMNS} FROM staff s WHERE s.active = 1 AND s.unit_id IN ({marks})"
        f" ORDER BY CASE s.unit_id {order} END, s.id LIMIT ? OFFSET ?",
        (*unit_ids, limit, offset),
    ).fetchall()
    return [staff_from_row(row) for row in rows]
