"""The SQLite connection and the thread that owns it (in place of aiosqlite, whose
one hop per statement costs ~100 µs here). A unit of work is a plain
function run on that thread inside one transaction, so a whole inbound event
costs one hop between the event loop and the database, not one per statement."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

from bot.store import dialect

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long one attempt to take the write lock waits inside SQLite; the writer
# thread then tries again (with a log line while it waits), never giving up.
BUSY_TIMEOUT_MS = 1000
BUSY_LOG_EVERY_SECONDS = 5.0


def is_busy(exc: BaseException) -> bool:
    """Whether SQLite refused because another connection holds the lock."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return "locked" in message or "busy" in message


VARIANT = ".postgresql.sql"


def migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """The numbered migrations, in order. For PostgreSQL a `NNNN_name.postgresql.sql`
    beside a migration takes its place (bot/store/dialect.py translates the rest)."""
    found: dict[int, tuple[int, str, str]] = {}
    variants: dict[int, tuple[int, str, str]] = {}
    for entry in resources.files("bot.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            version = int(name.split("_", 1)[0])
            into = variants if name.endswith(VARIANT) else found
            into[version] = (version, name, entry.read_text(encoding="utf-8"))
    if engine == "postgresql":
        found.update(variants)
    return sorted(found.values())


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the database file (created readable by this user only) with WAL and
    foreign keys on, and bring its schema up to date."""
    path = str(path)
    if path != ":memory:" and not os.path.exists(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The file holds phones and reports: create it private before SQLite opens it.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Short: a writer elsewhere (an import, a backup, a sqlite3 shell) is waited
    # out by Database._begin, which retries for as long as it takes.
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Checkpoints run on their own thread (Database._checkpoint); this is the
    # backstop should that thread fall behind, at about 40 MB of WAL.
    conn.execute("PRAGMA wal_autocheckpoint=10000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the numbered migrations the database has not seen; return the version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
    )
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    for version, name, sql in migrations():
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (?, ?)", (version, name)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("migration applied version=%s name=%s", version, name)
        current = version
    return int(current)


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no ';' in
    strings); a trigger's body, whose statements end in ';' too, stays whole."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements: list[str] = []
    pending = ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                statements.append(pending.strip().removesuffix(";").strip())
            pending = ""
    if pending.strip(" \t\n;"):
        statements.append(pending.strip().removesuffix(";").strip())
    return statements


@dataclass(slots=True)
class Job:
    """A unit of work sent to a database thread (SQLite's writer, or one of
    PostgreSQL's workers), and what became of it."""

    fn: Callable[[sqlite3.Connection], Any]
    write: bool
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    outcome: tuple[bool, Any] = (False, None)  # (ok, result or exception)


class Database:
    """The store's interface, whichever engine runs it: `transaction(fn)` runs
    `fn(conn)` atomically, `read(fn)` outside a write transaction. A plain path
    opens SQLite (SqliteDatabase below), a libpq URL PostgreSQL
    (bot/store/postgres.py)."""

    path: str

    @classmethod
    async def open(cls, target: str | Path) -> Database:
        if dialect.is_postgresql(target):
            from bot.store.postgres import PostgresDatabase

            return await PostgresDatabase.open(str(target))
        return await SqliteDatabase.open(target)

    @property
    def engine(self) -> str:
        return "sqlite"

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    """The async face of one SQLite connection, owned by one thread.

    `transaction(fn)` runs `fn(conn)` atomically: everything it writes commits,
    or (if it raises) nothing does. `read(fn)` runs it outside a transaction.
    Calls are served one at a time, in order.

    Group commit: write jobs that queue up while one is running are run
    together, each inside its own SAVEPOINT, under one COMMIT. A job that
    raises rolls back only its own savepoint; no job's result is handed back
    before the COMMIT that makes it durable. One COMMIT (the WAL write, about
    100 µs here) then serves many people's events."""

    MAX_GROUP = 64

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="frontline-db", daemon=True)
        self._thread.start()
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="frontline-db-checkpoint", daemon=True
        )
        if path != ":memory:":
            self._checkpointer.start()

    @classmethod
    async def open(cls, target: str | Path) -> SqliteDatabase:
        conn = await asyncio.to_thread(connect, target)
        return cls(conn, str(target))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return cast(T, await self._submit(fn, write=True))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return cast(T, await self._submit(fn, write=False))

    async def _submit(self, fn: Callable[[sqlite3.Connection], Any], *, write: bool) -> Any:
        if self._closed:
            raise RuntimeError("database is closed")
        loop = asyncio.get_running_loop()
        job = Job(fn=fn, write=write, future=loop.create_future(), loop=loop)
        self._jobs.put(job)
        return await job.future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_checkpoints.set()
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        if self._checkpointer.is_alive():
            await asyncio.to_thread(self._checkpointer.join)

    def _checkpoint(self, every_seconds: float = 1.0) -> None:
        """Copy the WAL back into the database from a second connection, so the
        fsyncs of a checkpoint never sit inside a person's transaction. PASSIVE
        never blocks the writer."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop_checkpoints.wait(every_seconds):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("checkpoint failed; the writer's backstop will catch up")
        finally:
            conn.close()

    # -- the database thread ---------------------------------------------------------
    def _serve(self) -> None:
        pending: list[Job] = []
        while True:
            job = self._jobs.get()
            if job is None:
                break
            pending.append(job)
            stop = False
            while len(pending) < self.MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                pending.append(more)
            self._run(pending)
            pending.clear()
            if stop:
                break
        self._conn.close()

    def _run(self, jobs: list[Job]) -> None:
        """Run queued jobs in order: consecutive writes as one group commit."""
        group: list[Job] = []
        for job in jobs:
            if job.write:
                group.append(job)
                continue
            self._commit_group(group)
            group = []
            try:
                job.outcome = (True, job.fn(self._conn))
            except BaseException as exc:  # handed to the awaiting caller
                job.outcome = (False, exc)
            resolve([job])
        self._commit_group(group)

    def _begin(self) -> None:
        """Take the write lock, however long another connection holds it: a
        busy store is waited out, never a reason to drop an event."""
        waited_since: float | None = None
        logged = 0.0
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                now = time.monotonic()
                if waited_since is None:
                    waited_since = logged = now
                    log.warning("database busy: another connection holds the write lock; waiting")
                elif now - logged >= BUSY_LOG_EVERY_SECONDS:
                    logged = now
                    log.warning("database still busy after %.0f s; waiting", now - waited_since)
                continue
            if waited_since is not None:
                log.warning("database free again after %.1f s", time.monotonic() - waited_since)
            return

    def _commit_group(self, group: list[Job]) -> None:
        if not group:
            return
        conn = self._conn
        try:
            self._begin()
            for job in group:
                conn.execute("SAVEPOINT job")
                try:
                    job.outcome = (True, job.fn(conn))
                except BaseException as exc:
                    conn.execute("ROLLBACK TO job")
                    job.outcome = (False, exc)
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group stands
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.exception("group commit failed jobs=%s", len(group))
            for job in group:
                job.outcome = (False, exc)
        resolve(group)


def resolve(jobs: list[Job]) -> None:
    """Hand results back: one wake-up of each waiting event loop per group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, waiting in by_loop.items():
        # A closed loop (RuntimeError) means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, waiting)


def _settle(jobs: list[Job]) -> None:
    for job in jobs:
        if job.future.done():  # the caller was cancelled
            continue
        ok, value = job.outcome
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
