"""The PostgreSQL engine's own promises: two processes starting together migrate
once; two transactions that collide are both applied, the loser rerun below a
handler's `except Exception` (so no 'handler failed' and no apology to anyone);
a unit of work that raises leaves nothing behind; a URL in FRONTLINE_DB selects it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.app import App
from bot.config import Settings
from bot.store import conversations, desk_reads, hazards, people, postgres
from bot.store.db import Database, migrations
from tests.postgresql import Cluster


def test_two_processes_starting_together_migrate_once(postgresql_cluster: Cluster) -> None:
    url = postgresql_cluster.empty()
    versions: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            versions.append(postgres.migrate_url(url))
        except BaseException as exc:
            errors.append(exc)

    starters = [threading.Thread(target=start) for _ in range(3)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join()

    assert not errors
    latest = migrations("postgresql")[-1][0]
    assert versions == [latest] * 3
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [v for v, _, _ in migrations("postgresql")]


def test_the_registers_search_indexes_take_each_hazard_at_once(
    postgresql_cluster: Cluster,
) -> None:
    """No pending list in the trigram indexes (migration 0023): a search does not
    read through one, and no report pays for merging it."""
    url = postgresql_cluster.fresh()
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT relname, reloptions FROM pg_class"
                " WHERE relname IN ('hazards_description_trgm', 'hazards_place_trgm')"
            ).fetchall()
    finally:
        postgresql_cluster.drop(url)
    assert {name: options for name, options in rows} == {
        "hazards_description_trgm": ["fastupdate=off"],
        "hazards_place_trgm": ["fastupdate=off"],
    }


async def test_colliding_transactions_are_rerun_below_the_handlers_error_handling(
    postgresql_cluster: Cluster,
) -> None:
    db = await Database.open(postgresql_cluster.fresh())
    both_read = threading.Barrier(2, timeout=5)
    caught: list[BaseException] = []
    attempts = 0

    def bump(conn: sqlite3.Connection) -> int:
        nonlocal attempts
        attempts += 1
        try:
            row = conn.execute(
                "SELECT last FROM register_counters WHERE register = 'YH' AND year = 2026"
            ).fetchone()
            if attempts <= 2:  # the first two attempts read before either writes
                both_read.wait()
            value = (row["last"] if row else 0) + 1
            conn.execute(
                "UPDATE register_counters SET last = ? WHERE register = 'YH' AND year = 2026",
                (value,),
            )
            return int(value)
        except Exception as exc:  # what a handler does with a bug: never a conflict
            caught.append(exc)
            raise

    try:
        await db.transaction(
            lambda conn: conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('YH', 2026, 0)"
            )
        )
        results = await asyncio.gather(db.transaction(bump), db.transaction(bump))
        final = await db.read(
            lambda conn: conn.execute("SELECT last FROM register_counters").fetchone()[0]
        )
    finally:
        await db.close()
    assert sorted(results) == [1, 2]
    assert final == 2
    assert caught == []
    assert attempts == 3


async def test_a_unit_of_work_that_raises_leaves_nothing(db_target: Path | str) -> None:
    db = await Database.open(db_target)

    def half(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 5)")
        raise ValueError("bug")

    try:
        with pytest.raises(ValueError):
            await db.transaction(half)
        left = await db.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM register_counters").fetchone()[0]
        )
    finally:
        await db.close()
    assert left == 0


class _Stop(BaseException):
    """Not an Exception: what a worker must hand back all the same."""


async def test_the_database_threads_outlast_cancelled_callers_and_finish_before_close(
    db_target: Path | str,
) -> None:
    """A caller cancelled while its unit runs leaves the unit to finish (it
    commits, nobody is told); a BaseException reaches its caller; close()
    waits for the units already sent; the threads serve on between them."""
    db = await Database.open(db_target)
    running = threading.Event()
    release = threading.Event()
    failures: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: failures.append(context))

    def insert(register: str, wait: bool = False) -> Any:
        def fn(conn: sqlite3.Connection) -> str:
            if wait:
                running.set()
                release.wait(10)
            conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES (?, 2026, 1)",
                (register,),
            )
            return register

        return fn

    def stop(conn: sqlite3.Connection) -> None:
        raise _Stop()

    def registers(conn: sqlite3.Connection) -> list[str]:
        return [row[0] for row in conn.execute("SELECT register FROM register_counters")]

    try:
        cancelled = asyncio.ensure_future(db.transaction(insert("A", wait=True)))
        await asyncio.to_thread(running.wait, 10)
        cancelled.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        with pytest.raises(_Stop):
            await db.transaction(stop)
        assert await db.transaction(insert("B")) == "B"
        running.clear()
        release.clear()
        last = asyncio.ensure_future(db.transaction(insert("C", wait=True)))
        await asyncio.to_thread(running.wait, 10)
        closing = asyncio.ensure_future(db.close())
        await asyncio.sleep(0.1)
        assert not last.done()
        release.set()
        assert await last == "C"
        await closing
    finally:
        release.set()
        await db.close()
    reopened = await Database.open(db_target)
    try:
        assert sorted(await reopened.read(registers)) == ["A", "B", "C"]
    finally:
        await reopened.close()
    await asyncio.sleep(0.05)  # any settling a worker scheduled has run
    assert failures == []


def test_a_postgresql_url_selects_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTLINE_DB", "postgresql://frontline@db.internal/frontline")
    settings = Settings()
    assert settings.db == "postgresql://frontline@db.internal/frontline"
    assert settings.media_path == Path("media")
    monkeypatch.setenv("FRONTLINE_DB", "data/frontline.db")
    assert Settings().db == Path("data/frontline.db")


async def test_a_channel_to_avoid_is_tried_last_on_either_engine(
    app: App, org: dict[str, int]
) -> None:
    staff_id = org["张伟"]

    def bind(conn: sqlite3.Connection) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        people.bind_identity(conn, "telegram", "1001", staff_id, "2026-11-27T01:00:00+00:00")
        people.bind_identity(conn, "wecom", "zhangwei", staff_id, "2026-11-27T00:00:00+00:00")
        return (
            people.reachable_channel(conn, staff_id),
            people.reachable_channel(conn, staff_id, avoid="telegram"),
        )

    usual, avoiding = await app.db.transaction(bind)
    assert usual == ("telegram", "1001")
    assert avoiding == ("wecom", "zhangwei")


async def test_a_connection_the_server_dropped_is_replaced_without_losing_the_work(
    postgresql_cluster: Cluster,
) -> None:
    url = postgresql_cluster.fresh()
    db = await Database.open(url)

    def count(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('ZG', 2026, 1)")
        return int(conn.execute("SELECT COUNT(*) FROM register_counters").fetchone()[0])

    try:
        await db.read(lambda conn: conn.execute("SELECT 1").fetchone())
        with psycopg.connect(url, autocommit=True) as admin:  # a restart, a failover
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert await db.transaction(count) == 1
        assert db.reruns == 1  # BEGIN met the dropped connection; the next one did the work
    finally:
        await db.close()


async def test_many_reports_numbered_at_once_each_get_the_next_number(
    postgresql_cluster: Cluster,
) -> None:
    """The register counter is one hot key: a number is taken outside the
    report's transaction, so no taker waits for another's commit or is rerun
    (a rerun of a whole report, holding the counter, made every report behind
    it wait)."""
    from bot.store import hazards

    db = await Database.open(postgresql_cluster.fresh())
    try:

        def take(conn: sqlite3.Connection) -> int:
            conn.execute("SELECT pg_sleep(0.005)")  # the work before the number is taken
            number = hazards.next_number(conn, "YH", 2026)
            conn.execute("SELECT pg_sleep(0.005)")  # and after it, until the commit
            return number

        taken = await asyncio.gather(*(db.transaction(take) for _ in range(8)))
        assert sorted(taken) == list(range(1, 9))
        assert getattr(db, "reruns", 0) == 0
    finally:
        await db.close()


async def test_a_number_is_committed_without_a_flush_of_its_own_and_the_report_with_one(
    postgresql_cluster: Cluster,
) -> None:
    """A report's number, committed outside its transaction, does not wait for
    the WAL to reach the disk (a second flush per report): the report's own
    commit, which comes after it and waits, flushes the number's row with it."""
    url = postgresql_cluster.fresh()
    with psycopg.connect(url, autocommit=True) as admin:  # as a deployment runs (the
        name = admin.execute("SELECT current_database()").fetchone()  # tests' cluster: off)
        assert name is not None
        admin.execute(f"ALTER DATABASE {name[0]} SET synchronous_commit = on")
    db = await Database.open(url)
    try:
        seen: list[str] = []

        def take(conn: sqlite3.Connection) -> int:
            seen.append(conn.outside("SELECT current_setting('synchronous_commit')")[0])  # type: ignore[attr-defined,index]
            seen.append(conn.execute("SELECT current_setting('synchronous_commit')").fetchone()[0])
            return hazards.next_number(conn, "YH", 2026)

        assert await db.transaction(take) == 1
        assert seen == ["off", "on"]
    finally:
        await db.close()


