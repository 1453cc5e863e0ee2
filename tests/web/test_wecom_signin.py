"""Opening the desk from the WeCom app's menu (网页授权), against the fake
WeCom server: the corp id on the way out, the code's userid on the way back,
the state cookie tying both ends to one browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import START

from bot.app import App
from bot.channels.wecom.api import WeComAPI
from bot.clock import iso
from bot.store import people
from bot.web.context import Desk
from bot.web.wecom import WeComSignIn
from tests.web.deskkit import URL, Browser, browser_fixture, desk_fixture  # noqa: F401
from tests.wecom.fakewecom import FakeWeCom

CORP = "ww0123456789abcdef"


@pytest.fixture
async def wecom(desk: Desk, app: App, org: dict[str, int]) -> AsyncIterator[FakeWeCom]:
    liu = org["刘强"]
    await app.db.transaction(
        lambda conn: people.bind_identity(conn, "wecom", "liuqiang", liu, iso(START))
    )
    async with FakeWeCom(corp_id=CORP, secret="s3cret", agent_id=1000002) as fake:
        api = WeComAPI(fake.base_url, CORP, "s3cret", 1000002)
        desk.wecom = WeComSignIn(CORP, 1000002, api)
        try:
            yield fake
        finally:
            await api.close()


async def leave_for_wecom(person: Browser) -> str:
    response = await person.get("/wecom/open")
    assert response.status == 302
    target = urlsplit(response.headers["Location"])
    query = parse_qs(target.query)
    assert target.netloc == "open.weixin.qq.com" and query["appid"] == [CORP]
    assert query["redirect_uri"] == [f"{URL}/wecom/signin"] and target.fragment == "wechat_redirect"
    return query["state"][0]


async def test_the_menu_signs_in_the_member_bound_to_that_wecom_account(
    wecom: FakeWeCom, browser: Callable[[], Any]
) -> None:
    person = await browser()
    state = await leave_for_wecom(person)
    back = await person.get(f"/wecom/signin?code={wecom.auth_code('liuqiang')}&state={state}")
    assert back.status == 303 and back.headers["Location"] == "/"
    assert "刘强" in await (await person.get("/")).text()


async def test_a_wrong_state_an_unknown_code_or_a_stranger_starts_nothing(
    wecom: FakeWeCom, browser: Callable[[], Any]
) -> None:
    person = await browser()
    state = await leave_for_wecom(person)
    for query in (
        f"code={wecom.auth_code('liuqiang')}&state=forged",
        f"code=never-issued&state={state}",
        f"code={wecom.auth_code('stranger')}&state={state}",
    ):
        refused = await person.get(f"/wecom/signin?{query}")
        assert refused.status == 403, query
        assert (await person.get("/")).status == 401
