"""Frontline on Telegram, end to end: `frontline run`'s own code (python-
telegram-bot's HTTP stack, our channel, engine, store and sender) against a
fake Bot API server on 127.0.0.1, driven by scripted people."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import import_demo

from bot import cli
from bot.app import App, serve
from bot.config import Settings, load_settings
from tests.telegram.fakebotapi import (
    EDIT_METHODS,
    SEND_METHODS,
    FakeBotAPI,
    JSONDict,
    MessageRecord,
    callback_update,
    contact_update,
    document_update,
    group_text_update,
    photo_update,
    post_webhook,
    text_update,
)

ZHANG = 5001  # 张伟's Telegram user id, a worker in 保安部/一班
LIU = 5002  # 刘强, his supervisor
GROUP = -1005003  # 保安部's group chat
MA = 5013  # 马秀英, a care worker of the home-visit team


@dataclass
class Bot:
    api: FakeBotAPI
    settings: Settings
    db_path: Path

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    async def say(self, user: int, text: str, **kw: Any) -> int:
        return self.api.push_update(text_update(user, text, **kw))

    async def replies(self, chat: int, count: int) -> list[MessageRecord]:
        """Wait until `chat` has received `count` messages in all (edits excluded)."""
        await self.api.wait_for_sent(chat, count=count, timeout=10)
        return [m for m in self.api.messages_to(chat) if not m.method.startswith("edit")]

    def question(self, chat: int) -> JSONDict | None:
        """The newest message in `chat` that has buttons now, as it stands after any edits."""
        for record in reversed(self.api.messages_to(chat)):
            shown = self.api.message(chat, record.message_id) or {}
            if "inline_keyboard" in (shown.get("reply_markup") or {}):
                return shown
        return None

    async def asking(self, chat: int, text: str) -> JSONDict:
        """Wait until the question `chat` sees (its newest message with buttons) shows `text`."""

        def shows() -> bool:
            asked = self.question(chat)
            return asked is not None and text in (asked.get("text") or asked.get("caption") or "")

        await self.api.wait_for(shows, timeout=10)
        asked = self.question(chat)
        assert asked is not None
        return asked

    async def showing(self, chat: int, message_id: int, text: str) -> JSONDict:
        """Wait until message `message_id` of `chat` shows `text` (after an edit)."""

        def shows() -> bool:
            return text in ((self.api.message(chat, message_id) or {}).get("text") or "")

        await self.api.wait_for(shows, timeout=10)
        return self.api.message(chat, message_id) or {}

    async def press(self, user: int, label: str) -> JSONDict:
        """Press the button whose label contains `label` on the newest message that has
        buttons now; return that message as it stood when pressed."""
        asked = self.question(user)
        assert asked is not None, f"no buttons in chat {user}"
        data = next(
            button["callback_data"]
            for row in asked["reply_markup"]["inline_keyboard"]
            for button in row
            if label in button["text"]
        )
        self.api.push_update(
            callback_update(user, data, asked["message_id"], message_text=asked.get("text") or "")
        )
        return asked


def message_calls(api: FakeBotAPI, chat: int) -> int:
    """Bot API calls that put a message in `chat` or change one: what Telegram's limits count."""
    return sum(
        1
        for call in api.requests
        if call.method in SEND_METHODS | EDIT_METHODS and call.params.get("chat_id") == chat
    )


def labels(message: JSONDict) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(db_path: Path) -> None:
    app = await App.open(db_path, {})
    try:
        await import_demo(app)
    finally:
        await app.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


async def running(api: FakeBotAPI, tmp_path: Path, **extra: Any) -> AsyncIterator[Bot]:
    db_path = tmp_path / "frontline.db"
    await seed(db_path)
    settings = load_settings(
        db=db_path,
        telegram_token=api.token,
        telegram_api_url=api.root_url,
        telegram_poll_timeout=1,
        **extra,
    )
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, started=started))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield Bot(api, settings, db_path)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@pytest.fixture
async def bot(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Bot]:
    async for running_bot in running(api, tmp_path):
        yield running_bot


