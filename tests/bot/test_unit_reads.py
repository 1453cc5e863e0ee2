"""The store's reads over the unit tree that answer for many units or a whole
chain in one query give what asking unit by unit gives (both engines)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from conftest import START, count_sent, executes

from bot.app import App
from bot.clock import iso
from bot.model import Role, Staff
from bot.store import conversations, hazards, people
from bot.store.db import Database


def _unit_ids(conn: sqlite3.Connection) -> list[int]:
    return [int(row["id"]) for row in conn.execute("SELECT id FROM units ORDER BY id")]


def _add_supervisors(conn: sqlite3.Connection, names: dict[str, int]) -> None:
    """A second supervisor in 保安部 (roles listed after another), an
    inactive one in 一班, and a worker who only has a role like it."""
    team = people.staff_by_id(conn, names["张伟"])
    head = people.staff_by_id(conn, names["刘强"])
    assert team is not None and head is not None
    for n, (name, unit, roles, active) in enumerate(
        (
            ("钱进", head.unit_id, "staff,supervisor", 1),
            ("许可", team.unit_id, "supervisor", 0),
            ("卫东", team.unit_id, "staff", 1),
        )
    ):
        conn.execute(
            "INSERT INTO staff (name, phone, unit_id, roles, language, active, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'zh-CN', ?, ?, ?)",
            (name, f"+8613900000{n:03d}", unit, roles, active, iso(START), iso(START)),
        )


def _report(conn: sqlite3.Connection, unit_id: int, reporter: int, description: str) -> int:
    """A general hazard reported in `unit_id`, due at START."""
    return hazards.create(
        conn,
        unit_id=unit_id,
        reported_by=reporter,
        source="report",
        description=description,
        photo=None,
        severity="general",
        deadline_at=iso(START),
        now=iso(START),
    )


def _chain_supervisors_one_by_one(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    return [
        member
        for unit in people.unit_chain(conn, unit_id)
        for member in people.members(conn, int(unit["id"]))
        if member.has(Role.SUPERVISOR)
    ]


async def test_unit_paths_are_each_units_path_and_leave_out_unknown_ids(
    app: App, org: dict[str, int]
) -> None:
    def read(conn: sqlite3.Connection) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
        ids = _unit_ids(conn)
        one_by_one = {uid: people.unit_path(conn, uid) for uid in ids}
        batched = people.unit_paths(conn, [*ids, ids[0], 999_999])
        return one_by_one, batched, people.unit_paths(conn, [])

    one_by_one, batched, none = await app.db.read(read)
    assert len(one_by_one) > 5
    assert batched == one_by_one
    assert none == {}


async def test_chain_supervisors_are_the_active_supervisors_up_the_tree_nearest_first(
    app: App, org: dict[str, int]
) -> None:
    await app.db.transaction(lambda conn: _add_supervisors(conn, org))

    def read(conn: sqlite3.Connection) -> list[tuple[list[Staff], list[Staff]]]:
        return [
            (people.chain_supervisors(conn, uid), _chain_supervisors_one_by_one(conn, uid))
            for uid in [*_unit_ids(conn), 999_999]
        ]

    pairs = await app.db.read(read)
    for batched, one_by_one in pairs:
        assert batched == one_by_one
    team = await app.db.read(lambda conn: people.staff_by_id(conn, org["张伟"]))
    assert team is not None
    found = await app.db.read(lambda conn: people.chain_supervisors(conn, team.unit_id))
    assert [s.name for s in found] == ["刘强", "钱进"]


async def test_alert_groups_are_those_bound_to_the_unit_or_above(
    app: App, org: dict[str, int]
) -> None:
    def bind(conn: sqlite3.Connection) -> dict[str, int]:
        units = {
            path: people.unit_id(conn, path)
            for path in ("物业服务中心", "物业服务中心/保安部", "物业服务中心/工程部")
        }
        for n, uid in enumerate(units.values()):
            assert uid is not None
            people.bind_group(conn, "telegram", f"-{100 + n}", uid, org["刘强"], iso(START))
        people.set_language(conn, org["刘强"], "en", iso(START))
        return {path: uid for path, uid in units.items() if uid is not None}

    await app.db.transaction(bind)
    team = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部/一班"))
    assert team is not None
    groups = await app.db.read(lambda conn: people.alert_groups(conn, team))
    assert groups == [("telegram", "-100", "en"), ("telegram", "-101", "en")]
    assert await app.db.read(lambda conn: people.alert_groups(conn, 999_999)) == []


async def test_a_unit_read_again_after_the_tree_changed_in_the_same_transaction_is_fresh(
    app: App, org: dict[str, int]
) -> None:
    """PostgreSQL remembers unit tree reads for the transaction; a write to the
    units table in it forgets them."""

    def change(conn: sqlite3.Connection) -> tuple[str, str, str, list[int], list[int]]:
        team = people.unit_id(conn, "物业服务中心/保安部/一班")
        head = people.unit_id(conn, "物业服务中心/保安部")
        assert team is not None and head is not None
        before = people.unit_timezone(conn, team, "Asia/Shanghai")
        people.set_unit_timezone(conn, head, "Asia/Urumqi")
        after = people.unit_timezone(conn, team, "Asia/Shanghai")
        path = people.unit_path(conn, team)
        below = people.subtree_units(conn, head)
        conn.execute(
            "INSERT INTO units (parent_id, name, path, timezone, created_at)"
            " VALUES (?, '二班', '物业服务中心/保安部/二班', NULL, ?)",
            (head, iso(START)),
        )
        return before, after, path, below, people.subtree_units(conn, head)

    before, after, path, below, grown = await app.db.transaction(change)
    assert (before, after) == ("Asia/Shanghai", "Asia/Urumqi")
    assert path == "物业服务中心/保安部/一班"
    assert len(grown) == len(below) + 1


async def test_a_person_or_hazard_read_again_after_a_write_in_the_same_transaction_is_fresh(
    app: App, org: dict[str, int]
) -> None:
    """PostgreSQL remembers a person read (with their event's conversation, or
    by id) and a hazard just recorded for the transaction; a write to the staff
    or hazards table in it forgets them."""

    def change(conn: sqlite3.Connection) -> tuple[str, str, str, str, str]:
        arrived = conversations.arrive(conn, "telegram", "1001")
        assert arrived is not None
        staff_id = arrived[0].staff.id
        first = people.staff_by_id(conn, staff_id)
        assert first is not None
        people.set_language(conn, staff_id, "en", iso(START))
        changed = people.staff_by_id(conn, staff_id)
        assert changed is not None
        hazard_id = _report(conn, first.unit_id, staff_id, "通道堵塞")
        recorded = hazards.get(conn, hazard_id)
        conn.execute("UPDATE hazards SET description = '通道已清' WHERE id = ?", (hazard_id,))
        updated = hazards.get(conn, hazard_id)
        assert recorded is not None and updated is not None
        return (
            first.language,
            changed.language,
            recorded.description,
            updated.description,
            recorded.number,
        )

    await app.db.transaction(
        lambda conn: people.bind_identity(conn, "telegram", "1001", org["张伟"], iso(START))
    )
    first, changed, recorded, updated, number = await app.db.transaction(change)
    assert (first, changed) == ("zh-CN", "en")
    assert (recorded, updated) == ("通道堵塞", "通道已清")
    assert number.startswith("YH")


async def test_a_units_path_after_its_chain_is_the_chains_and_needs_no_read(
    app: App, org: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the chain read keeps each unit's path for the transaction
    (a hazard's report reads the chain, then the path for its alerts)."""

    def paths(conn: sqlite3.Connection) -> tuple[list[str], list[str], int]:
        team = people.unit_id(conn, "物业服务中心/保安部/一班")
        assert team is not None
        chain = people.unit_chain(conn, team)
        before = len(sent)
        kept = [people.unit_path(conn, int(unit["id"])) for unit in chain]
        return [str(unit["path"]) for unit in chain], kept, len(sent) - before

    sent = count_sent(monkeypatch)
    chain, kept, reads = await app.db.transaction(paths)
    monkeypatch.undo()
    assert chain == ["物业服务中心/保安部/一班", "物业服务中心/保安部", "物业服务中心"]
    assert kept == chain and reads == 0


