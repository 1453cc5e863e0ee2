"""/web: a one-time link to the desk, said through the outbox, stored hashed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import START, Person, import_demo

from bot.app import App
from bot.clock import FakeClock, iso
from bot.store import people
from bot.web.tokens import LINK_VALID, digest

URL = "https://desk.example.cn"


@pytest.fixture
async def desk_app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    application = await App.open(tmp_path / "frontline.db", {}, clock=clock, web_url=URL)
    yield application
    await application.close()


async def talker(app: App, name: str) -> Person:
    ids = await import_demo(app)
    someone = Person(app, ids[name], name)
    await app.db.transaction(
        lambda conn: people.bind_identity(conn, "test", someone.user_id, ids[name], iso(START))
    )
    return someone


async def test_web_sends_a_one_time_link_kept_only_as_its_hash(desk_app: App) -> None:
    liu = await talker(desk_app, "刘强")
    replies = await liu.send("/web")
    found = re.search(rf"{re.escape(URL)}/login/(\S+)", replies[-1])
    assert found, replies
    token = found.group(1)
    rows = await desk_app.db.read(lambda conn: conn.execute("SELECT * FROM desk_links").fetchall())
    assert len(rows) == 1
    assert rows[0]["token_hash"] == digest(token) and token not in rows[0]["token_hash"]
    assert rows[0]["staff_id"] == liu.staff_id and rows[0]["used_at"] is None
    assert rows[0]["expires_at"] == iso(START + LINK_VALID)
    assert "10 分钟" in replies[-1]


async def test_each_web_link_is_new(desk_app: App) -> None:
    zhang = await talker(desk_app, "张伟")
    first, second = await zhang.send("/web"), await zhang.send("/web")
    assert first[-1] != second[-1]


async def test_without_a_desk_url_web_says_it_is_not_set_up(app: App) -> None:
    zhang = await talker(app, "张伟")
    replies = await zhang.send("/web")
    assert "工作台尚未配置" in replies[-1]
    rows = await app.db.read(lambda conn: conn.execute("SELECT * FROM desk_links").fetchall())
    assert rows == []
