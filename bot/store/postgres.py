"""The PostgreSQL engine: the same store interface as the SQLite Database, on
psycopg 3 and its connection pool. A unit of work is still a plain function
`fn(conn)`; here it runs on a worker thread with a pooled connection, inside one
REPEATABLE READ transaction, and a serialization failure or a deadlock reruns it
from the start (the caller never sees one). `conn` is a small adapter with
sqlite3's face (execute, cursors, rows by name and position), so handlers and
registers do not know which engine runs them; the SQL is translated in
bot/store/dialect.py.

Why REPEATABLE READ: every unit of work was written for SQLite, where write
transactions never interleave. Each sees one snapshot, and a row that another
transaction changed after that snapshot cannot be changed again (PostgreSQL
fails the second writer, and it is rerun): a conversation's version, a claim of
an outbox row and a hazard's state cannot race. What it does not stop, write
skew between rows that two transactions only read, cannot happen where it
matters: one person's events hold a lock on that person
(conversations.lock_person), the sender and the scheduler run in one process at
a time (bot/roles.py), and a register's numbers are rows inserted under a
primary key, outside the transaction (hazards.next_number).
SERIALIZABLE was measured first: its page-level predicate locks failed
unrelated people's events against each other (~600 reruns per 2,000 events
with 200 people, p99 over 300 ms), REPEATABLE READ only real collisions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import queue
import random
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
import psycopg.errors
from psycopg.adapt import Dumper, Loader
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from bot.store import dialect
from bot.store.db import Database, Job, migrations, resolve, split_statements

log = logging.getLogger(__name__)

T = TypeVar("T")

# Each process's connections; the desk's reads have their own (bot/store/reader.py).
POOL_SIZE = 8
# Two processes migrating at once wait for each other on this advisory lock's key.
MIGRATION_LOCK = 0x66726F6E  # 'fron'
MAX_RERUNS = 100
_CONFLICTS = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


# Statements with no result to read: they wait for the next round trip.
_NO_RESULT = re.compile(r"^\s*(SAVEPOINT|RELEASE)\s+\w+\s*$", re.I)
# Writes: they wait for the next round trip unless their cursor is read.
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)


# Statements prepared on the server (PREPARE, then EXECUTE with the values): the
# server parses and plans each once per connection, where a statement with its
# values written in would be parsed and planned every time (about half of the
# server's time per event, measured with pg_stat_statements).
_PREPARABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
# A parameter's type as the values written in would have it (bot/store/postgres.py's
# dumpers): an integer a bigint, a bool an integer; anything else, like a quoted
# literal, takes its type from where it stands.
_PARAMETER_TYPES = {int: "bigint", bool: "integer", bytes: "bytea"}
# One name per statement and parameter types, for the process.
_statement_names: dict[tuple[str, tuple[str, ...]], str] = {}
_statement_numbers = itertools.count(1)
MAX_PREPARED = 2000
# Statements PostgreSQL could not prepare (a parameter whose type nothing says):
# sent with their values written in.
_not_preparable: set[str] = set()
# The statements prepared on each connection.
_prepared_on: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[str]] = (
    weakref.WeakKeyDictionary()
)


# A statement that may change what Connection.remembered holds.
_WRITES_REMEMBERED = re.compile(
    r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)"
    r"\s+(units|staff|hazards|channel_identities)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What the adapter needs to know of a statement, worked out once per text."""

    no_result: bool  # SAVEPOINT, RELEASE: it waits for the next round trip
    write: bool  # INSERT, UPDATE, DELETE: it waits unless its cursor is read
    preparable: bool
    writes_tables: tuple[str, ...]  # of those Connection.remembered keeps reads of


@functools.lru_cache(maxsize=4096)
def _kind(sql: str) -> _Kind:
    return _Kind(
        no_result=bool(_NO_RESULT.match(sql)),
        write=bool(_WRITE.match(sql)),
        preparable=bool(_PREPARABLE.match(sql)),
        writes_tables=tuple(m.group(3).lower() for m in _WRITES_REMEMBERED.finditer(sql)),
    )


class ConnectionDropped(BaseException):
    """The transaction's first round trip met a connection the server had
    dropped (a restart, a failover): nothing ran, and it is tried again."""


class TransactionConflict(BaseException):
    """Another transaction collided with this one: the unit of work is rerun.
    A BaseException, so that a handler's `except Exception` (which logs a bug and
    answers the person) lets it through to the rerun."""


class StalePlans(TransactionConflict):
    """The connection's prepared statements no longer match the schema (another
    process migrated it) or are gone: they are dropped and the unit is rerun."""


