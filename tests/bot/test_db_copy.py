"""`frontline db copy` moves a SQLite deployment into PostgreSQL: every row of
every table with its id, the register counters (the next hazard is YH-…-0002
after YH-…-0001), the outbox and pending reminders; new rows get ids past the
copied ones; counts are checked table by table; a target that is not empty is
refused, and a copy that fails halfway leaves the target empty."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench import registers
from bot.app import App
from bot.cli import main
from bot.clock import FakeClock, iso
from bot.store import copy as db_copy
from bot.store import hazards, outbox, reminders
from tests.conftest import START, import_demo
from tests.postgresql import Cluster


async def sqlite_deployment(path: Path) -> None:
    """A small deployment: the demo roster, a hazard, a queued reply and a reminder."""
    app = await App.open(path, {}, clock=FakeClock(START))
    try:
        names = await import_demo(app)

        def work(conn: sqlite3.Connection) -> None:
            unit = conn.execute("SELECT id FROM units ORDER BY id DESC LIMIT 1").fetchone()[0]
            hazards.create(
                conn,
                unit_id=unit,
                reported_by=names["张伟"],
                source="report",
                description="消防通道堆放杂物",
                photo=None,
                severity="general",
                deadline_at=iso(START),
                now=iso(START),
                category="fire",
                place="三楼走廊",
            )
            outbox.enqueue(
                conn,
                outbox.NewMessage(names["张伟"], "telegram", "1001", "waiting", "copy-test-1"),
                iso(START),
            )
            reminders.schedule(
                conn,
                kind="hazard_deadline",
                due_at=iso(START),
                target={"hazard_id": 1},
                key="copy-test-r1",
                now=iso(START),
            )

        await app.db.transaction(work)
    finally:
        await app.close()


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_name <> 'schema_version'"
            )
            if r[0] not in db_copy.POSTGRESQL_ONLY
        ]
        return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


def sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith(("sqlite_", "hazards_search")) and r[0] != "schema_version"
        ]
        return {n: int(conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0]) for n in names}
    finally:
        conn.close()


async def test_everything_moves_and_numbers_ids_and_reminders_carry_on(
    tmp_path: Path, postgresql_cluster: Cluster
) -> None:
    source = tmp_path / "frontline.db"
    await sqlite_deployment(source)
    target = postgresql_cluster.empty()

    done = db_copy.copy(source, target)

    assert {c.table: c.rows for c in done} == sqlite_counts(source)
    assert counts(target) == sqlite_counts(source)
    with psycopg.connect(target) as conn:  # the copy's units counted as a change of the tree
        assert conn.execute("SELECT n FROM unit_tree_version").fetchone() == (1,)
    app = await App.open(target, {}, clock=FakeClock(START), media_dir=tmp_path / "media")
    try:

        def more(conn: Any) -> tuple[str, int | None, list[Any]]:
            hazard_id = hazards.create(
                conn,
                unit_id=1,
                reported_by=1,
                source="report",
                description="灭火器压力不足",
                photo=None,
                severity="general",
                deadline_at=iso(START),
                now=iso(START),
                category="fire",
                place=None,
            )
            number = conn.execute("SELECT number FROM hazards WHERE id = ?", (hazard_id,))
            row_id = outbox.enqueue(
                conn, outbox.NewMessage(1, "telegram", "1002", "new", "copy-test-2"), iso(START)
            )
            due = reminders.due(conn, iso(START), 10)
            return number.fetchone()[0], row_id, due

        number, row_id, due = await app.db.transaction(more)
    finally:
        await app.close()
    assert number == "YH-2026-0002"  # the register's counter came along
    before = sqlite3.connect(source)
    assert (
        row_id is not None and row_id > before.execute("SELECT MAX(id) FROM outbox").fetchone()[0]
    )
    before.close()
    assert [r.key for r in due] == ["copy-test-r1"]


async def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(
    tmp_path: Path, postgresql_cluster: Cluster
) -> None:
    source = tmp_path / "frontline.db"
    await sqlite_deployment(source)
    target = postgresql_cluster.empty()
    db_copy.copy(source, target)
    before = counts(target)

    with pytest.raises(db_copy.CopyRefused) as refused:
        db_copy.copy(source, target)

    assert refused.value.key == "cli.copy_target_not_empty"
    assert counts(target) == before


async def test_a_copy_failing_halfway_leaves_the_target_empty_and_can_be_run_again(
    tmp_path: Path, postgresql_cluster: Cluster
) -> None:
    source = tmp_path / "frontline.db"
    await sqlite_deployment(source)
    target = postgresql_cluster.empty()
    seen: list[str] = []

    def fail_on_the_fifth(copied: db_copy.Copied) -> None:
        seen.append(copied.table)
        if len(seen) == 5:
            raise OSError("disk full")

    with pytest.raises(OSError):
        db_copy.copy(source, target, progress=fail_on_the_fifth)

    assert set(counts(target).values()) == {0}
    db_copy.copy(source, target)
    assert counts(target) == sqlite_counts(source)


def test_the_registers_benchmark_database_is_copied_table_by_table(
    tmp_path: Path, postgresql_cluster: Cluster
) -> None:
    source = tmp_path / "registers.db"
    conn = db_copy.sqlite_db.connect(source)
    conn.execute("BEGIN")
    registers.seed(conn, 0.01)
    conn.execute("COMMIT")
    conn.close()
    target = postgresql_cluster.empty()

    done = db_copy.copy(source, target)

    expected = sqlite_counts(source)
    assert {c.table: c.rows for c in done} == expected
    assert counts(target) == expected
    assert expected["hazards"] > 0 and expected["checklist_answers"] > 0


def test_the_command_copies_and_says_what_it_did(
    tmp_path: Path, postgresql_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "frontline.db"
    asyncio.run(sqlite_deployment(source))
    target = postgresql_cluster.empty()

    assert main(["db", "copy", "--from", str(source), "--to", target]) == 0
    assert "hazards" in capsys.readouterr().out

    assert main(["db", "copy", "--from", str(source), "--to", target]) == 2
    assert "hazards" not in capsys.readouterr().out
    assert main(["db", "copy", "--from", str(tmp_path / "none.db"), "--to", target]) == 2