async def sign_up(bot: Bot, user: int, phone: str, expected: int = 2) -> list[MessageRecord]:
    await bot.say(user, "/start")
    asked = await bot.replies(user, 1)
    keyboard = asked[-1].reply_markup or {}
    assert keyboard["keyboard"][0][0]["request_contact"] is True
    bot.api.push_update(contact_update(user, phone, contact_user_id=user))
    return await bot.replies(user, expected)


async def test_sign_up_with_own_number_binds_identity_and_sets_menu(bot: Bot) -> None:
    replies = await sign_up(bot, ZHANG, "+86 138 0000 0003")
    assert "张伟" in (replies[-1].text or "")
    bound = bot.rows("SELECT staff_id FROM channel_identities WHERE channel = 'telegram'")
    assert len(bound) == 1
    await bot.api.wait_for_call("setMyCommands", count=4, timeout=10)
    chat_menus = [c for c in bot.api.commands if c.scope.get("chat_id") == ZHANG]
    assert chat_menus and any(item["command"] == "check" for item in chat_menus[-1].commands)
    assert not any(item["command"] == "daily" for item in chat_menus[-1].commands)


async def test_someone_elses_number_is_refused(bot: Bot) -> None:
    await bot.say(ZHANG, "/start")
    await bot.replies(ZHANG, 1)
    bot.api.push_update(contact_update(ZHANG, "+8613800000004", contact_user_id=999))
    replies = await bot.replies(ZHANG, 3)
    assert "本人" in (replies[1].text or "")
    assert bot.rows("SELECT * FROM channel_identities WHERE channel = 'telegram'") == []


async def test_unknown_number_is_told_to_ask_admin_and_admins_hear_once(bot: Bot) -> None:
    for _ in range(2):
        bot.api.push_update(contact_update(7777, "+8613912345678", contact_user_id=7777))
    replies = await bot.replies(7777, 2)
    assert all("管理员" in (r.text or "") for r in replies)
    notices = bot.rows("SELECT text FROM outbox WHERE text LIKE '%139 1234 5678%'")
    assert len(notices) == 1  # one admin (王建国), one notice, however often tried


async def test_pre_shift_check_with_problem_and_photo_alerts_supervisor(bot: Bot) -> None:
    await sign_up(bot, LIU, "13800000004")
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    replies = await bot.replies(ZHANG, 4)
    assert "第 1/6 项" in (replies[-1].text or "")
    asked = await bot.press(ZHANG, "有问题")
    await bot.api.wait_for_call("answerCallbackQuery", timeout=10)
    # The pressed question itself asks what is wrong: its buttons are gone.
    edited = await bot.showing(ZHANG, asked["message_id"], "有什么问题")
    assert "⚠️ 1." in edited["text"] and not edited.get("reply_markup")
    await bot.say(ZHANG, "<b>护栏</b> 松动 *危险*")
    await bot.replies(ZHANG, 5)
    photo = bot.api.add_photo(b"\xff\xd8 a small jpeg \xff\xd9")
    bot.api.push_update(photo_update(ZHANG, photo))
    replies = await bot.replies(ZHANG, 7)
    assert "隐患 YH-2026-0001" in (replies[-2].text or "") and "第 2/6 项" in (
        replies[-1].text or ""
    )
    hazard = bot.rows("SELECT description, photo FROM hazards")[0]
    assert hazard["description"] == "<b>护栏</b> 松动 *危险*"
    stored = bot.settings.media_path / hazard["photo"]
    assert stored.read_bytes() == b"\xff\xd8 a small jpeg \xff\xd9"
    assert bot.rows("SELECT file_id FROM media_refs")[0]["file_id"] == photo[-1][0]
    seen = await bot.replies(LIU, 3)
    alert = seen[-1]
    # The alert shows the reported photo with the report as its caption.
    assert alert.method == "sendPhoto" and alert.parse_mode is None
    assert "<b>护栏</b> 松动 *危险*" in (alert.caption or "")
    # Its "assign" button is a command: it opens the four fixes from the photo message.
    await bot.press(LIU, "指派")
    asked = (await bot.replies(LIU, len(seen) + 1))[-1]
    assert "整改责任人" in (asked.text or "")
    assert any("陈磊" in b["text"] for row in asked.reply_markup["inline_keyboard"] for b in row)  # type: ignore[index]
    assert all(m.parse_mode is None for m in bot.api.sent)