class UnplacedError(TransactionConflict):
    """A statement failed in a round trip that carried others ahead of their
    answer (Connection): which one, and so where its error belongs, is not
    known. The unit is rerun sending each statement at its place, where the
    error reaches the code that made it (a handler's savepoint, its caller)."""


class UnitTrees:
    """The process's copy of one database's unit tree with its version: handed to
    every transaction that sees that version (Connection.unit_tree), replaced by
    any transaction that reads another. Never changed once made, so the worker
    threads share it."""

    def __init__(self) -> None:
        self._kept: tuple[int, Any] | None = None

    def get(self, version: int, load: Callable[[], tuple[int, T]]) -> tuple[int, T]:
        kept = self.kept(version)
        if kept is not None:
            return (version, kept)
        loaded = load()
        self.offer(loaded)
        return loaded

    def kept(self, version: int) -> Any:
        """The tree kept, if it is `version`; else None."""
        kept = self._kept
        return kept[1] if kept is not None and kept[0] == version else None

    def offer(self, loaded: tuple[int, Any]) -> None:
        """A tree just read with its version: kept in place of one of another
        version (a newer one, mostly; an older one only from a transaction begun
        before the change, and the next newer one replaces it again)."""
        self._kept = loaded


# The try of an advisory lock (Connection.lock), translated once.
_LOCK_TRY = dialect.translate("SELECT pg_try_advisory_xact_lock(?)")
_LOCK_KIND = _kind(_LOCK_TRY.sql)


# -- sqlite3's face ---------------------------------------------------------------------
class Row:
    """A result row read by position or by (case-insensitive) name, like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            position = self._index.get(key)  # our SQL's names are lower case already
            if position is None:
                position = self._index.get(key.lower())
                if position is None:
                    raise IndexError(f"No item with that key: {key!r}")
            return self._values[position]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values and self._index == other._index
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=False))!r})"


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    # The result's column names straight from libpq (cursor.description builds
    # an object per column, for every statement), and one index per set of names.
    result = cursor.pgresult
    names = tuple(result.fname(i) for i in range(result.nfields)) if result is not None else ()
    index = _indexes.get(names)
    if index is None:
        index = {}
        for position, name in enumerate(names):
            index.setdefault(bytes(name or b"").decode("utf-8", "replace").lower(), position)
        if len(_indexes) < 10_000:
            _indexes[names] = index
    return lambda values: Row(values, index)


_indexes: dict[tuple[bytes | None, ...], dict[str, int]] = {}


class _BoolAsInteger(Dumper):
    """sqlite3 stores True as 1: so do we, into the same INTEGER columns."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"

    def quote(self, obj: Any) -> bytes:
        return self.dump(obj)


class _Bigint(Dumper):
    """Integers as SQLite has them, 64 bits: a bare `SELECT ?` of a recursive CTE's
    start is then a bigint like the ids it meets."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return str(int(obj)).encode()

    def quote(self, obj: Any) -> bytes:
        return b"(" + self.dump(obj) + b")::bigint"


class _Number(Loader):
    """SUM() of integers is numeric in PostgreSQL: back as int (or float), as SQLite has it."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        try:
            return int(text)
        except ValueError:
            return float(text)


def configure(conn: psycopg.Connection[Any]) -> None:
    # Statements are prepared by Connection._bound, by name: psycopg's own count of
    # every text sent (each with its values written in, so each one new) is work
    # for nothing.
    conn.prepare_threshold = None
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    conn.adapters.register_dumper(int, _Bigint)
    conn.adapters.register_loader("numeric", _Number)


def _configure_outside(conn: psycopg.Connection[Any]) -> None:
    """Connection.outside()'s connections commit without waiting for the WAL to
    reach the disk (a second flush in every report, 2-3 ms here, otherwise).
    Safe: the transaction that uses what they wrote (the report with its number)
    commits after them, and a commit's flush takes all the WAL before it; if the
    server dies before that, the report was never committed and its number is
    free again, as when the report fails."""
    configure(conn)
    conn.execute("SET synchronous_commit = off")
    # Prepared only when asked (_run_outside's prepare=True): None would refuse that too.
    conn.prepare_threshold = 1_000_000


def connection_kwargs() -> dict[str, Any]:
    # Client-side binding: parameters are quoted into the text, so an untyped
    # `SELECT ?` (a recursive CTE's start) and SQLite's loose comparisons keep working.
    return {"autocommit": True, "cursor_factory": psycopg.ClientCursor, "row_factory": _row_factory}


def _sqlite_error(exc: psycopg.Error) -> BaseException:
    """The sqlite3 exception a unit of work (or its test) expects for this failure."""
    if isinstance(exc, _CONFLICTS):
        return TransactionConflict(str(exc))
    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(str(exc))
    return sqlite3.OperationalError(str(exc))


