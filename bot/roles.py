"""Roles that one process at a time holds (the sender of a channel, the
scheduler, Telegram long polling). With PostgreSQL a role is a session-level
advisory lock on a connection of its own (bot/store/leases.py): the process that
does not hold it tries again every `retry` seconds, and the one that holds it
checks as often that its connection lives, so that a dead holder's role passes
to another process within a few seconds. With SQLite one process owns the
database, so every role is always held."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.store.dialect import is_postgresql
from bot.store.leases import Lease

log = logging.getLogger(__name__)

RETRY = 2.0  # seconds between attempts to take a role, and between checks on a held one


class Role:
    """`held` is set while this process holds the role; `run()` keeps it up to date
    until cancelled (then the role is given up)."""

    def __init__(self, db_target: object, name: str, *, retry: float = RETRY) -> None:
        self.name = name
        self.retry = retry
        self.held = asyncio.Event()
        self.losses = 0  # times the held role was lost (its connection gone)
        self._lease = Lease(str(db_target), name) if is_postgresql(db_target) else None
        if self._lease is None:
            self.held.set()

    async def run(self) -> None:
        if self._lease is None:
            return
        lease = self._lease
        try:
            while True:
                if self.held.is_set():
                    if not await asyncio.to_thread(lease.still_held):
                        self.held.clear()
                        self.losses += 1
                        log.warning("role lost role=%s", self.name)
                        continue  # try to take it again at once
                elif await asyncio.to_thread(lease.try_take):
                    self.held.set()
                    log.info("role taken role=%s", self.name)
                await asyncio.sleep(self.retry)
        finally:
            self.held.clear()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(lease.drop)