async def test_a_numbers_statement_is_prepared_once_on_its_connection(
    postgresql_cluster: Cluster,
) -> None:
    """The register number's statement is planned once per outside connection,
    not for every report; one whose plan a migration elsewhere made stale is
    run again on a new connection, not failed."""
    url = postgresql_cluster.fresh()
    db = await Database.open(url)
    assert isinstance(db, postgres.PostgresDatabase)
    try:
        numbers = [
            await db.transaction(lambda conn: hazards.next_number(conn, "YH", 2026))
            for _ in range(3)
        ]
        with db._outside.connection() as raw:
            prepared = raw.execute(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                ("%register_counters%",),
            ).fetchall()
        everything = "SELECT * FROM register_counters WHERE register = ? ORDER BY last"
        before = await asyncio.to_thread(db._run_outside, everything, ("YH",))
        with psycopg.connect(url, autocommit=True) as admin:  # another process's migration
            admin.execute("ALTER TABLE register_counters ADD COLUMN note TEXT")
        after = await asyncio.to_thread(db._run_outside, everything, ("YH",))
    finally:
        await db.close()
    assert numbers == [1, 2, 3]
    assert len(prepared) == 1 and "INSERT INTO register_counters" in prepared[0][0]
    assert before is not None and after is not None
    assert len(after) == len(before) + 1 and after["note"] is None


