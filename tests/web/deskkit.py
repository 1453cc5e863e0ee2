"""The desk under test: the real aiohttp application on the demo
organisation, a FakeClock, and `Browser`, one person's cookie jar that signs
in with a one-time link the way `/web` makes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import START

from bot.app import App
from bot.clock import FakeClock, iso
from bot.store import desk as desk_store
from bot.store import hazards
from bot.web.app import create_app, opened
from bot.web.context import Desk
from bot.web.tokens import LINK_VALID, csrf_token, digest, new_secret

URL = "http://desk.test"


class Browser:
    """One person's browser: its own cookies, signed in or not."""

    def __init__(self, desk: Desk, client: TestClient[Any, Any]) -> None:
        self.desk = desk
        self.client = client
        self.csrf = ""

    async def link(self, staff_id: int) -> str:
        """A sign-in link's token, as /web makes one."""
        token = new_secret()
        now = self.desk.clock.now()
        await self.desk.db.transaction(
            lambda conn: desk_store.create_link(
                conn,
                token_hash=digest(token),
                staff_id=staff_id,
                now=iso(now),
                expires_at=iso(now + LINK_VALID),
            )
        )
        return token

    async def sign_in(self, staff_id: int) -> None:
        token = await self.link(staff_id)
        response = await self.open_link(token)
        assert response.status == 303, await response.text()
        self.csrf = csrf_token(response.cookies["frontline_desk"].value)

    async def open_link(self, token: str) -> Any:
        await self.client.get(f"/login/{token}")
        return await self.client.post(
            f"/login/{token}", data={"csrf": csrf_token(token)}, allow_redirects=False
        )

    async def get(self, path: str) -> Any:
        return await self.client.get(path, allow_redirects=False)

    async def post(self, path: str, **data: str) -> Any:
        return await self.client.post(path, data=data, allow_redirects=False)


@pytest.fixture(name="desk")
async def desk_fixture(app: App, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Desk]:
    async with opened(
        app.db,
        web_url=URL,
        clock=clock,
        default_timezone="Asia/Shanghai",
        default_language="zh-CN",
        media_dir=tmp_path / "media",
        drills_per_year=2,
    ) as the_desk:
        yield the_desk


@pytest.fixture(name="browser")
async def browser_fixture(desk: Desk) -> AsyncIterator[Callable[[], Any]]:
    clients: list[TestClient[Any, Any]] = []

    async def make() -> Browser:
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(desk)))
        await client.start_server()
        clients.append(client)
        return Browser(desk, client)

    yield make
    for client in clients:
        await client.close()


async def report(
    app: App,
    *,
    unit_path: str,
    reporter: int,
    description: str,
    severity: str = "general",
    photo: str | None = None,
    responsible: int | None = None,
) -> str:
    """A hazard as the chat files it; returns its register number."""

    def file(conn: Any) -> str:
        unit = conn.execute("SELECT id FROM units WHERE path = ?", (unit_path,)).fetchone()[0]
        hazard_id = hazards.create(
            conn,
            unit_id=unit,
            reported_by=reporter,
            source="report",
            description=description,
            photo=photo,
            severity=severity,
            deadline_at=iso(START),
            now=iso(START),
            category="fire",
            place="三楼走廊",
        )
        if responsible is not None:
            conn.execute(
                "UPDATE hazards SET status = 'assigned', responsible_id = ? WHERE id = ?",
                (responsible, hazard_id),
            )
        return str(
            conn.execute("SELECT number FROM hazards WHERE id = ?", (hazard_id,)).fetchone()[0]
        )

    return await app.db.transaction(file)


__all__ = ["URL", "Browser", "browser_fixture", "desk_fixture", "report"]