async def test_a_checklist_tap_costs_one_bot_api_call(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    await bot.asking(ZHANG, "第 1/6 项")
    calls = message_calls(bot.api, ZHANG)
    for number in range(2, 7):
        await bot.press(ZHANG, "正常")
        await bot.asking(ZHANG, f"第 {number}/6 项")
        # Everything the tap caused is out once its next question shows.
        assert message_calls(bot.api, ZHANG) - calls == 1, f"tap {number - 1}"
        calls = message_calls(bot.api, ZHANG)


async def test_the_question_message_moves_on_showing_the_answers_so_far(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    first = await bot.asking(ZHANG, "第 1/6 项")
    sent = len(bot.api.messages_to(ZHANG))
    await bot.press(ZHANG, "正常")
    shown = await bot.asking(ZHANG, "第 2/6 项")
    assert shown["message_id"] == first["message_id"]
    assert (
        shown["text"]
        == "✅ 1. 设备安全状态良好，安全防护装置有效\n\n第 2/6 项\n规定的安全措施已落实"
    )
    assert labels(shown) == ["✅ 正常", "⚠️ 有问题", "➖ 不适用"]
    await bot.press(ZHANG, "不适用")
    shown = await bot.asking(ZHANG, "第 3/6 项")
    assert shown["text"].splitlines()[:2] == [
        "✅ 1. 设备安全状态良好，安全防护装置有效",
        "➖ 2. 规定的安全措施已落实",
    ]
    # A problem: the same message asks what is wrong; typed text answers it.
    await bot.press(ZHANG, "有问题")
    shown = await bot.showing(ZHANG, first["message_id"], "有什么问题")
    assert "⚠️ 3. 使用的设备、工具符合安全规定" in shown["text"] and not shown.get("reply_markup")
    assert len(bot.api.messages_to(ZHANG)) == sent
    await bot.say(ZHANG, "梯子腿开裂")
    photo_question = await bot.asking(ZHANG, "跳过")
    assert photo_question["message_id"] != first["message_id"]  # a reply to typing is new
    await bot.press(ZHANG, "跳过")
    shown = await bot.asking(ZHANG, "第 4/6 项")
    assert shown["message_id"] == photo_question["message_id"]
    assert "⚠️ 3. 使用的设备、工具符合安全规定" in shown["text"]
    assert "已登记隐患 YH-2026-0001" in shown["text"]
    for number in (5, 6):
        await bot.press(ZHANG, "正常")
        await bot.asking(ZHANG, f"第 {number}/6 项")
    await bot.press(ZHANG, "正常")
    replies = await bot.replies(ZHANG, sent + 2)
    assert "已完成：✅ 4 项，⚠️ 1 项，➖ 1 项" in (replies[-1].text or "")
    last = await bot.showing(ZHANG, photo_question["message_id"], "→ ✅ 正常")
    assert "第 6/6 项" in last["text"] and not last.get("reply_markup")
    # Per check: the intro, the first item, the photo question and the summary.
    assert len(bot.api.messages_to(ZHANG)) == sent + 2


async def test_a_reply_keyboard_button_other_than_location_is_a_press(bot: Bot) -> None:
    """ "🚫 Cannot send location" shares the location button's reply keyboard, so
    Telegram sends its label as text; the visit takes it as the choice."""
    conn = sqlite3.connect(bot.db_path)
    with conn:
        unit = conn.execute(
            "SELECT id FROM units WHERE path = '物业服务中心/长者服务中心/上门服务组'"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO clients (number, name, address, lat, lon, unit_id, services,"
            " created_at, updated_at) VALUES ('K001', '王奶奶', '幸福路 8 号', 31.23, 121.47,"
            " ?, '[\"meal\"]', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
            (unit,),
        )
        conn.execute(
            "INSERT INTO client_workers (client_id, staff_id)"
            " SELECT 1, id FROM staff WHERE name = '马秀英'"
        )
    conn.close()
    await sign_up(bot, MA, "13800000013")

    async def shown(needle: str) -> MessageRecord:
        """The message to 马秀英 that says `needle`, once it has arrived."""
        await bot.api._wait_until(
            lambda: any(needle in (m.text or "") for m in bot.api.messages_to(MA)), 10
        )
        return next(m for m in reversed(bot.api.messages_to(MA)) if needle in (m.text or ""))

    await bot.say(MA, "/visit")
    await shown("为哪位老人上门服务")
    await bot.press(MA, "王奶奶")
    asked = await shown("签到：王奶奶")
    keyboard = (asked.reply_markup or {})["keyboard"]
    assert keyboard[0][0]["request_location"] is True
    label = keyboard[1][0]["text"]
    assert label == "🚫 无法发送位置" and not keyboard[1][0].get("request_location")
    await bot.say(MA, label)
    await shown("无法发送位置的原因")
    await bot.press(MA, "定位不准")
    await shown("未发送位置：定位不准")
    visit = bot.rows("SELECT checkin_exception, checkin_reason FROM visits")
    assert [tuple(v) for v in visit] == [("no_location", "gps_poor")]


async def test_stale_button_is_answered_and_changes_nothing(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    await bot.replies(ZHANG, 4)
    first = await bot.press(ZHANG, "正常")
    await bot.asking(ZHANG, "第 2/6 项")
    markup = first["reply_markup"]["inline_keyboard"]
    stale = next(b["callback_data"] for b in markup[0] if "有问题" in b["text"])
    bot.api.push_update(callback_update(ZHANG, stale, first["message_id"]))
    await bot.api.wait_for_call("answerCallbackQuery", count=2, timeout=10)
    assert "失效" in (bot.api.callback_answers[-1].text or "")
    forged = "v1:" + "x" * 61
    bot.api.push_update(callback_update(ZHANG, forged, first["message_id"]))
    await bot.api.wait_for_call("answerCallbackQuery", count=3, timeout=10)
    answers = bot.rows("SELECT answer FROM checklist_answers")
    assert [a["answer"] for a in answers] == ["ok"]
    assert len([m for m in bot.api.messages_to(ZHANG) if m.method == "sendMessage"]) == 4
    assert "第 2/6 项" in (bot.api.message(ZHANG, first["message_id"]) or {})["text"]


async def test_duplicated_update_changes_nothing(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    update = text_update(ZHANG, "/check", update_id=bot.api.next_update_id())
    bot.api.push_update(update)
    await bot.replies(ZHANG, 4)
    bot.api.push_update(dict(update))
    await bot.say(ZHANG, "/help")  # a later update, to know the duplicate was seen
    replies = await bot.replies(ZHANG, 6)
    assert "第 1/6 项" in (replies[-1].text or "")  # /help repeats the open question
    assert len(bot.rows("SELECT id FROM checklist_runs")) == 1


async def test_photo_over_20_mb_is_refused_with_a_message(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    await bot.replies(ZHANG, 4)
    asked = await bot.press(ZHANG, "有问题")
    await bot.showing(ZHANG, asked["message_id"], "有什么问题")
    await bot.say(ZHANG, "地面有油")
    await bot.replies(ZHANG, 5)
    huge = bot.api.add_photo(b"big", sizes=((1280, 1280),), file_size=25 * 1024 * 1024)
    bot.api.push_update(photo_update(ZHANG, huge))
    replies = await bot.replies(ZHANG, 7)
    assert "太大" in (replies[-2].text or "") and "照片" in (replies[-1].text or "")
    assert bot.rows("SELECT * FROM hazards") == []


async def test_a_text_file_sent_as_a_photo_is_refused(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    first = await bot.asking(ZHANG, "第 1/6 项")
    await bot.press(ZHANG, "有问题")
    await bot.showing(ZHANG, first["message_id"], "有什么问题")
    await bot.say(ZHANG, "地面有油")
    await bot.asking(ZHANG, "跳过")
    sent = len(bot.api.messages_to(ZHANG))
    notes = bot.api.add_file(b"not a picture at all\n", file_path="documents/notes.jpg")
    bot.api.push_update(document_update(ZHANG, notes, "notes.jpg", "image/jpeg", 21))
    replies = await bot.replies(ZHANG, sent + 2)
    assert "不是照片" in (replies[-2].text or "") and "照片" in (replies[-1].text or "")
    assert bot.rows("SELECT * FROM hazards") == []
    assert not any(bot.settings.media_path.rglob("*.jpg"))


async def test_group_start_points_to_private_chat_and_supervisor_binds_group(bot: Bot) -> None:
    await sign_up(bot, LIU, "13800000004")
    await sign_up(bot, ZHANG, "13800000003")
    bot.api.push_update(group_text_update(ZHANG, GROUP, "/start"))
    reply = (await bot.replies(GROUP, 1))[-1]
    assert "https://t.me/" in (reply.text or "")
    bot.api.push_update(group_text_update(ZHANG, GROUP, "/bindgroup"))
    assert "主管" in ((await bot.replies(GROUP, 2))[-1].text or "")
    bot.api.push_update(group_text_update(LIU, GROUP, "/bindgroup@frontline_test_bot"))
    assert "保安部" in ((await bot.replies(GROUP, 3))[-1].text or "")
    bot.api.push_update(group_text_update(ZHANG, GROUP, "大家注意安全"))  # chatter: ignored
    await bot.say(ZHANG, "/check")
    await bot.replies(ZHANG, 4)
    asked = await bot.press(ZHANG, "有问题")
    await bot.showing(ZHANG, asked["message_id"], "有什么问题")
    await bot.say(ZHANG, "配电箱漏电")
    await bot.replies(ZHANG, 5)
    await bot.press(ZHANG, "跳过")
    alert = (await bot.replies(GROUP, 4))[-1]
    assert "配电箱漏电" in (alert.text or "")
    assert len(bot.api.messages_to(GROUP)) == 4


async def test_long_message_is_split_within_telegram_limits(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    await bot.replies(ZHANG, 4)
    asked = await bot.press(ZHANG, "有问题")
    await bot.showing(ZHANG, asked["message_id"], "有什么问题")
    await bot.say(ZHANG, "很" * 5000)  # refused: longer than a description may be
    replies = await bot.replies(ZHANG, 6)
    assert all(len(m.text or "") <= 4096 for m in replies)


async def test_webhook_refuses_requests_without_the_secret(api: FakeBotAPI, tmp_path: Path) -> None:
    port = free_port()
    # Telegram is told the public https address; our listener sits behind the proxy.
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async for bot in running(
        api,
        tmp_path,
        telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_secret="s3cret-token",
        telegram_listen=f"127.0.0.1:{port}",
    ):
        update = text_update(7001, "/start", update_id=api.next_update_id())
        status, _ = await post_webhook(url, update, secret=None)
        assert status == 403
        status, _ = await post_webhook(url, update, secret="wrong")
        assert status == 403
        assert bot.rows("SELECT * FROM processed_events") == []
        status, _ = await post_webhook(url, update, secret="s3cret-token")
        assert status == 200
        await bot.replies(7001, 1)
        assert len(bot.rows("SELECT * FROM processed_events")) == 1


async def test_invite_link_signs_in_once(bot: Bot, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FRONTLINE_TELEGRAM_TOKEN", bot.api.token)
    monkeypatch.setenv("FRONTLINE_TELEGRAM_API_URL", bot.api.root_url)
    status = await asyncio.to_thread(cli.main, ["invite", "13800000003", "--db", str(bot.db_path)])
    link = capsys.readouterr().out.splitlines()[0]
    assert status == 0 and link.startswith("https://t.me/frontline_test_bot?start=")
    code = link.split("start=", 1)[1]
    await bot.say(ZHANG, f"/start {code}")
    assert "张伟" in ((await bot.replies(ZHANG, 1))[-1].text or "")
    await bot.say(6006, f"/start {code}")  # someone else, the same link
    replies = await bot.replies(6006, 2)
    assert "无效" in (replies[0].text or "")


async def test_alerts_held_for_a_supervisor_arrive_when_they_sign_in(bot: Bot) -> None:
    await sign_up(bot, ZHANG, "13800000003")
    await bot.say(ZHANG, "/check")
    await bot.replies(ZHANG, 4)
    asked = await bot.press(ZHANG, "有问题")
    await bot.showing(ZHANG, asked["message_id"], "有什么问题")
    await bot.say(ZHANG, "消防门被锁")
    await bot.replies(ZHANG, 5)
    await bot.press(ZHANG, "跳过")
    await bot.asking(ZHANG, "第 2/6 项")
    held = bot.rows("SELECT id FROM outbox WHERE staff_id = 4 AND channel IS NULL")
    assert held  # the alert (and whatever else the scheduler had for him) waits
    await sign_up(bot, LIU, "13800000004", expected=3)
    # Held notices of one kind come as one digest, so fewer messages than rows may arrive.
    await bot.api._wait_until(
        lambda: any("消防门被锁" in (m.text or m.caption or "") for m in bot.api.messages_to(LIU)),
        10,
    )


def test_run_without_a_token_stops_with_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("FRONTLINE_TELEGRAM_TOKEN", raising=False)
    assert cli.main(["run", "--db", str(tmp_path / "x.db")]) == 2
    assert "FRONTLINE_TELEGRAM_TOKEN" in capsys.readouterr().err


def test_request_urls_with_the_token_are_not_logged(tmp_path: Path) -> None:
    import logging

    cli.main(["outbox", "--db", str(tmp_path / "x.db")])
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


async def test_webhook_answers_only_after_the_update_is_committed(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    import threading

    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async for bot in running(
        api,
        tmp_path,
        telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_secret="s3cret-token",
        telegram_listen=f"127.0.0.1:{port}",
    ):
        assert api.webhook_url == "https://bot.example.org/telegram/hook"
        allowed = [c for c in api.requests if c.method == "setWebhook"][-1].params
        assert allowed["allowed_updates"] == ["message", "callback_query"]
        taken, release = threading.Event(), threading.Event()

        def hold(db: Path, taken: threading.Event, release: threading.Event) -> None:
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            taken.set()
            release.wait(30)
            conn.execute("ROLLBACK")
            conn.close()

        args = (bot.db_path, taken, release)
        threading.Thread(target=hold, args=args, daemon=True).start()
        await asyncio.to_thread(taken.wait, 10)
        update = text_update(7001, "/start", update_id=api.next_update_id())
        posted = asyncio.create_task(post_webhook(url, update, secret="s3cret-token"))
        await asyncio.sleep(1.5)  # past SQLite's busy timeout
        assert not posted.done()  # no 200 before the commit
        release.set()
        status, _ = await posted
        assert status == 200
        assert len(bot.rows("SELECT * FROM processed_events")) == 1
        # An update that cannot be parsed is answered 200 (Telegram would only resend it).
        poison = {"update_id": api.next_update_id(), "poll": {"id": "1"}}
        status, _ = await post_webhook(url, poison, secret="s3cret-token")
        assert status == 200
