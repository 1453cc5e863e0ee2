"""Read connections beside the writer: a few read-only aiosqlite connections
on the database file, for the desk's pages, searches and exports. Each use is
one read transaction (one consistent snapshot, WAL lets the writer go on);
nothing here ever runs inside the writer's transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiosqlite


class Reader:
    def __init__(self, path: str | Path, size: int = 4) -> None:
        self.path = Path(path)
        self.size = size
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []

    async def open(self) -> Reader:
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        for _ in range(self.size):
            conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
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

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