def _tree_answers(conn: sqlite3.Connection) -> tuple[list[str], list[str], str, dict[int, str]]:
    team = people.unit_id(conn, "物业服务中心/保安部/一班")
    head = people.unit_id(conn, "物业服务中心/保安部")
    assert team is not None and head is not None
    return (
        [str(unit["path"]) for unit in people.unit_chain(conn, team)],
        sorted(people.unit_path(conn, uid) for uid in people.subtree_units(conn, head)),
        people.unit_timezone(conn, team, "UTC"),
        people.unit_paths(conn, [team, 999_999]),
    )


async def test_a_later_transaction_answers_from_the_tree_kept_for_the_process(
    app: App, org: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the unit tree read once is kept for the process: a later
    transaction that sees the same version (read with its BEGIN) asks the
    server nothing more for a chain, a subtree, a path or a zone."""
    first = await app.db.read(_tree_answers)
    team = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部/一班"))
    assert team is not None

    def tree_only(conn: sqlite3.Connection) -> tuple[list[str], list[str], str, dict[int, str]]:
        head = people.unit_chain(conn, team)[1]["id"]
        return (
            [str(unit["path"]) for unit in people.unit_chain(conn, team)],
            sorted(people.unit_path(conn, uid) for uid in people.subtree_units(conn, head)),
            people.unit_timezone(conn, team, "UTC"),
            people.unit_paths(conn, [team, 999_999]),
        )

    sent = count_sent(monkeypatch)
    again = await app.db.transaction(tree_only)
    monkeypatch.undo()
    assert again == first
    assert first[0] == ["物业服务中心/保安部/一班", "物业服务中心/保安部", "物业服务中心"]
    assert first[3] == {team: "物业服务中心/保安部/一班"}
    if app.db.engine == "postgresql":
        # The BEGIN's round trip (with the version) and the COMMIT's: no read of units.
        assert len(sent) == 2 and sent[0].startswith("BEGIN") and sent[1] == "COMMIT"


async def test_a_change_to_the_tree_committed_by_another_process_is_seen_at_once(
    app: App, org: dict[str, int]
) -> None:
    """A second process (its own pool and its own copy of the tree) changes a
    zone, adds a team and renames one; the first process's next transaction
    sees all of it, and a change rolled back changes nothing."""
    other = await Database.open(app.db.path) if app.db.engine == "postgresql" else app.db
    try:
        before = await app.db.read(_tree_answers)

        def change(conn: sqlite3.Connection) -> None:
            head = people.unit_id(conn, "物业服务中心/保安部")
            assert head is not None
            people.set_unit_timezone(conn, head, "Asia/Urumqi")
            conn.execute(
                "INSERT INTO units (parent_id, name, path, created_at)"
                " VALUES (?, '二班', '物业服务中心/保安部/二班', ?)",
                (head, iso(START)),
            )
            conn.execute(
                "UPDATE units SET name = '夜班', path = '物业服务中心/保安部/夜班'"
                " WHERE path = '物业服务中心/保安部/一班'"
            )

        await other.transaction(change)
        team = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部/夜班"))
        assert team is not None

        def answers(conn: sqlite3.Connection) -> tuple[list[str], list[str], str]:
            head = people.unit_chain(conn, team)[1]["id"]
            return (
                [str(unit["path"]) for unit in people.unit_chain(conn, team)],
                sorted(people.unit_path(conn, uid) for uid in people.subtree_units(conn, head)),
                people.unit_timezone(conn, team, "UTC"),
            )

        chain, below, zone = await app.db.transaction(answers)
        assert chain[0] == "物业服务中心/保安部/夜班" and zone == "Asia/Urumqi"
        assert sorted(below) == sorted(
            [p for p in before[1] if not p.endswith("/一班")]
            + ["物业服务中心/保安部/二班", "物业服务中心/保安部/夜班"]
        )

        class Undone(Exception):
            pass

        def rolled_back(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE units SET timezone = 'Asia/Tokyo'")
            people.unit_timezone(conn, team, "UTC")
            raise Undone

        with pytest.raises(Undone):
            await other.transaction(rolled_back)
        assert (await app.db.transaction(answers))[2] == "Asia/Urumqi"
    finally:
        if other is not app.db:
            await other.close()


async def test_a_hazard_just_moved_is_read_back_as_moved_without_a_read(
    app: App, org: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An action's update returns the row it left (PostgreSQL keeps it for the
    transaction): the card drawn next shows the new state, with no read."""

    def report(conn: sqlite3.Connection) -> int:
        worker = people.staff_by_id(conn, org["张伟"])
        assert worker is not None
        return _report(conn, worker.unit_id, worker.id, "通道堵塞")

    hazard_id = await app.db.transaction(report)

    def assign(conn: sqlite3.Connection) -> bool:
        return hazards.apply(
            conn,
            hazard_id,
            expected="open",
            status="assigned",
            actor_id=org["刘强"],
            action="assigned",
            now=iso(START),
            changes={"responsible_id": org["张伟"], "measure": "清理通道"},
        )

    def assign_twice(conn: sqlite3.Connection) -> tuple[bool, bool, Any, int]:
        moved = assign(conn)
        before = len(sent)
        card = hazards.get(conn, hazard_id)
        reads = len(sent) - before
        return moved, assign(conn), card, reads

    sent = count_sent(monkeypatch)
    moved, again, card, reads = await app.db.transaction(assign_twice)
    monkeypatch.undo()
    assert moved and not again  # the second found it no longer open
    assert card is not None
    assert (card.status, card.responsible_id, card.measure) == ("assigned", org["张伟"], "清理通道")
    assert reads == 0


async def test_a_reports_alert_groups_are_read_with_its_supervisors(
    app: App, org: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The groups asked ahead come with the next read (on PostgreSQL, in its
    round trip: a report's supervisors), and are the groups alert_groups gives."""
    team = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部/一班"))
    head = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部"))
    assert team is not None and head is not None
    await app.db.transaction(
        lambda conn: people.bind_group(conn, "telegram", "-100", head, org["刘强"], iso(START))
    )

    def report(conn: sqlite3.Connection) -> tuple[list[Any], list[str], int, list[Any]]:
        people.unit_chain(conn, team)  # the transaction's first round trip is behind it
        before = len(sent)
        groups = people.alert_groups_ahead(conn, team)
        supervisors = [s.name for s in people.chain_supervisors(conn, team)]
        found = groups()
        return found, supervisors, len(sent) - before, people.alert_groups(conn, team)

    sent = count_sent(monkeypatch)
    ahead, supervisors, trips, asked = await app.db.transaction(report)
    monkeypatch.undo()
    assert ahead == asked == [("telegram", "-100", "zh-CN")]
    assert supervisors == ["刘强"]
    if app.db.engine == "postgresql":
        assert trips == 1  # the groups went with the supervisors' read


async def test_units_written_many_at_once_are_read_back_by_their_own_transaction(
    app: App, org: dict[str, int]
) -> None:
    """A transaction that adds units with executemany (as an import could) sees
    them in its own reads, not the tree kept for the process."""
    await app.db.read(_tree_answers)  # the process's copy, before the new teams
    head = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部"))
    assert head is not None

    def add(conn: sqlite3.Connection) -> list[str]:
        people.subtree_units(conn, head)  # read from the copy first
        conn.executemany(
            "INSERT INTO units (parent_id, name, path, created_at) VALUES (?, ?, ?, ?)",
            [(head, name, f"物业服务中心/保安部/{name}", iso(START)) for name in ("三班", "四班")],
        )
        return sorted(people.unit_path(conn, uid) for uid in people.subtree_units(conn, head))

    below = await app.db.transaction(add)
    assert "物业服务中心/保安部/三班" in below and "物业服务中心/保安部/四班" in below


async def test_a_desk_actions_hazard_comes_with_the_person_acting(
    app: App, org: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hazard asked ahead by its number (a desk action's) comes with the
    next read, the person acting (on PostgreSQL in that read's round trip),
    and is by_number's; an unknown number is None."""

    def report(conn: sqlite3.Connection) -> str:
        hazard_id = _report(conn, 1, org["张伟"], "灭火器过期")
        found = hazards.get(conn, hazard_id)
        assert found is not None
        return found.number

    number = await app.db.transaction(report)

    def act(conn: sqlite3.Connection) -> tuple[Any, Any, int, Any, Any]:
        people.unit_chain(conn, 1)  # the transaction's first round trip is behind it
        before = len(sent)
        found = hazards.by_number_ahead(conn, number.lower())
        staff = people.staff_by_id(conn, org["刘强"])
        hazard = found()
        trips = len(sent) - before
        return (
            hazard,
            staff,
            trips,
            hazards.by_number(conn, number),
            hazards.by_number(conn, "YH-1"),
        )

    sent = count_sent(monkeypatch)
    hazard, staff, trips, by_number, unknown = await app.db.transaction(act)
    monkeypatch.undo()
    assert hazard == by_number and hazard is not None and hazard.description == "灭火器过期"
    assert staff is not None and staff.name == "刘强" and unknown is None
    if app.db.engine == "postgresql":
        assert trips == 1


async def test_a_reports_supervisors_are_read_with_its_entry_in_the_register(
    app: App, org: dict[str, int], person: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A problem found in a check is entered as a hazard and its unit's
    supervisor told; on PostgreSQL who is told, and the channel that reaches
    them, are read in the round trip that enters the hazard (the unit is known
    before the number is), not after it."""
    worker = await person("张伟")
    supervisor = await person("刘强")
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("护栏松动")
    sent = count_sent(monkeypatch)
    replies = await worker.press("跳过")
    monkeypatch.undo()
    assert any("已通知" in reply and "刘强" in reply for reply in replies), replies
    assert any("护栏松动" in alert for alert in await supervisor.replies())
    if app.db.engine == "postgresql":
        trip = [text for text in sent if executes(text, "INSERT INTO hazards ")]
        assert len(trip) == 1, sent
        assert executes(trip[0], "FROM chain c JOIN staff s ON s.unit_id = c.id"), trip
        # The channels that reach the supervisors came with them: no read after.
        assert executes(trip[0], "JOIN channel_identities i ON i.staff_id = s.id"), trip
        after = sent[sent.index(trip[0]) + 1 :]
        assert not any(executes(text, "FROM channel_identities i WHERE") for text in after)


async def test_supervisors_routes_asked_ahead_give_way_to_a_channel_bound_meanwhile(
    app: App, org: dict[str, int]
) -> None:
    """The channels read with the supervisors are those before anything this
    transaction writes after asking: a channel bound in between is the one
    that reaches the supervisor (the read asked ahead is not kept over it)."""
    team = await app.db.read(lambda conn: people.unit_id(conn, "物业服务中心/保安部/一班"))
    assert team is not None
    head = org["刘强"]
    await app.db.transaction(
        lambda conn: people.bind_identity(conn, "telegram", "old", head, iso(START))
    )

    def report(conn: sqlite3.Connection) -> tuple[list[str], Any, Any]:
        asked = people.chain_supervisors_ahead(conn, team, with_routes=True)
        later = iso(START + timedelta(minutes=5))
        people.bind_identity(conn, "wecom", "liuqiang", head, later)
        supervisors = [person.name for person in asked()]
        return (
            supervisors,
            people.reachable_channel(conn, head),
            people.reachable_channel(conn, head, avoid="wecom"),
        )

    supervisors, route, avoiding = await app.db.transaction(report)
    assert supervisors == ["刘强"]
    assert route == ("wecom", "liuqiang")
    assert avoiding == ("telegram", "old")