async def test_a_number_is_taken_on_a_new_connection_when_the_server_dropped_the_old(
    postgresql_cluster: Cluster,
) -> None:
    """The outside connection a number was taken on is gone (the server
    restarted, an administrator ended it): the next report's number is taken on
    a new one, and the report is filed, not failed."""
    url = postgresql_cluster.fresh()
    db = await Database.open(url)
    assert isinstance(db, postgres.PostgresDatabase)
    try:
        first = await db.transaction(lambda conn: hazards.next_number(conn, "YH", 2026))
        with db._outside.connection() as raw:
            pid = raw.info.backend_pid
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        second = await db.transaction(lambda conn: hazards.next_number(conn, "YH", 2026))
    finally:
        await db.close()
    assert (first, second) == (1, 2)


async def test_a_number_taken_by_a_unit_of_work_that_fails_is_taken_again(
    db_target: Path | str,
) -> None:
    """Numbers never skip: a report that failed after taking its number leaves
    the number to the next one; two taken in one transaction follow each other."""
    from bot.store import hazards

    db = await Database.open(db_target)

    def fails(conn: sqlite3.Connection) -> None:
        hazards.next_number(conn, "SG", 2026)
        raise ValueError("bug")

    try:
        assert await db.transaction(lambda conn: hazards.next_number(conn, "SG", 2026)) == 1
        with pytest.raises(ValueError):
            await db.transaction(fails)
        both = await db.transaction(
            lambda conn: [hazards.next_number(conn, "SG", 2026) for _ in range(2)]
        )
        other_year = await db.transaction(lambda conn: hazards.next_number(conn, "SG", 2027))
    finally:
        await db.close()
    assert both == [2, 3]
    assert other_year == 1


async def test_a_report_rerun_after_taking_its_number_takes_the_same_number(
    postgresql_cluster: Cluster,
) -> None:
    from bot.store import hazards

    db = await Database.open(postgresql_cluster.fresh())
    attempts = 0

    def collides_once(conn: sqlite3.Connection) -> int:
        nonlocal attempts
        attempts += 1
        number = hazards.next_number(conn, "YH", 2026)
        if attempts == 1:
            raise postgres.TransactionConflict("another transaction changed a row read here")
        return number

    try:
        first = await db.transaction(collides_once)
        second = await db.transaction(lambda conn: hazards.next_number(conn, "YH", 2026))
        rows = await db.read(
            lambda conn: conn.execute("SELECT last FROM register_counters ORDER BY last").fetchall()
        )
    finally:
        await db.close()
    assert (attempts, first, second) == (2, 1, 2)
    assert [r[0] for r in rows] == [1, 2]