def _params(params: Sequence[Any] | dict[str, Any]) -> Any:
    """SQLite keeps a NUL character in text; PostgreSQL refuses it. Hostile input
    (a NUL typed into a chat) is stored with U+FFFD in its place, not refused."""
    if isinstance(params, dict):
        return {
            k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in params.items()
        }
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in params)


class Cursor:
    """sqlite3.Cursor's face over the result of one statement, its rows taken at
    once (libpq holds them all already), so the connection's psycopg cursor is
    free for the next statement while this one is read. A write's result comes
    when it is first read: until then the write waits to go with the next
    statement that needs an answer (Connection.execute)."""

    __slots__ = ("_conn", "_lastrowid", "_next", "_result", "_returns_id", "_rowcount", "_rows")

    def __init__(self, conn: Connection | None = None, returns_id: bool = False) -> None:
        """`conn`: the connection that still has to send the statement (None: a
        statement with no result to read, such as SAVEPOINT)."""
        self._conn = conn
        self._returns_id = returns_id
        self._lastrowid: int | None = None
        self._rowcount = -1
        self._result: Any = None
        self._rows: list[Row] = []
        self._next = 0

    def _take(self, cursor: psycopg.ClientCursor[Row]) -> None:
        """The statement's result, where `cursor` stands now."""
        self._conn = None
        self._rowcount = cursor.rowcount
        self._result = cursor.pgresult
        if self._result is not None and self._result.nfields:
            self._rows = cursor.fetchall()
        if self._returns_id:  # the id RETURNING was added for, as sqlite3's lastrowid
            self._lastrowid = int(self._rows[-1][0]) if self._rows else None
            self._next = len(self._rows)

    def _ready(self) -> None:
        if self._conn is not None:
            self._conn.flush()

    @property
    def lastrowid(self) -> int | None:
        self._ready()
        return self._lastrowid

    @property
    def rowcount(self) -> int:
        self._ready()
        return self._rowcount

    @property
    def description(self) -> Any:
        self._ready()
        result = self._result
        if result is None or not result.nfields:
            return None
        return tuple(
            (bytes(result.fname(i) or b"").decode(), None, None, None, None, None, None)
            for i in range(result.nfields)
        )

    def fetchone(self) -> Row | None:
        self._ready()
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        self._ready()
        rows = self._rows[self._next :]
        self._next = len(self._rows)
        return rows

    def fetchmany(self, size: int = 1) -> list[Row]:
        self._ready()
        rows = self._rows[self._next : self._next + size]
        self._next += len(rows)
        return rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())

    def close(self) -> None:
        self._ready()
        self._rows = []


