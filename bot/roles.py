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
from collections.abc import Awaitable, Callable

from bot.store.dialect import is_postgresql
from bot.store.leases import Lease

log = logging.getLogger(__name__)

RETRY = 2.0  # seconds between attempts to take a role, and between checks on a held one


Hook = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class Role:
    """`held` is set while this process holds the role; `run()` keeps it up to date
    until cancelled (then the role is given up). `on_taken` runs once the role is
    this process's, before `held` is set (it may take over what the last holder
    left: a failure gives the role back, to be tried again); `on_lost` once it is
    not any more (lost, or given up at the end)."""

    def __init__(
        self,
        db_target: object,
        name: str,
        *,
        retry: float = RETRY,
        on_taken: Hook = _nothing,
        on_lost: Hook = _nothing,
    ) -> None:
        self.name = name
        self.retry = retry
        self.held = asyncio.Event()
        self.free = asyncio.Event()  # the other way round: set while not held
        self.free.set()
        self.tried = asyncio.Event()  # set after the first attempt to take the role
        self.losses = 0  # times the held role was lost (its connection gone)
        self.on_taken = on_taken
        self.on_lost = on_lost
        self._lease = Lease(str(db_target), name) if is_postgresql(db_target) else None

    async def run(self) -> None:
        lease = self._lease
        try:
            while True:
                if self.held.is_set():
                    if lease is not None and not await asyncio.to_thread(lease.still_held):
                        self._set(False)
                        self.losses += 1
                        log.warning("role lost role=%s", self.name)
                        await self._lost()
                        continue  # try to take it again at once
                elif lease is None or await asyncio.to_thread(lease.try_take):
                    if await self._taken():
                        self._set(True)
                        log.info("role taken role=%s", self.name)
                    elif lease is not None:
                        await asyncio.to_thread(lease.drop)
                self.tried.set()
                await asyncio.sleep(self.retry)
        finally:
            self.tried.set()
            if self.held.is_set():
                self._set(False)
                await self._lost()
            if lease is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(lease.drop)

    def _set(self, held: bool) -> None:
        (self.held if held else self.free).set()
        (self.free if held else self.held).clear()

    async def _taken(self) -> bool:
        try:
            await self.on_taken()
        except Exception:
            log.exception("taking over failed role=%s", self.name)
            return False
        return True

    async def _lost(self) -> None:
        try:
            await self.on_lost()
        except Exception:
            log.exception("giving up failed role=%s", self.name)
