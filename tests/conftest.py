"""Shared fixtures: a temporary SQLite file, a clock the test moves, the demo
organisation, and `Person`, who talks to the engine the way a channel does and
reads back what the bot queued for them (the files they carry made, as the
running bot's documents worker does right after each commit)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bot import roster
from bot.app import App
from bot.clock import FakeClock, iso
from bot.engine import Outcome
from bot.model import Inbound, InboundKind
from bot.store import people

CHANNEL = "test"
# 09:00 in Shanghai on a Friday.
START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
_events = itertools.count(1)


class Person:
    """One roster member on the 'test' channel."""

    def __init__(self, app: App, staff_id: int, name: str) -> None:
        self.app = app
        self.staff_id = staff_id
        self.name = name
        self.user_id = f"u{staff_id}"
        self.seen = 0  # outbox id of the last reply read
        self.last_buttons: list[tuple[str, str]] = []

    async def send(self, text: str, *, event_id: str | None = None) -> list[str]:
        kind = InboundKind.COMMAND if text.startswith("/") else InboundKind.TEXT
        return await self.deliver(kind, text, event_id=event_id)

    async def press(self, label: str) -> list[str]:
        """Press the button of the latest question whose label contains `label`."""
        matches = [action for shown, action in self.last_buttons if label in shown]
        assert matches, f"no button {label!r} in {self.last_buttons}"
        return await self.deliver(InboundKind.ACTION, matches[0])

    async def photo(self, media_path: str) -> list[str]:
        return await self.deliver(InboundKind.PHOTO, media_path)

    async def deliver(
        self,
        kind: InboundKind,
        text: str,
        *,
        event_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> list[str]:
        self.outcome = await self.app.engine.handle(self.inbound(kind, text, event_id, data))
        # As in a running bot, the files replies carry are made right after the commit.
        await self.app.preparer.drain()
        return await self.replies()

    def inbound(
        self,
        kind: InboundKind,
        text: str,
        event_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Inbound:
        return Inbound(
            channel=CHANNEL,
            user_id=self.user_id,
            event_id=event_id or f"e{next(_events)}",
            kind=kind,
            text=text,
            data=data or {},
        )

    async def replies(self) -> list[str]:
        """Texts queued for this person on the test channel since the last look."""
        rows = await self.app.db.read(
            lambda conn: conn.execute(
                "SELECT id, text, buttons FROM outbox WHERE channel = ? AND address = ?"
                " AND id > ? ORDER BY id",
                (CHANNEL, self.user_id, self.seen),
            ).fetchall()
        )
        for row in rows:
            self.seen = row["id"]
            if row["buttons"]:
                self.last_buttons = [
                    (label, action) for r in json.loads(row["buttons"]) for label, action in r
                ]
        return [row["text"] for row in rows]

    async def held(self) -> list[str]:
        """Messages for this person waiting for any channel (alerts, reminders)."""
        rows = await self.app.db.read(
            lambda conn: conn.execute(
                "SELECT text FROM outbox WHERE staff_id = ? AND channel IS NULL ORDER BY id",
                (self.staff_id,),
            ).fetchall()
        )
        return [row["text"] for row in rows]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    application = await App.open(tmp_path / "frontline.db", {}, clock=clock)
    yield application
    await application.close()


async def import_demo(app: App) -> dict[str, int]:
    demo = resources.files("bot.data").joinpath("demo_roster.csv")
    with resources.as_file(demo) as path:
        await roster.import_roster_file(
            app.db, path, deactivate_missing=False, default_language="zh-CN", now=START
        )
    rows = await app.db.read(lambda conn: conn.execute("SELECT id, name FROM staff").fetchall())
    return {row["name"]: row["id"] for row in rows}


def demo_database(path: Path) -> Path:
    """A database file with the demo organisation, for tests of the command line."""

    async def seed() -> None:
        app = await App.open(path, {})
        await import_demo(app)
        await app.close()

    asyncio.run(seed())
    return path


@pytest.fixture
async def org(app: App) -> dict[str, int]:
    """The demo organisation: name -> staff id (张伟 a worker in 保安部/一班,
    刘强 his supervisor, 李静 the safety officer, 王建国 the admin)."""
    return await import_demo(app)


@pytest.fixture
def person(app: App, org: dict[str, int]) -> Callable[[str], Any]:
    async def make(name: str) -> Person:
        staff_id = org[name]
        someone = Person(app, staff_id, name)
        await app.db.transaction(
            lambda conn: people.bind_identity(conn, CHANNEL, someone.user_id, staff_id, iso(START))
        )
        return someone

    return make


__all__ = ["CHANNEL", "START", "Outcome", "Person", "demo_database", "import_demo"]
