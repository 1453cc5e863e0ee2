"""Frontline on WeCom, end to end: `frontline run`'s own code (the callback
endpoint, crypto, engine, store, sender and our API client) against a fake
WeCom API server on 127.0.0.1, driven by people posting encrypted callbacks."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import import_demo

from bot.app import App, serve
from bot.channels.wecom.crypto import WeComCrypto
from bot.clock import iso
from bot.config import Settings, load_settings
from bot.store import people
from tests.wecom.fakewecom import (
    AGENT_ID,
    CORP_ID,
    SECRET,
    FakeWeCom,
    SentMessage,
    card_event,
    encrypted_callback,
    image_message,
    location_message,
    message_xml,
    text_message,
    url_check,
)

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
ZHANG, LIU = "zhangwei", "liuqiang"
_ids = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Site:
    wecom: FakeWeCom
    settings: Settings
    db_path: Path
    url: str
    crypto: WeComCrypto
    http: aiohttp.ClientSession
    pressed: set[str] = field(default_factory=set)

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    async def post(self, inner: bytes, **query: str) -> aiohttp.ClientResponse:
        params, body = encrypted_callback(self.crypto, inner)
        params.update(query)
        async with self.http.post(self.url, params=params, data=body) as response:
            await response.read()
            return response

    async def say(self, user: str, text: str) -> None:
        response = await self.post(text_message(user, text, f"m{next(_ids)}"))
        assert response.status == 200

    async def received(self, user: str, count: int) -> list[SentMessage]:
        """Wait until `user` has received `count` messages in all."""
        for _ in range(200):
            sent = self.wecom.messages_to(user)
            if len(sent) >= count:
                return sent
            await asyncio.sleep(0.02)
        raise AssertionError(f"{user} got {len(self.wecom.messages_to(user))} of {count}")

    async def press(self, user: str, label: str) -> SentMessage:
        """Press the button whose text contains `label` on the newest card not
        pressed yet (waiting for it to arrive, as a person would)."""
        for _ in range(250):
            cards = [m for m in self.wecom.messages_to(user) if m.msgtype == "template_card"]
            if cards and cards[-1].msgid not in self.pressed:
                break
            await asyncio.sleep(0.02)
        card = cards[-1]
        self.pressed.add(card.msgid)
        button = next(b for b in card.content["button_list"] if label in b["text"])
        code = self.wecom.click(card.msgid)
        event = card_event(
            user, button["key"], card.content["task_id"], code, create_time=str(next(_ids))
        )
        response = await self.post(event)
        assert response.status == 200
        return card


def shown(message: SentMessage) -> str:
    if message.msgtype == "template_card":
        card = message.content
        return f"{card['main_title']['title']}\n{card.get('sub_title_text', '')}"
    return message.text or ""


async def seed(db_path: Path) -> None:
    app = await App.open(db_path, {})
    try:
        org = await import_demo(app)

        def bind(conn: sqlite3.Connection) -> None:
            people.bind_identity(conn, "wecom", ZHANG, org["张伟"], iso(datetime.now(UTC)))
            people.bind_identity(conn, "wecom", LIU, org["刘强"], iso(datetime.now(UTC)))

        await app.db.transaction(bind)
    finally:
        await app.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    db_path = tmp_path / "frontline.db"
    await seed(db_path)
    port = free_port()
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID) as wecom:
        settings = load_settings(
            db=db_path,
            wecom_corp_id=CORP_ID,
            wecom_agent_id=AGENT_ID,
            wecom_secret=SECRET,
            wecom_token=TOKEN,
            wecom_aes_key=AES_KEY,
            wecom_listen=f"127.0.0.1:{port}",
            wecom_api_url=wecom.base_url,
        )
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(settings, stop, started=started))
        await asyncio.wait_for(started.wait(), 10)
        try:
            async with aiohttp.ClientSession() as http:
                yield Site(
                    wecom,
                    settings,
                    db_path,
                    f"http://127.0.0.1:{port}/wecom/callback",
                    WeComCrypto(TOKEN, AES_KEY, CORP_ID),
                    http,
                )
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


async def test_pre_shift_check_with_a_problem_through_cards(site: Site) -> None:
    await site.say(ZHANG, "/check")
    sent = await site.received(ZHANG, 2)
    assert "岗前安全自查" in shown(sent[0]) and "第 1/6 项" in shown(sent[-1])
    assert sent[-1].msgtype == "template_card"
    assert [b["text"] for b in sent[-1].content["button_list"]] == [
        "✅ 正常",
        "⚠️ 有问题",
        "➖ 不适用",
    ]
    card = await site.press(ZHANG, "有问题")
    sent = await site.received(ZHANG, 3)
    assert "有什么问题" in shown(sent[-1])
    # The pressed card is updated to show the answer.
    for _ in range(100):
        if site.wecom.message(card.msgid).updates:
            break
        await asyncio.sleep(0.02)
    assert site.wecom.message(card.msgid).updates[0]["button"]["replace_name"] == "⚠️ 有问题"
    await site.say(ZHANG, "护栏松动，有坠落风险")
    await site.received(ZHANG, 4)
    site.wecom.add_media(b"\xff\xd8 a jpeg \xff\xd9", "image/jpeg", "p.jpg")
    media_id = list(site.wecom._media)[-1]  # the fake's newest media id
    response = await site.post(image_message(ZHANG, media_id, f"m{next(_ids)}"))
    assert response.status == 200
    sent = await site.received(ZHANG, 6)
    assert any("隐患 YH-2026-0001" in shown(m) for m in sent)
    for _ in range(5):
        await site.press(ZHANG, "正常")
    sent = await site.received(ZHANG, 11)
    assert any("已完成" in shown(m) for m in sent[-3:])
    for _ in range(250):  # (the scheduler tells 刘强 of other things too)
        to_liu = site.wecom.messages_to(LIU)
        at = next((n for n, m in enumerate(to_liu) if "隐患报告" in shown(m)), None)
        if at is not None and len(to_liu) > at + 1:
            break
        await asyncio.sleep(0.02)
    assert at is not None, [shown(m) for m in to_liu]
    # The photo, then the report, then a card with what he may do.
    assert [m.msgtype for m in to_liu[at - 1 : at + 2]] == ["image", "text", "template_card"]
    assert "YH-2026-0001" in shown(to_liu[at]) and "护栏松动" in shown(to_liu[at])
    assert "指派" in to_liu[at + 1].content["button_list"][0]["text"]
    photo = site.rows("SELECT photo FROM hazards")[0]["photo"]
    assert (site.settings.media_path / photo).read_bytes() == b"\xff\xd8 a jpeg \xff\xd9"


async def test_a_file_that_is_not_a_picture_is_refused_as_a_photo(site: Site) -> None:
    await site.say(ZHANG, "/check")
    await site.received(ZHANG, 2)
    await site.press(ZHANG, "有问题")
    await site.received(ZHANG, 3)
    await site.say(ZHANG, "护栏松动")
    await site.received(ZHANG, 4)
    site.wecom.add_media(b"<html>not a picture</html>", "image/jpeg", "p.jpg")
    media_id = list(site.wecom._media)[-1]
    response = await site.post(image_message(ZHANG, media_id, f"m{next(_ids)}"))
    assert response.status == 200
    sent = await site.received(ZHANG, 6)
    assert "不是照片" in shown(sent[-2]) and "照片" in shown(sent[-1])
    assert site.rows("SELECT * FROM hazards") == []


async def test_url_verification_and_refusals(site: Site) -> None:
    async with site.http.get(site.url, params=url_check(site.crypto, "5927782489442352469")) as r:
        assert r.status == 200 and await r.text() == "5927782489442352469"
    bad = url_check(site.crypto, "x")
    bad["nonce"] = "other"
    async with site.http.get(site.url, params=bad) as r:
        assert r.status == 403
    # A wrong signature, a wrong corp id inside the ciphertext, a malformed body.
    assert (
        await site.post(text_message(ZHANG, "/check", "m-a"), msg_signature="0" * 40)
    ).status == 403
    stranger = WeComCrypto(TOKEN, AES_KEY, "wwotherCorp")
    params, body = encrypted_callback(stranger, text_message(ZHANG, "/check", "m-b"))
    async with site.http.post(site.url, params=params, data=body) as r:
        assert r.status == 403
    params, _ = encrypted_callback(site.crypto, text_message(ZHANG, "/check", "m-c"))
    async with site.http.post(site.url, params=params, data=b"<xml><Encrypt>") as r:
        assert r.status == 400
    async with site.http.post(
        site.url, params=params, data=b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml/>"
    ) as r:
        assert r.status == 400
    await asyncio.sleep(0.2)
    assert site.rows("SELECT COUNT(*) FROM processed_events")[0][0] == 0
    assert site.wecom.messages_to(ZHANG) == []


async def test_a_retried_callback_is_processed_once(site: Site) -> None:
    inner = text_message(ZHANG, "/check", "m-same")
    for _ in range(3):  # WeCom retries up to three times
        assert (await site.post(inner)).status == 200
    await site.received(ZHANG, 2)
    await asyncio.sleep(0.3)
    assert len(site.rows("SELECT * FROM checklist_runs")) == 1
    assert len(site.wecom.messages_to(ZHANG)) == 2


async def test_enter_agent_shows_what_they_can_do_and_location_reaches_the_engine(
    site: Site,
) -> None:
    event = message_xml(
        {
            "ToUserName": CORP_ID,
            "FromUserName": ZHANG,
            "CreateTime": "1700000001",
            "MsgType": "event",
            "Event": "enter_agent",
            "EventKey": "",
            "AgentID": str(AGENT_ID),
        }
    )
    assert (await site.post(event)).status == 200
    sent = await site.received(ZHANG, 1)
    assert "您可以使用" in shown(sent[0]) and "/check" in shown(sent[0])
    await site.post(location_message(ZHANG, 31.23, 121.47, f"m{next(_ids)}"))
    sent = await site.received(ZHANG, 2)
    assert "/help" in shown(sent[-1])  # a location outside any flow: a hint, not silence


async def test_more_than_six_choices_are_answered_by_number(site: Site) -> None:
    await site.say(ZHANG, "/hazard")
    await site.received(ZHANG, 1)
    await site.say(ZHANG, "配电箱门没关")
    await site.received(ZHANG, 2)
    await site.say(ZHANG, "二楼配电间")
    await site.received(ZHANG, 3)
    await site.press(ZHANG, "跳过")  # no photos
    sent = await site.received(ZHANG, 4)
    assert sent[-1].msgtype == "text" and "2. ⚡ 电气" in shown(sent[-1])
    await site.say(ZHANG, "2")
    await site.received(ZHANG, 5)
    await site.press(ZHANG, "一般隐患")
    sent = await site.received(ZHANG, 6)
    assert "已登记隐患 YH-2026-0001" in shown(sent[-1])
    assert site.rows("SELECT category FROM hazards")[0]["category"] == "electrical"


async def test_wecom_serves_while_telegram_cannot_be_reached_at_start(tmp_path: Path) -> None:
    from tests.telegram.fakebotapi import FakeBotAPI

    db_path = tmp_path / "frontline.db"
    await seed(db_path)
    port = free_port()
    async with (
        FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID) as wecom,
        FakeBotAPI() as telegram,
    ):
        telegram.fail_next("getMe", 502, times=1000)  # Telegram is down for the whole test
        settings = load_settings(
            db=db_path,
            wecom_corp_id=CORP_ID,
            wecom_agent_id=AGENT_ID,
            wecom_secret=SECRET,
            wecom_token=TOKEN,
            wecom_aes_key=AES_KEY,
            wecom_listen=f"127.0.0.1:{port}",
            wecom_api_url=wecom.base_url,
            telegram_token=telegram.token,
            telegram_api_url=telegram.root_url,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, stop))
        try:
            async with aiohttp.ClientSession() as http:
                site = Site(
                    wecom,
                    settings,
                    db_path,
                    f"http://127.0.0.1:{port}/wecom/callback",
                    WeComCrypto(TOKEN, AES_KEY, CORP_ID),
                    http,
                )
                for _ in range(250):  # the callback endpoint comes up at once
                    try:
                        await site.say(ZHANG, "/help")
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.02)
                sent = await site.received(ZHANG, 1)
                assert "/check" in shown(sent[0])
            assert not task.done()  # Telegram's trouble did not stop the process
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
