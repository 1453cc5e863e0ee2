"""The fake Bot API answers the real python-telegram-bot client the way Telegram would."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes, MessageHandler, filters

from tests.telegram.fakebotapi import (
    BOT_USERNAME,
    FakeBotAPI,
    callback_update,
    group_text_update,
    photo_update,
    post_webhook,
    text_update,
)

TOKEN = "123:TEST"
USER = 4242


@pytest.fixture(autouse=True)
def retry_after_as_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns on every RetryAfter unless opted in to the future timedelta type.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


# PTB strips "Bad Request: " and applies str.capitalize(), which lowercases the rest, so
# "BUTTON_DATA_INVALID" arrives as "Button_data_invalid": match case-insensitively.


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


async def test_urls_are_what_ptb_expects(api: FakeBotAPI) -> None:
    assert api.base_url == api.root_url + "/bot"
    assert api.base_file_url == api.root_url + "/file/bot"
    assert api.root_url.startswith("http://127.0.0.1:")


async def test_get_me_returns_the_test_bot(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == BOT_USERNAME
    assert me.is_bot and me.can_join_groups
    assert api.calls[0] == "getMe"


async def test_wrong_token_is_unauthorized(api: FakeBotAPI) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=api.base_url):
            pass


async def test_unknown_method_is_not_found(bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")


async def test_sent_message_is_recorded(api: FakeBotAPI, bot: Bot) -> None:
    first = await bot.send_message(USER, "<b>你好</b>", parse_mode="HTML")
    second = await bot.send_message(USER, "again")

    assert (first.message_id, second.message_id) == (1, 2)
    assert first.from_user is not None and first.from_user.username == BOT_USERNAME
    assert first.chat.type == "private"
    [record, _] = api.messages_to(USER)
    assert (record.method, record.chat_id, record.message_id) == ("sendMessage", USER, 1)
    assert (record.text, record.parse_mode) == ("<b>你好</b>", "HTML")


async def test_inline_keyboard_arrives_as_a_dict(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(USER, "Accept?", reply_markup=keyboard("yes:1", "no:1"))

    assert message.reply_markup == keyboard("yes:1", "no:1")
    buttons = api.sent[0].reply_markup["inline_keyboard"][0]  # type: ignore[index]
    assert [b["callback_data"] for b in buttons] == ["yes:1", "no:1"]


async def test_edit_message_text_changes_the_message(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Accept?", reply_markup=keyboard("yes"))

    edited = await bot.edit_message_text("Accepted", chat_id=USER, message_id=sent.message_id)

    assert edited.text == "Accepted"  # type: ignore[union-attr]
    assert api.edits[0].text == "Accepted"
    current = api.message(USER, sent.message_id)
    assert current is not None and "reply_markup" not in current  # no markup removes it


async def test_edit_with_the_same_content_is_not_modified(bot: Bot) -> None:
    sent = await bot.send_message(USER, "Accept?", reply_markup=keyboard("yes"))

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "Accept?", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard("yes")
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)


async def test_callback_is_answered_once(api: FakeBotAPI, bot: Bot) -> None:
    api.push_update(callback_update(USER, "yes:7", message_id=7, message_text="Accept?"))
    [update] = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert query is not None and query.data == "yes:7"

    await query.answer("OK")
    edited = await query.edit_message_reply_markup(keyboard("done"))

    assert api.callback_answers[0].text == "OK"
    assert edited.reply_markup == keyboard("done")  # type: ignore[union-attr]
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await query.answer("twice")


async def test_get_updates_drops_confirmed_updates(api: FakeBotAPI, bot: Bot) -> None:
    first = api.push_update(text_update(USER, "one"))
    second = api.push_update(text_update(USER, "two"))

    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [first, second]
    [update] = await bot.get_updates(offset=first + 1, timeout=0)
    assert update.message is not None and update.message.text == "two"
    assert await bot.get_updates(offset=second + 1, timeout=0) == ()


async def test_long_poll_returns_when_an_update_is_pushed(api: FakeBotAPI, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for_call("getUpdates")

    api.push_update(text_update(USER, "/start"))

    [update] = await asyncio.wait_for(poll, 5)
    assert update.message is not None and update.message.text == "/start"


async def test_registered_file_downloads(api: FakeBotAPI, bot: Bot) -> None:
    [small, large] = api.add_photo(b"jpeg bytes", sizes=((90, 90), (1280, 960)))
    big = api.add_file(b"", file_size=25 * 1024 * 1024)
    api.push_update(photo_update(USER, [small, large], caption="漏水"))
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.photo[-1].file_id == large[0]

    file = await bot.get_file(update.message.photo[-1].file_id)

    assert bytes(await file.download_as_bytearray()) == b"jpeg bytes"
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(big)


async def test_commands_record_scope_and_language(api: FakeBotAPI, bot: Bot) -> None:
    scope = BotCommandScopeChat(USER)

    await bot.set_my_commands([BotCommand("report", "上报")], scope=scope, language_code="zh")

    [record] = api.commands
    assert record.commands == [{"command": "report", "description": "上报"}]
    assert record.scope == {"type": "chat", "chat_id": USER}
    assert record.language_code == "zh"
    assert await bot.get_my_commands(scope=scope, language_code="zh") == (
        BotCommand("report", "上报"),
    )
    assert await bot.get_my_commands() == ()


async def test_injected_429_raises_retry_after(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 429, retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "hi")

    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    await bot.send_message(USER, "hi")  # only the next call failed


async def test_blocked_chat_is_forbidden(api: FakeBotAPI, bot: Bot) -> None:
    api.block(USER)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    await bot.send_message(USER + 1, "hi")


async def test_failures_map_to_ptb_errors(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 400, "Bad Request: chat not found", chat_id=USER)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(USER, "hi")

    api.server_errors(1)
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(USER, "hi")
    assert not isinstance(caught.value, BadRequest)


async def test_telegram_limits_are_enforced(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "字" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, " ")
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "hi", reply_markup=keyboard("x" * 65))
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "<b>unclosed", parse_mode="HTML")
    await bot.send_message(USER, "<b>" + "字" * 4096 + "</b>", parse_mode="HTML")


async def test_uploaded_photo_caption_is_limited(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_photo(USER, b"jpeg", caption="c" * 1025)

    message = await bot.send_photo(USER, b"jpeg", caption="ok")

    assert api.sent[0].uploads == {"photo": b"jpeg"}
    file = await bot.get_file(message.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == b"jpeg"


async def test_flood_limits_reject_a_burst_to_one_chat(api: FakeBotAPI, bot: Bot) -> None:
    api.enforce_limits()

    with pytest.raises(RetryAfter):
        for n in range(5):
            await bot.send_message(USER, f"quick {n}")

    assert len(api.accepted_sends) in (3, 4)
    assert api.rejected_429 == 1


async def test_flood_limits_follow_telegram_windows() -> None:
    now = [0.0]
    api = FakeBotAPI(clock=lambda: now[0])
    api.enforce_limits(per_second=30, per_group_per_minute=20)

    async with api, Bot(TOKEN, base_url=api.base_url) as bot:
        for n in range(20):
            await bot.send_message(-100, f"group {n}")
        with pytest.raises(RetryAfter) as group_full:
            await bot.send_message(-100, "one too many")
        assert group_full.value.retry_after == dtm.timedelta(seconds=60)
        for chat in range(1, 11):
            await bot.send_message(chat, "private")
        with pytest.raises(RetryAfter) as bot_full:
            await bot.send_message(11, "31st in a second")
        assert bot_full.value.retry_after == dtm.timedelta(seconds=1)
        now[0] = 1.5
        await bot.send_message(11, "next second")


async def test_set_webhook_blocks_polling(api: FakeBotAPI, bot: Bot) -> None:
    await bot.set_webhook("https://bot.example/telegram", secret_token="s3cret")

    assert (api.webhook_url, api.webhook_secret) == ("https://bot.example/telegram", "s3cret")
    assert (await bot.get_webhook_info()).url == "https://bot.example/telegram"
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_post_webhook_sends_the_secret(api: FakeBotAPI) -> None:
    seen: list[tuple[str | None, dict[str, object]]] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        update = group_text_update(USER, -100123, "hi", update_id=api.next_update_id())
        status, body = await post_webhook(f"http://127.0.0.1:{port}/hook", update, "s3cret")
    finally:
        await runner.cleanup()

    assert (status, body) == (200, "ok")
    assert seen == [("s3cret", update)]


async def test_application_polls_and_handles_pushed_updates(api: FakeBotAPI) -> None:
    app = ApplicationBuilder().token(TOKEN).base_url(api.base_url)
    app = app.base_file_url(api.base_file_url).build()
    texts: list[str] = []
    both_seen = asyncio.Event()

    async def remember(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        texts.append(update.effective_message.text or "")
        if len(texts) == 2:
            both_seen.set()

    app.add_handler(CommandHandler("start", remember))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, remember))

    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)  # type: ignore[union-attr]
        try:
            api.push_update(text_update(USER, "/start"))
            api.push_update(text_update(USER, "你好"))
            await asyncio.wait_for(both_seen.wait(), 5)
        finally:
            await app.updater.stop()  # type: ignore[union-attr]
            await app.stop()

    assert texts == ["/start", "你好"]
    assert "deleteWebhook" in api.calls
