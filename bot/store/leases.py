"""The SQL of roles held by one process at a time (bot/roles.py): a session-level
advisory lock on a connection of the role's own, never the pool's, so that it is
held exactly as long as that connection lives. A process that dies, or loses the
connection, loses the role with it; the server frees the lock at once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0


def role_key(name: str) -> int:
    digest = hashlib.blake2b(f"role:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease:
    """One named role's lock on PostgreSQL. Blocking calls: run them in a thread."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.key = role_key(name)
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def backend_pid(self) -> int | None:
        return self._conn.info.backend_pid if self._conn is not None else None

    def try_take(self) -> bool:
        """True if this process holds the role now (taken, or held already)."""
        try:
            if self._conn is None:
                # Named so that an operator (pg_stat_activity) sees who holds what.
                self._conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=10,
                    application_name=f"frontline {self.name} pid={os.getpid()}",
                )
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error:
            self.drop()
            return False
        taken = bool(row and row[0])
        if not taken:
            self.drop()  # no idle connection kept while another holds the role
        return taken

    def still_held(self) -> bool:
        """Whether the connection (and so the lock) is still there."""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.drop()
            return False
        return True

    def drop(self) -> None:
        """Give the role up: closing the connection frees its lock."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


async def listen(url: str, channel: str, heard: Callable[[], None]) -> None:
    """Call `heard` whenever any process's transaction that NOTIFYs `channel`
    commits, until cancelled. A lost connection is made again (every
    `RECONNECT_SECONDS`); `heard` is called after each (re)connect, since
    notifications sent meanwhile are not kept for us."""
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
            async with conn:
                await conn.execute(f"LISTEN {channel}")
                heard()
                async for _ in conn.notifies():
                    heard()
        except psycopg.Error as exc:
            log.warning("listening failed channel=%s error=%s", channel, exc)
        await asyncio.sleep(RECONNECT_SECONDS)