class Connection:
    """sqlite3.Connection's face over one pooled psycopg connection, inside the
    transaction PostgresDatabase opened.

    Round trips: a statement goes to the server when its answer is needed. A
    read is sent at once; a write (INSERT, UPDATE, DELETE) and BEGIN, SAVEPOINT,
    RELEASE and a lock's try wait, in order, and go ahead of the next statement
    sent, or with COMMIT, in one round trip. A write's cursor sends at once if
    it is read (its rowcount, its lastrowid). An error in a round trip that
    carried statements ahead of their answer cannot be raised at the place of
    the statement that made it: the unit is rerun with every statement sent at
    its place (`eager`), where its own code sees the error (UnplacedError)."""

    engine = "postgresql"

    def __init__(
        self,
        conn: psycopg.Connection[Row],
        outside: Callable[[str, Sequence[Any]], Row | None] | None = None,
        held: Collection[int] = (),
        eager: bool = False,
        trees: UnitTrees | None = None,
    ) -> None:
        self._conn = conn
        self._outside = outside
        self._eager = eager
        # Advisory locks this session holds already (a rerun takes them before BEGIN).
        self._held = frozenset(held)
        # outside()'s undo statements, run if this transaction does not commit.
        self.undo: list[tuple[str, Sequence[Any]]] = []
        # LISTEN channels to notify at commit (each once, however often asked).
        self.notices: set[str] = set()
        # The advisory locks asked for: a rerun takes them before its snapshot.
        self.locks: set[int] = set()
        # Statements waiting for the next round trip, in order: their text with
        # the parameters bound, a lock's key (for its try), the cursor for a result.
        self.waiting: list[tuple[str, int | None, Cursor | None]] = []
        # The statements prepared on this connection; those whose PREPARE waits,
        # and those whose PREPARE went in a round trip that failed.
        self._prepared = _prepared_on.setdefault(conn, set())
        self.preparing: set[str] = set()
        self.unsure: set[str] = set()
        self.begun = False
        self._cursor: psycopg.ClientCursor[Row] | None = None
        # Reads remembered for this transaction by table (dialect.remember), each
        # table's forgotten by any statement that writes it (units, staff, hazards).
        self.remembered: dict[str, dict[object, Any]] = {}
        # The process's copy of the unit tree (unit_tree()), and the version of the
        # tree this transaction sees, read with its first statement (read_tree_version()).
        self._trees = trees
        self._tree_version: Cursor | None = None
        self._version: int | None = None
        self._units_written = False

    def _forget(self, kind: _Kind) -> None:
        """Forget the remembered reads of each table the statement may write; one
        that writes units leaves this transaction to read units itself."""
        for table in kind.writes_tables:
            self.remembered.pop(table, None)
            if table == "units":
                self._units_written = True

    def _psycopg_cursor(self) -> psycopg.ClientCursor[Row]:
        """One psycopg cursor for every statement (Cursor takes its rows at once)."""
        if self._cursor is None:
            self._cursor = cast("psycopg.ClientCursor[Row]", self._conn.cursor())
        return self._cursor

    def notify(self, channel: str) -> None:
        """NOTIFY `channel` when this transaction commits (`channel`: a constant
        of ours, an identifier, never a user's text)."""
        self.notices.add(channel)

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        kind = _kind(sql)
        if not params and kind.no_result:
            self.waiting.append((sql, None, None))
            if self._eager:
                self.flush()
            return Cursor()
        if kind.writes_tables:
            self._forget(kind)
        result = self._waiting(sql, kind, params)
        if self._eager or not kind.write:
            self.flush(result)
        return result

    def _waiting(self, sql: str, kind: _Kind, params: Sequence[Any] | dict[str, Any]) -> Cursor:
        """The statement, bound, waiting for the next round trip; its cursor."""
        translated = dialect.translate(sql)
        try:
            text = self._bound(kind, translated, _params(params))
        except psycopg.Error as exc:  # the wrong number of parameters, one that cannot be adapted
            raise sqlite3.ProgrammingError(str(exc)) from exc
        result = Cursor(self, translated.returns_id)
        self.waiting.append((text, None, result))
        return result

    def ahead(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """A read sent with the transaction's next round trip instead of at once
        (dialect.ahead): its rows are there when its cursor is read, and reading
        them first sends it, with whatever else waits."""
        result = self._waiting(sql, _kind(sql), params)
        if self._eager:
            self.flush(result)
        return result

    def read_tree_version(self) -> None:
        """Ask for the unit tree's version with the next round trip (the
        transaction's first, with its BEGIN: the version its snapshot holds)."""
        self._tree_version = self._waiting(dialect.TREE_VERSION, _kind(dialect.TREE_VERSION), ())

    def unit_tree(self, load: Callable[[sqlite3.Connection], tuple[int, T]]) -> T | None:
        """The unit tree as this transaction sees it: the process's copy if its
        version is this transaction's, else `load(conn)` (the tree and the
        version it is, read in one statement), which becomes the copy.
        None once this transaction has written units (its own changes count)."""
        if self._trees is None or self._units_written:
            return None
        if self._version is None:
            if self._tree_version is None:
                return None
            row = self._tree_version.fetchone()
            self._version = int(row[0]) if row else 0
        version, tree = self._trees.get(self._version, lambda: load(cast(sqlite3.Connection, self)))
        # At READ COMMITTED the tree read may be newer than the first statement's version.
        self._version = version
        return tree

    def _bound(self, kind: _Kind, translated: dialect.Translated, values: Any) -> str:
        """The statement as sent: EXECUTE of its prepared form with the values
        (the PREPARE waits ahead of it the first time on this connection), or
        the statement with the values written in."""
        cursor = self._psycopg_cursor()
        if (
            isinstance(values, dict)
            or len(values) != translated.placeholders
            or translated.numbered in _not_preparable
            or not kind.preparable
        ):
            return cursor.mogrify(translated.sql, values)
        types = tuple(_PARAMETER_TYPES.get(type(value), "unknown") for value in values)
        name = _statement_names.get((translated.numbered, types))
        if name is None:
            if len(_statement_names) >= MAX_PREPARED:
                return cursor.mogrify(translated.sql, values)
            name = _statement_names.setdefault(
                (translated.numbered, types), f"frontline_{next(_statement_numbers)}"
            )
        if name not in self._prepared and name not in self.preparing:
            declared = f" ({', '.join(types)})" if types else ""
            prepare = f"PREPARE {name}{declared} AS {translated.numbered}"
            if self._eager:
                self._prepare_alone(name, prepare, translated.numbered)
            else:
                self.waiting.append((prepare, None, None))
                self.preparing.add(name)
        if not values:
            return f"EXECUTE {name}"
        return cursor.mogrify(f"EXECUTE {name}({', '.join(['%s'] * len(values))})", values)

    def _prepare_alone(self, name: str, prepare: str, numbered: str) -> None:
        """PREPARE in a round trip of its own (a rerun after an error that could
        not be placed): if it fails, the statement is sent with its values
        written in from now on, and the unit is rerun (its transaction failed)."""
        self.flush()
        try:
            self._psycopg_cursor().execute(prepare)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and self._conn.broken:
                raise _sqlite_error(exc) from exc
            _not_preparable.add(numbered)
            log.info("statement not prepared, sent with its values: %s", exc)
            raise UnplacedError(f"statement not prepared: {exc}") from exc
        self.begun = True
        self._prepared.add(name)

    def flush(self, own: Cursor | None = None) -> None:
        """Send the waiting statements in one round trip and hand each cursor its
        result. `own`: the statement being executed, the last one, whose error
        is raised as its own if nothing that could fail waited ahead of it."""
        ahead, self.waiting = self.waiting, []
        if not ahead:
            return
        cursor = self._psycopg_cursor()
        # Only a statement sent alone raises its error as its own. With others ahead
        # of it, the one that failed is not known (a write waiting), nor what ran: a
        # syntax error anywhere stops the whole round trip before any of it runs,
        # so a SAVEPOINT sent with it was never made.
        # Sent eagerly, each statement is alone but for NOTIFY and COMMIT, whose
        # errors are the transaction's.
        unplaced = not self._eager and (len(ahead) > 1 or ahead[0][2] is not own)
        preparing, self.preparing = self.preparing, set()
        try:
            cursor.execute("; ".join(text for text, _, _ in ahead))
        except psycopg.Error as exc:
            for _, _, c in ahead:
                if c is not None:
                    c._conn = None
            # Whether each PREPARE ran is looked up after the rollback (PREPARE
            # is not undone by it).
            self.unsure |= preparing
            if isinstance(exc, psycopg.errors.InvalidSqlStatementName) or (
                isinstance(exc, psycopg.errors.FeatureNotSupported) and "cached plan" in str(exc)
            ):
                raise StalePlans(str(exc)) from exc
            dropped = isinstance(exc, psycopg.OperationalError) and self._conn.broken
            if dropped and not self.begun:
                raise ConnectionDropped(str(exc)) from exc
            if unplaced and not dropped and not isinstance(exc, _CONFLICTS):
                raise UnplacedError(str(exc)) from exc
            raise _sqlite_error(exc) from exc
        self.begun = True
        self._prepared |= preparing
        for _, key, c in ahead:
            if key is not None:
                row = cursor.fetchone()
                if not (row and row[0]):
                    raise TransactionConflict(
                        f"advisory lock {key} was held by another transaction"
                    )
            elif c is not None:
                c._take(cursor)
            cursor.nextset()

    def commit(self) -> None:
        """What waits, the notifications and COMMIT, in one round trip (the
        server sends the notifications only if the commit succeeds)."""
        for channel in sorted(self.notices):
            self.waiting.append((f"NOTIFY {channel}", None, None))
        self.waiting.append(("COMMIT", None, None))
        self.flush()

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> Cursor:
        self._forget(_kind(sql))
        translated = dialect.translate(sql)
        query = translated.sql.removesuffix(" RETURNING id") if translated.returns_id else None
        self.flush()
        cursor = self._psycopg_cursor()
        try:
            cursor.executemany(query or translated.sql, [_params(p) for p in seq])
        except psycopg.Error as exc:
            raise _sqlite_error(exc) from exc
        result = Cursor()
        result._take(cursor)
        return result

    def executescript(self, sql: str) -> None:
        for statement in split_statements(sql):
            self.execute(statement)
        self.flush()

    def lock(self, key: int) -> None:
        """Hold the advisory lock `key` until this transaction ends. If another
        transaction (in any process) holds it, this unit of work is rerun from
        the start once that one has ended: this transaction's snapshot was taken
        before the wait, so what it would read is what the other one has just
        changed. The rerun takes the lock before its snapshot. The try goes with
        the next statement, in its round trip."""
        self.locks.add(key)
        if key in self._held:
            return
        # Prepared like any statement (a literal key would be planned in every event).
        self.waiting.append((self._bound(_LOCK_KIND, _LOCK_TRY, (int(key),)), key, None))
        if self._eager:
            self.flush()

    def outside(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run `sql` on a connection of its own, committed at once whatever becomes
        of this transaction, and return its first row: for what must neither wait
        for this transaction's end nor be held by it (a register's next number)."""
        if self._outside is None:
            raise RuntimeError("no connection for statements outside the transaction")
        return self._outside(sql, params)

    def undo_outside(self, sql: str, params: Sequence[Any]) -> None:
        """Run `sql` as outside() does if this transaction does not commit (it is
        rerun, or fails): what undoes a statement run outside it."""
        self.undo.append((sql, params))


# -- the database -------------------------------------------------------------------------
class PostgresDatabase(Database):
    """`transaction(fn)`: `fn(conn)` in one REPEATABLE READ transaction, rerun on a
    conflict, committed before its result is handed back. `read(fn)`: the same
    at READ COMMITTED. Units of work run in parallel, up to the pool's size: `fn`
    may run more than once, so it must not change anything outside `conn` that a
    rerun would repeat."""

    def __init__(self, url: str, pool: ConnectionPool[Any], size: int) -> None:
        self.path = url
        self.url = url
        self._pool = pool
        # Connection.outside()'s statements: rare (a register's number), short,
        # never waiting on a transaction; connected when first needed.
        self._outside: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=0,
            max_size=2,
            kwargs=connection_kwargs(),
            configure=_configure_outside,
            num_workers=1,
            open=True,
        )
        # One worker thread per pooled connection, each taking the next unit of work
        # from the queue (as SQLite's writer thread does): a hop to a worker and back
        # costs 20 µs here, where ThreadPoolExecutor's futures cost 50 (and 120 with
        # one unit at a time), measured on this 2-core machine.
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._serve, name=f"frontline-pg-{n}", daemon=True)
            for n in range(size)
        ]
        for worker in self._workers:
            worker.start()
        self.trees = UnitTrees()
        self._closed = False
        self.reruns = 0

    @property
    def engine(self) -> str:
        return "postgresql"

    @classmethod
    async def open(cls, target: str | Any, size: int = POOL_SIZE) -> PostgresDatabase:
        url = str(target)
        await asyncio.to_thread(migrate_url, url)
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs=connection_kwargs(),
            configure=configure,
            open=False,
        )
        await asyncio.to_thread(pool.open, True, 30.0)
        return cls(url, pool, size)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn, write=True)

    def _undo(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        for sql, params in reversed(statements):
            try:
                self._run_outside(sql, params)
            except (sqlite3.Error, psycopg.Error):
                log.exception("undo outside the transaction failed sql=%s", sql.split()[0])

    def _run_outside(self, sql: str, params: Sequence[Any]) -> Row | None:
        """`sql` on an outside connection, bound by the server and prepared there
        the first time (psycopg's own prepared statements): a register number's
        statement is planned once per connection, not for every report (150 -> 70 µs
        of the server's time, 250 -> 150 µs in all, measured here). A plan that a
        migration elsewhere made stale drops the connection and runs again, and so
        does a connection the server dropped (what ran on it committed at once or
        not at all: a number taken as it dropped is skipped, as in a crash)."""
        query, values = dialect.translate(sql).sql, _params(params)
        for attempt in range(2):
            with self._outside.connection() as raw:
                try:
                    cursor: psycopg.Cursor[Row] = psycopg.Cursor(raw, row_factory=raw.row_factory)
                    return cursor.execute(query, values, prepare=True).fetchone()
                except psycopg.errors.FeatureNotSupported as exc:
                    if attempt or "cached plan" not in str(exc):
                        raise _sqlite_error(exc) from exc
                    raw.close()  # its prepared statements with it; the pool connects anew
                except psycopg.OperationalError as exc:
                    if attempt or not raw.broken:
                        raise _sqlite_error(exc) from exc
                    # The pool replaces a broken connection when it is given back.
                except psycopg.Error as exc:
                    raise _sqlite_error(exc) from exc
        raise AssertionError("unreachable")

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn, write=False)

    async def _submit(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._closed:
            raise RuntimeError("database is closed")
        loop = asyncio.get_running_loop()
        job = Job(fn=fn, write=write, future=loop.create_future(), loop=loop)
        self._jobs.put(job)
        return cast(T, await job.future)

    def _serve(self) -> None:
        """A worker thread: each unit of work in turn, until close() says stop. A
        caller that was cancelled meanwhile finds its unit done or not, as it was
        when sent (its outcome is dropped)."""
        while (job := self._jobs.get()) is not None:
            try:
                level = "REPEATABLE READ" if job.write else "READ COMMITTED"
                job.outcome = (True, self._run(job.fn, level))
            except BaseException as exc:  # handed to the caller, as its own
                job.outcome = (False, exc)
            resolve([job])
            del job  # not kept alive (its result, its closures) while the thread waits

    def _run(self, fn: Callable[[sqlite3.Connection], T], level: str) -> T:
        # The advisory locks earlier attempts asked for. The next attempt takes them
        # as session locks before its BEGIN, so its snapshot is taken once they are
        # held: a hot row behind a lock (a register's counter) cannot change under
        # it, where each rerun would otherwise race the next writer again.
        needed: set[int] = set()
        # After an error that could not be placed, every statement goes at its place.
        eager = False
        for attempt in itertools.count():
            if attempt:
                self.reruns += 1
                if attempt > MAX_RERUNS:
                    raise sqlite3.OperationalError(f"transaction conflicted {attempt} times")
                # A little apart, so that the same two do not collide again at once.
                time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                log.debug("transaction conflict; rerun attempt=%s eager=%s", attempt, eager)
            with self._pool.connection() as raw:
                held = sorted(needed)
                try:
                    for key in held:
                        raw.execute("SELECT pg_advisory_lock(%s)", (key,))
                except psycopg.OperationalError:
                    if attempt >= 3:
                        raise
                    continue
                conn = Connection(raw, self._run_outside, held, eager, self.trees)
                conn.begun = bool(held)
                # BEGIN goes with the first statement, in its round trip, and so does
                # the read of the unit tree's version its snapshot holds.
                conn.waiting.append((f"BEGIN ISOLATION LEVEL {level}", None, None))
                conn.read_tree_version()
                opening = len(conn.waiting)
                # What this attempt did outside its transaction is undone unless it
                # commits (or a lost connection leaves its COMMIT's outcome unknown).
                undo = True
                stale = False
                try:
                    if eager:
                        conn.flush()
                    result = fn(cast(sqlite3.Connection, conn))
                    if conn.begun or len(conn.waiting) > opening or conn.notices:
                        try:
                            conn.commit()
                        except BaseException:
                            undo = not raw.broken
                            raise
                    undo = False
                    return result
                except ConnectionDropped:
                    # The pool replaces the connection; nothing has run yet, so try again.
                    if attempt >= 3:
                        raise
                    continue
                except TransactionConflict as exc:
                    eager = eager or isinstance(exc, UnplacedError)
                    stale = isinstance(exc, StalePlans)
                    raw.execute("ROLLBACK")
                except psycopg.Error as exc:  # COMMIT itself can report a conflict
                    with contextlib.suppress(psycopg.Error):
                        raw.execute("ROLLBACK")
                    if not isinstance(exc, _CONFLICTS):
                        raise _sqlite_error(exc) from exc
                except BaseException:
                    with contextlib.suppress(psycopg.Error):
                        raw.execute("ROLLBACK")
                    raise
                finally:
                    needed |= conn.locks
                    if conn.unsure or stale:
                        self._settle_prepared(raw, conn, stale)
                    if undo:
                        self._undo(conn.undo)
                    if held:
                        with contextlib.suppress(psycopg.Error):
                            raw.execute("SELECT pg_advisory_unlock_all()")
        raise AssertionError("unreachable")

    @staticmethod
    def _settle_prepared(raw: psycopg.Connection[Any], conn: Connection, stale: bool) -> None:
        """After a failed attempt, out of its transaction: which PREPAREs of a
        failed round trip ran, or (`stale`) none of the connection's stand."""
        if raw.broken or raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return
        prepared = _prepared_on.setdefault(raw, set())
        try:
            if stale:
                raw.execute("DEALLOCATE ALL")
                prepared.clear()
                return
            rows = raw.execute(
                "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)", (list(conn.unsure),)
            ).fetchall()
        except psycopg.Error:
            log.exception("prepared statements not settled; the connection is dropped")
            raw.close()  # the pool replaces a closed connection
            return
        prepared |= {str(row[0]) for row in rows}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Units already sent run first: each worker stops at its sentinel, after them.
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            await asyncio.to_thread(worker.join)
        await asyncio.to_thread(self._pool.close)
        await asyncio.to_thread(self._outside.close)


def migrate_url(url: str) -> int:
    """Bring the schema at `url` up to date, under an advisory lock: of two
    processes starting together, the second waits and then finds nothing to do."""
    with psycopg.connect(url, **connection_kwargs()) as raw:
        configure(raw)
        raw.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            return migrate(raw)
        finally:
            raw.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def migrate(raw: psycopg.Connection[Any]) -> int:
    known = raw.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    current = 0
    if known and known[0]:
        row = raw.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
    wanted = migrations("postgresql")
    if wanted and current >= wanted[-1][0]:
        return current  # up to date: a start changes nothing in the catalog
    for statement in dialect.PRELUDE:
        raw.execute(statement)
    raw.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL)"
    )
    for version, name, sql in wanted:
        if version <= current:
            continue
        with raw.transaction():
            for statement in dialect.order_tables(split_statements(sql)):
                translated = dialect.translate_schema(statement)
                if translated.strip():
                    raw.execute(translated)
            raw.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, name)
            )
        log.info("migration applied version=%s name=%s engine=postgresql", version, name)
        current = version
    return current