async def test_savepoints_and_earlier_results_behave_as_on_sqlite(db_target: Path | str) -> None:
    """On PostgreSQL a SAVEPOINT or RELEASE goes with the next statement, in its
    round trip, and a result is read after the next statement ran: neither
    shows."""
    db = await Database.open(db_target)

    def step(conn: sqlite3.Connection) -> tuple[list[int], list[str], int]:
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)")
        conn.execute("SAVEPOINT step")
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('SG', 2027, 1)")
        try:
            conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
            )
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO step")
        conn.execute("RELEASE step")
        earlier = conn.execute("SELECT year FROM register_counters ORDER BY year")
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('ZG', 2026, 1)")
        later = conn.execute("SELECT register FROM register_counters ORDER BY register")
        first = later.fetchone()
        return [r[0] for r in earlier], [first["register"], *[r[0] for r in later]], len(first)

    try:
        years, registers, width = await db.transaction(step)
    finally:
        await db.close()
    assert years == [2026]
    assert registers == ["SG", "ZG"]
    assert width == 1


async def test_an_error_beside_a_lock_tried_is_the_units_own_on_its_rerun(
    postgresql_cluster: Cluster,
) -> None:
    """A lock is tried in the round trip of the statement after it; if that
    statement fails, whether the lock was had is not known, so the unit is
    rerun with the lock taken first, and there the error is its own to catch."""
    db = await Database.open(postgresql_cluster.fresh())
    await db.transaction(
        lambda conn: conn.execute(
            "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
        )
    )
    caught: list[str] = []

    def duplicate(conn: sqlite3.Connection) -> str:
        conversations.lock_person(conn, "telegram", "1001")
        try:
            conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
            )
        except sqlite3.IntegrityError:
            caught.append("integrity")
            return "caught"
        return "inserted"

    try:
        assert await db.transaction(duplicate) == "caught"
        assert getattr(db, "reruns", 0) == 1
    finally:
        await db.close()
    assert caught == ["integrity"]


async def test_writes_go_with_the_next_statement_that_needs_an_answer(
    postgresql_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes whose cursors nobody reads wait and go, in order, with the next
    read (or the COMMIT): three inserts, a read and the commit are two round
    trips, and the read sees the inserts. A write's cursor read at once sends it."""
    db = await Database.open(postgresql_cluster.fresh())
    sent: list[str] = []
    execute = psycopg.ClientCursor.execute

    def counting(self: psycopg.ClientCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    def unit(conn: sqlite3.Connection) -> tuple[int, int]:
        for year in (2026, 2027, 2028):
            conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('SG', ?, 1)", (year,)
            )
        seen = int(conn.execute("SELECT COUNT(*) FROM register_counters").fetchone()[0])
        changed = conn.execute("UPDATE register_counters SET last = 2 WHERE year > 2026").rowcount
        return seen, changed

    monkeypatch.setattr(psycopg.ClientCursor, "execute", counting)
    try:
        assert await db.transaction(unit) == (3, 2)
    finally:
        monkeypatch.undo()
        await db.close()
    assert len(sent) == 3  # the inserts with the read; the update; the COMMIT
    assert all(f"({year})::bigint" in sent[0] for year in (2026, 2027, 2028))
    assert "SELECT COUNT(*)" in sent[0]
    assert sent[-1].endswith("COMMIT")


async def test_an_error_among_waiting_writes_is_the_units_own_on_its_rerun(
    postgresql_cluster: Cluster,
) -> None:
    """A write that fails while it waits would raise at a later statement,
    outside the `try` around it: the unit is rerun with each statement sent at
    its place, where its own code catches the error; what it did is done once."""
    db = await Database.open(postgresql_cluster.fresh())
    await db.transaction(
        lambda conn: conn.execute(
            "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
        )
    )
    caught: list[str] = []

    def unit(conn: sqlite3.Connection) -> list[tuple[str, int]]:
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('YH', 2026, 1)")
        conn.execute("SAVEPOINT step")
        try:
            conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
            )
        except sqlite3.IntegrityError:
            caught.append("integrity")
            conn.execute("ROLLBACK TO step")
        conn.execute("RELEASE step")
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('ZG', 2026, 1)")
        rows = conn.execute("SELECT register, last FROM register_counters ORDER BY register")
        return [(r[0], r[1]) for r in rows]

    try:
        assert await db.transaction(unit) == [("SG", 1), ("YH", 1), ("ZG", 1)]
        assert db.reruns == 1
        kept = await db.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM register_counters").fetchone()[0]
        )
    finally:
        await db.close()
    assert caught == ["integrity"]
    assert kept == 3


