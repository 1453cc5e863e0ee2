"""The one place that wires Frontline together: database, handlers, engine
and sender. The command line and the tests both start from here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.engine import Engine
from bot.sender import Sender, Transport
from bot.store import outbox
from bot.store.db import Database
from handlers import build_router
from handlers.checklists import load_all
from schedules.clock import Clock, SystemClock


@dataclass
class App:
    db: Database
    engine: Engine
    sender: Sender

    @classmethod
    async def open(
        cls,
        db_path: Path | str,
        transports: Mapping[str, Transport],
        *,
        clock: Clock | None = None,
        language: str = "zh-CN",
        timezone: str = "Asia/Shanghai",
    ) -> App:
        load_all()  # a bad checklist file stops the start, not the first /check
        clock = clock or SystemClock()
        db = await Database.open(db_path)
        # Rows a dead process was delivering: the sender decides on them again.
        await db.transaction(outbox.release_interrupted)
        sender = Sender(db, transports, clock)
        engine = Engine(
            db,
            build_router(),
            clock,
            default_language=language,
            default_timezone=timezone,
            on_commit=sender.wake,
        )
        return cls(db=db, engine=engine, sender=sender)

    async def close(self) -> None:
        await self.db.close()
