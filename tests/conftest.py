"""Shared fixtures: a store on each engine (a temporary SQLite file, and a fresh
PostgreSQL database from tests/postgresql.py's cluster), a clock the test moves,
the demo organisation, and `Person`, who talks to the engine the way a channel
does and reads back what the bot queued for them (the files they carry made, as
the running bot's documents worker does right after each commit).

Every test that takes `app` (or `engine`, `db_target`) runs once per engine.
Without a PostgreSQL server the PostgreSQL half is skipped, with its reason
and a closing summary line; with FRONTLINE_REQUIRE_POSTGRESQL=1 (CI) a missing
server stops the run instead. `@pytest.mark.sqlite_only` marks a test that is
about SQLite itself (WAL, the single-instance lock, the writer thread)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot import roster
from bot.app import App
from bot.clock import FakeClock, iso
from bot.engine import Outcome
from bot.model import Inbound, InboundKind
from bot.store import people
from tests import postgresql

CHANNEL = "test"
# 09:00 in Shanghai on a Friday.
START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
_events = itertools.count(1)


def count_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each text the PostgreSQL connections send from now on (one per round
    trip), until monkeypatch.undo(); SQLite sends none."""
    sent: list[str] = []
    execute = psycopg.ClientCursor.execute

    def counting(self: psycopg.ClientCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.ClientCursor, "execute", counting)
    return sent


def executes(text: str, sql: str) -> bool:
    """Whether the round trip `text` executes a statement the process prepared
    from SQL containing `sql` (by any of its names: one per parameter types)."""
    from bot.store import postgres

    names = [name for (numbered, _), name in postgres._statement_names.items() if sql in numbered]
    return any(f"EXECUTE {name}(" in text for name in names)


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


ENGINES = ("sqlite", "postgresql")
REQUIRE_POSTGRESQL = os.environ.get("FRONTLINE_REQUIRE_POSTGRESQL") == "1"


class _PostgreSQL:
    """The session's cluster, started at the first test that needs it."""

    cluster: postgresql.Cluster | None = None
    missing = ""  # why there is no cluster, once tried
    tried = False
    skipped = 0

    @classmethod
    def get(cls) -> postgresql.Cluster | None:
        if not cls.tried:
            cls.tried = True
            cls.cluster, cls.missing = postgresql.start()
        return cls.cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about SQLite itself; not run on PostgreSQL")


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRESQL and _PostgreSQL.get() is None:
        pytest.exit(f"FRONTLINE_REQUIRE_POSTGRESQL=1 but {_PostgreSQL.missing}", returncode=3)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _PostgreSQL.cluster is not None:
        _PostgreSQL.cluster.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _PostgreSQL.skipped:
        terminalreporter.write_line(
            f"POSTGRESQL NOT TESTED: {_PostgreSQL.skipped} tests of the PostgreSQL half"
            f" skipped ({_PostgreSQL.missing})",
            red=True,
            bold=True,
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        engines = ("sqlite",) if only_sqlite else ENGINES
        metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The store engine this run of the test is on: 'sqlite' or 'postgresql'."""
    name = str(request.param)
    if name == "postgresql" and _PostgreSQL.get() is None:
        _PostgreSQL.skipped += 1
        pytest.skip(f"PostgreSQL half not run: {_PostgreSQL.missing}")
    return name


@pytest.fixture
def db_target(engine: str, tmp_path: Path) -> Iterator[Path | str]:
    """Where this test's store lives: a SQLite file, or a fresh PostgreSQL database
    holding the migrated, empty schema."""
    if engine == "sqlite":
        yield tmp_path / "frontline.db"
        return
    cluster = _PostgreSQL.get()
    assert cluster is not None
    url = cluster.fresh()
    yield url
    cluster.drop(url)


@pytest.fixture
def postgresql_cluster() -> postgresql.Cluster:
    """The cluster itself, for tests that need databases of their own."""
    cluster = _PostgreSQL.get()
    if cluster is None:
        _PostgreSQL.skipped += 1
        pytest.skip(f"PostgreSQL half not run: {_PostgreSQL.missing}")
    return cluster


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def app(db_target: Path | str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    application = await App.open(db_target, {}, clock=clock, media_dir=tmp_path / "media")
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