async def test_a_write_that_fails_at_commit_raises_to_the_caller(db_target: Path | str) -> None:
    """The last writes go with the COMMIT; one that fails there reaches the
    caller as it would on SQLite, and nothing of the unit is kept."""
    db = await Database.open(db_target)

    def unit(conn: sqlite3.Connection) -> None:
        for _ in range(2):
            conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('YH', 2026, 1)"
            )

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await db.transaction(unit)
        left = await db.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM register_counters").fetchone()[0]
        )
    finally:
        await db.close()
    assert left == 0


async def test_a_syntax_error_just_after_a_savepoint_can_be_rolled_back_to_it(
    db_target: Path | str,
) -> None:
    """A handler's savepoint goes with its next statement on PostgreSQL, and a
    syntax error there stops the round trip before the savepoint is made: the
    handler's ROLLBACK TO must still find it (else the event fails and is
    redelivered for ever), as it does on SQLite."""
    db = await Database.open(db_target)

    def step(conn: sqlite3.Connection) -> list[str]:
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)")
        conn.execute("SAVEPOINT step")
        try:
            conn.execute("SELEC 1")  # a bug in a handler
        except sqlite3.OperationalError:
            conn.execute("ROLLBACK TO step")
        conn.execute("RELEASE step")
        return [r[0] for r in conn.execute("SELECT register FROM register_counters")]

    try:
        assert await db.transaction(step) == ["SG"]
    finally:
        await db.close()


async def test_a_statement_postgresql_cannot_prepare_is_sent_with_its_values(
    postgresql_cluster: Cluster,
) -> None:
    """Statements are prepared on the server the first time a connection sends
    them; one it cannot prepare (`? IS NULL` with a text, whose type nothing
    says) is sent with its values written in from then on, and gives what it
    would have given."""
    db = await Database.open(postgresql_cluster.fresh())

    def count(conn: sqlite3.Connection, *values: str | None) -> list[int]:
        return [
            int(
                conn.execute(
                    "SELECT COUNT(*) FROM register_counters WHERE ? IS NULL", (value,)
                ).fetchone()[0]
            )
            for value in values
        ]

    try:
        await db.transaction(
            lambda conn: conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
            )
        )
        assert await db.transaction(lambda conn: count(conn, None, "x")) == [1, 0]
        reruns = db.reruns
        assert reruns >= 1  # the PREPARE failed once
        assert await db.transaction(lambda conn: count(conn, "x", None)) == [0, 1]
        assert db.reruns == reruns  # sent with its values at once, now
    finally:
        await db.close()


