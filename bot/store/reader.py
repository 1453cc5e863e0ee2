"""Read connections beside the writer: a few read-only aiosqlite connections
on the database file, for the desk's pages, searches and exports. Each use is
one read transaction (one consistent snapshot, WAL lets the writer go on);
nothing here ever runs inside the writer's transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

import aiosqlite

T = TypeVar("T")


async def open_reader(db: Any, size: int = 4) -> Reader:
    """The read connections for `db`, on its engine: this module's Reader for a
    SQLite file, bot/store/postgres.py's PostgresReader (same interface) on
    PostgreSQL. `size` 0: no pooled connections, only `run` (a connection of its
    own per call, in a worker thread)."""
    if db.engine == "postgresql":
        from bot.store.postgres import PostgresReader

        # Duck-typed: its connections have aiosqlite's face over psycopg's.
        return cast(Reader, await PostgresReader(db.url, size).open())
    return await Reader(db.path, size).open()


class Reader:
    def __init__(self, path: str | Path, size: int = 4) -> None:
        self.path = Path(path)
        self.size = size
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []

    @property
    def _uri(self) -> str:
        return f"file:{quote(str(self.path.resolve()))}?mode=ro"

    async def open(self) -> Reader:
        for _ in range(self.size):
            conn = await aiosqlite.connect(self._uri, uri=True, isolation_level=None)
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA query_only = ON")
            await conn.execute("PRAGMA busy_timeout = 5000")
            self._all.append(conn)
            self._idle.put_nowait(conn)
        return self

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection inside one read transaction, returned to the pool after."""
        conn = await self._idle.get()
        try:
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await conn.execute("ROLLBACK")
        finally:
            self._idle.put_nowait(conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` on a read-only sqlite3 connection of its own, in a worker
        thread: for the store's synchronous readers (a printable document)."""

        def call() -> T:
            conn = sqlite3.connect(self._uri, uri=True)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA query_only = ON")
                return fn(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(call)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