# -- the desk's reads ---------------------------------------------------------------------
class AsyncCursor:
    """aiosqlite's cursor face over a psycopg async cursor."""

    def __init__(self, cursor: psycopg.AsyncClientCursor[Row]) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._cursor.description

    async def fetchone(self) -> Row | None:
        return await self._cursor.fetchone() if self._cursor.description else None

    async def fetchall(self) -> list[Row]:
        return await self._cursor.fetchall() if self._cursor.description else []

    async def fetchmany(self, size: int = 1) -> list[Row]:
        return await self._cursor.fetchmany(size) if self._cursor.description else []

    async def close(self) -> None:
        await self._cursor.close()

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Executing:
    """What AsyncConnection.execute returns: awaited, the cursor; or `async with`."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, AsyncCursor]]) -> None:
        self._run = run
        self._cursor: AsyncCursor | None = None

    def __await__(self) -> Generator[Any, None, AsyncCursor]:
        return self._run().__await__()

    async def __aenter__(self) -> AsyncCursor:
        self._cursor = await self._run()
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class AsyncConnection:
    """aiosqlite.Connection's face over one pooled async psycopg connection.
    `begin`: the statement that opens its transaction, sent with the first
    statement, in its round trip."""

    engine = "postgresql"

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Row],
        begin: str | None = None,
        trees: UnitTrees | None = None,
    ) -> None:
        self._conn = conn
        self.begin = begin
        # The reader's copy of the unit tree, and the version of the tree this
        # transaction sees, read with its BEGIN (as Connection does).
        self._trees = trees
        self._version: int | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Executing:
        async def run() -> AsyncCursor:
            translated = dialect.translate(sql)
            cursor = cast("psycopg.AsyncClientCursor[Row]", self._conn.cursor())
            begin, self.begin = self.begin, None
            versioned = begin is not None and self._trees is not None
            text = translated.sql
            if begin:
                text = (
                    f"{begin}; {dialect.TREE_VERSION}; {text}" if versioned else f"{begin}; {text}"
                )
            try:
                await cursor.execute(text, _params(params))
                if begin:
                    cursor.nextset()
                if versioned:
                    row = await cursor.fetchone()
                    self._version = int(row[0]) if row else 0
                    cursor.nextset()  # to the statement's own result
            except psycopg.Error as exc:
                raise _sqlite_error(exc) from exc
            return AsyncCursor(cursor)

        return _Executing(run)

    async def unit_tree(self, load: Callable[[Any], Awaitable[tuple[int, T]]]) -> T | None:
        """Connection.unit_tree for the desk's reads: the reader's copy if it is
        the version this transaction's first statement read, else `await
        load(conn)`, which becomes the copy. None before the first
        statement."""
        if self._trees is None or self._version is None:
            return None
        kept = self._trees.kept(self._version)
        if kept is not None:
            return cast(T, kept)
        loaded = await load(self)
        self._trees.offer(loaded)
        self._version = loaded[0]
        return loaded[1]


async def _configure_async(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.prepare_threshold = None
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    conn.adapters.register_dumper(int, _Bigint)
    conn.adapters.register_loader("numeric", _Number)


class PostgresReader:
    """The desk's reads on PostgreSQL, with bot/store/reader.py's interface: a few
    pooled connections, each use one read-only REPEATABLE READ transaction (one
    consistent snapshot, like SQLite's read transaction)."""

    def __init__(self, url: str, size: int = 4) -> None:
        self.url = url
        self.size = size
        self._pool: AsyncConnectionPool[Any] | None = None
        self.trees = UnitTrees()

    async def open(self) -> PostgresReader:
        if self.size == 0:  # `run` only
            return self
        kwargs = connection_kwargs()
        kwargs["cursor_factory"] = psycopg.AsyncClientCursor
        self._pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.size,
            kwargs=kwargs,
            configure=_configure_async,
            open=False,
        )
        await self._pool.open(wait=True, timeout=30.0)
        return self

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        assert self._pool is not None, "open() first"
        async with self._pool.connection() as raw:
            conn = AsyncConnection(
                raw, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", self.trees
            )
            try:
                yield conn
            finally:
                if conn.begin is None:  # its first statement went
                    await raw.execute("ROLLBACK")

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` on a synchronous connection of its own, in a worker thread,
        inside one read-only transaction: for the store's synchronous readers."""

        def call() -> T:
            with psycopg.connect(self.url, **connection_kwargs()) as raw:
                configure(raw)
                raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    return fn(cast(sqlite3.Connection, Connection(raw)))
                finally:
                    raw.execute("ROLLBACK")

        return await asyncio.to_thread(call)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