async def test_prepared_statements_outlive_a_failed_round_trip_and_a_migration_elsewhere(
    postgresql_cluster: Cluster,
) -> None:
    """A PREPARE that went in a failed round trip may have run (PREPARE is not
    undone by the rollback): the next attempt finds out rather than prepare the
    name twice. A column added by another process (a rolling upgrade) changes
    what `SELECT *` returns: the connection's prepared statements are dropped
    and the unit is rerun, not failed."""
    url = postgresql_cluster.fresh()
    db = await postgres.PostgresDatabase.open(url, size=1)

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM register_counters WHERE year = ?", (2026,)).fetchall()
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)")
        conn.execute("INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)")

    def reading(conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute("SELECT * FROM register_counters WHERE year = ?", (2026,)).fetchall()
        return [row.keys()[-1] for row in rows] or ["none"]

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await db.transaction(failing)
        # Its PREPARE was found to have run: the insert stays prepared.
        assert not [
            sql for sql in postgres._not_preparable if "INSERT INTO register_counters" in sql
        ]
        assert await db.transaction(reading) == ["none"]
        await db.transaction(
            lambda conn: conn.execute(
                "INSERT INTO register_counters (register, year, last) VALUES ('SG', 2026, 1)"
            )
        )
        assert await db.transaction(reading) == ["last"]
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("ALTER TABLE register_counters ADD COLUMN note TEXT")
        assert await db.transaction(reading) == ["note"]
    finally:
        await db.close()


def _count_desk_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each text the desk's (asynchronous) connections send from now on, one per
    round trip, until monkeypatch.undo()."""
    sent: list[str] = []
    execute = psycopg.AsyncClientCursor.execute

    async def counting(
        self: psycopg.AsyncClientCursor[Any], query: Any, *args: Any, **kwargs: Any
    ) -> Any:
        sent.append(str(query))
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncClientCursor, "execute", counting)
    return sent


async def test_the_desks_reads_are_one_read_only_snapshot_begun_with_their_first_statement(
    postgresql_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk's connection opens its transaction in its first statement's round
    trip; what another connection commits meanwhile is not seen; a write is
    refused; a use that sent nothing, or whose first statement failed, leaves
    no transaction behind."""
    url = postgresql_cluster.fresh()
    db = await Database.open(url)
    reader = await postgres.PostgresReader(url, size=1).open()
    count = "SELECT COUNT(*) FROM register_counters WHERE year > ?"
    insert = "INSERT INTO register_counters (register, year, last) VALUES ('SG', ?, 1)"
    try:
        sent = _count_desk_sent(monkeypatch)
        async with reader.connection() as conn:
            first = await (await conn.execute(count, (2000,))).fetchone()
            await db.transaction(lambda c: c.execute(insert, (2030,)))
            again = await (await conn.execute(count, (2000,))).fetchone()
        monkeypatch.undo()
        assert (first[0], again[0]) == (0, 0)
        assert sent[0].startswith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT")
        assert sent[1:] == [sent[1], "ROLLBACK"]  # three round trips, not four
        async with reader.connection() as conn:
            with pytest.raises(sqlite3.OperationalError, match="read-only"):
                await conn.execute(insert, (2031,))
        async with reader.connection() as conn:
            pass
        async with reader.connection() as conn:  # its first statement, with the BEGIN, fails
            with pytest.raises(sqlite3.OperationalError):
                await conn.execute("SELECT * FROM no_such_table")
        async with reader.connection() as conn:  # the one pooled connection, clean again
            assert (await (await conn.execute(count, (2000,))).fetchone())[0] == 1
    finally:
        monkeypatch.undo()
        await reader.close()
        await db.close()


async def test_the_desks_units_come_from_the_readers_copy_while_the_tree_stands(
    postgresql_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk reads the tree's version with its BEGIN: while it is the copy's,
    a page's units are the copy (no statement); a unit committed by another
    connection is in the next page's."""
    url = postgresql_cluster.fresh()
    db = await Database.open(url)
    reader = await postgres.PostgresReader(url, size=1).open()
    add = "INSERT INTO units (parent_id, name, path, created_at) VALUES (?, ?, ?, '2026-01-01')"

    async def page() -> tuple[list[str], int]:
        async with reader.connection() as conn:
            await (await conn.execute("SELECT 1")).fetchone()  # the page's first read
            before = len(sent)
            units = await desk_reads.units(conn)
            return sorted(unit.path for unit in units), len(sent) - before

    try:
        await db.transaction(lambda c: c.execute(add, (None, "中心", "中心")))
        sent = _count_desk_sent(monkeypatch)
        first, read_first = await page()
        again, read_again = await page()
        await db.transaction(lambda c: c.execute(add, (1, "保安部", "中心/保安部")))
        grown, read_grown = await page()
        monkeypatch.undo()
        assert first == again == ["中心"] and grown == ["中心", "中心/保安部"]
        assert (read_first, read_again, read_grown) == (1, 0, 1)
    finally:
        monkeypatch.undo()
        await reader.close()
        await db.close()


def test_a_copy_of_the_tree_gives_way_to_any_other_version_read() -> None:
    """A version is only ever compared for equality: after a restore brings back
    an older count, the first transaction that reads it replaces the copy, so
    the old copy cannot answer when the count reaches its number again."""
    trees = postgres.UnitTrees()
    assert trees.get(7, lambda: (7, "before the restore")) == (7, "before the restore")
    assert trees.get(7, lambda: (7, "never read")) == (7, "before the restore")
    assert trees.get(5, lambda: (5, "restored")) == (5, "restored")
    assert trees.kept(7) is None and trees.kept(5) == "restored"
