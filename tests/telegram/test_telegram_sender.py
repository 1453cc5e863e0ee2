"""The sender and the Telegram transport together, as people on Telegram see
them: python-telegram-bot's real HTTP client against the fake Bot API server.
Every message arrives once and in order through flood limits, server errors
and a crash; a person who blocks the bot is reported to the admins once; long
texts and photos fit Telegram's limits; questions are edited in place.

The sender's pace (its token buckets) and the fake server's flood control run
on one virtual clock here, so waiting for a token never waits for wall time;
retries run on the FakeClock."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
import textwrap
import types
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import START, Person
from telegram import Bot

import bot.sender
from bot.app import App
from bot.channels.telegram.channel import TelegramSettings, build_application
from bot.channels.telegram.transport import MAX_TEXT, TelegramTransport
from bot.clock import FakeClock, iso, parse_iso
from bot.model import Button, Inbound, InboundKind
from bot.sender import Retry, _Pace
from bot.store import media as media_store
from bot.store import outbox, people
from bot.store.outbox import NewMessage
from tests.telegram.fakebotapi import FakeBotAPI, MessageRecord, _FloodControl

CHANNEL = "telegram"
ZHANG, LIU, LI = 5001, 5002, 5003  # 张伟, 刘强 (his supervisor), 李静 (safety officer)
GROUP = -1005003
_keys = itertools.count(1)
_events = itertools.count(1)
_real_sleep = asyncio.sleep

# PTB itself reads RetryAfter.retry_after while building the error: not ours to silence.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning"
)


class VirtualTime:
    """Monotonic time that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await _real_sleep(0)


@pytest.fixture(autouse=True)
def pace(monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    """The sender's buckets read and wait on virtual time (only in bot.sender)."""
    virtual = VirtualTime()
    monkeypatch.setattr(bot.sender, "time", types.SimpleNamespace(monotonic=virtual.monotonic))
    shim = types.SimpleNamespace(**{**vars(asyncio), "sleep": virtual.sleep})
    monkeypatch.setattr(bot.sender, "asyncio", shim)
    return virtual


@pytest.fixture
async def api(pace: VirtualTime) -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(clock=pace.monotonic) as server:
        yield server


@pytest.fixture
async def tg(api: FakeBotAPI) -> AsyncIterator[Bot]:
    """The bot exactly as `frontline run` builds it."""
    telegram_bot = build_application(TelegramSettings(token=api.token, api_url=api.root_url)).bot
    async with telegram_bot:
        yield telegram_bot


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.fixture
async def app(
    db_target: Path | str, tmp_path: Path, clock: FakeClock, tg: Bot, media: Path
) -> AsyncIterator[App]:
    """The shared `app`, delivering to the fake Telegram."""
    transport = TelegramTransport(tg, media)
    application = await App.open(
        db_target, {CHANNEL: transport}, clock=clock, media_dir=tmp_path / "media"
    )
    yield application
    await application.close()


class OnTelegram:
    """A member of staff in a private chat with the bot: what they write reaches
    the engine the way the Telegram channel hands it over."""

    def __init__(self, app: App, api: FakeBotAPI, staff_id: int, chat: int) -> None:
        self.app = app
        self.api = api
        self.staff_id = staff_id
        self.chat = chat

    async def write(self, text: str) -> None:
        kind = InboundKind.COMMAND if text.startswith("/") else InboundKind.TEXT
        await self.app.engine.handle(self._inbound(kind, text, {}))

    async def press(self, label: str) -> MessageRecord:
        """Press a button of the latest message that has buttons; return that message."""
        asked = [m for m in self.received if m.reply_markup][-1]
        keyboard = asked.reply_markup["inline_keyboard"]  # type: ignore[index]
        data = next(b["callback_data"] for row in keyboard for b in row if label in b["text"])
        extra = {"message_id": asked.message_id, "chat": str(self.chat), "ack": True}
        await self.app.engine.handle(self._inbound(InboundKind.ACTION, data, extra))
        return asked

    def _inbound(self, kind: InboundKind, text: str, data: dict[str, Any]) -> Inbound:
        return Inbound(CHANNEL, str(self.chat), f"tg{next(_events)}", kind, text, data)

    @property
    def received(self) -> list[MessageRecord]:
        return self.api.messages_to(self.chat)

    def texts(self) -> list[str]:
        return [m.text or m.caption or "" for m in self.received]


@pytest.fixture
def on_telegram(app: App, api: FakeBotAPI, org: dict[str, int]):
    async def bind(name: str, chat: int) -> OnTelegram:
        staff_id = org[name]
        await app.db.transaction(
            lambda conn: people.bind_identity(conn, CHANNEL, str(chat), staff_id, iso(START))
        )
        return OnTelegram(app, api, staff_id, chat)

    return bind


async def queue(
    app: App,
    chat: int,
    text: str,
    *,
    staff_id: int | None = None,
    buttons: tuple[tuple[Button, ...], ...] = (),
    attachments: tuple[str, ...] = (),
    replaces_id: int | None = None,
) -> int:
    message = NewMessage(
        staff_id=staff_id,
        channel=CHANNEL,
        address=str(chat),
        text=text,
        idempotency_key=f"test:{next(_keys)}",
        buttons=buttons,
        attachments=attachments,
        replaces_id=replaces_id,
    )
    now = iso(app.sender.clock.now())
    outbox_id = await app.db.transaction(lambda conn: outbox.enqueue(conn, message, now))
    assert outbox_id is not None
    return outbox_id


async def rows(app: App, where: str = "1 = 1", *params: Any) -> list[sqlite3.Row]:
    return await app.db.read(
        lambda conn: conn.execute(
            f"SELECT * FROM outbox WHERE {where} ORDER BY id", params
        ).fetchall()
    )


async def drain(app: App) -> int:
    return await app.sender.drain(CHANNEL)


def sent_texts(api: FakeBotAPI) -> list[str]:
    return [m.text or m.caption or "" for m in api.sent]


# -- delivered once, as written --------------------------------------------------------


async def test_reply_arrives_once_as_plain_text_and_its_message_id_is_kept(
    app: App, api: FakeBotAPI, on_telegram
) -> None:
    zhang = await on_telegram("张伟", ZHANG)
    await zhang.write("/help")
    said = "<b>护栏</b> 松动 *危险* _急_ [看这里](http://x) `code`"
    await queue(app, ZHANG, said)

    assert await drain(app) == 2
    help_row, said_row = await rows(app)
    assert zhang.texts() == [help_row["text"], said]
    assert all(m.parse_mode is None and "entities" not in m.params for m in zhang.received)
    for row, message in zip((help_row, said_row), zhang.received, strict=True):
        assert row["status"] == "sent" and row["channel_message_id"] == str(message.message_id)

    assert await drain(app) == 0
    assert len(api.sent) == 2


# -- Telegram says: too many requests ---------------------------------------------------


async def test_flood_limit_storm_loses_nothing_doubles_nothing_and_keeps_each_chats_order(
    app: App, api: FakeBotAPI, clock: FakeClock
) -> None:
    chats = (ZHANG, LIU, LI)
    for n in (1, 2):
        for chat in chats:
            await queue(app, chat, f"{chat}: message {n}")
    api.fail_next("sendMessage", 429, retry_after=5, times=3)
    refused_at = clock.now()

    assert await drain(app) == 0  # each chat's first message refused; none overtook it
    assert api.sent == [] and api.calls.count("sendMessage") == 3
    waiting = await rows(app)
    assert {row["status"] for row in waiting} == {"pending"}
    refused = [row for row in waiting if row["attempts"]]
    assert len(refused) == 3  # the second of each chat waits behind its first
    assert {row["next_attempt_at"] for row in refused} == {iso(refused_at + timedelta(seconds=5))}
    assert "429" in (waiting[0]["last_error"] or "")

    clock.advance(timedelta(seconds=4, milliseconds=999))
    assert await drain(app) == 0
    assert api.calls.count("sendMessage") == 3

    clock.advance(timedelta(milliseconds=1))
    assert await drain(app) == 6
    for chat in chats:
        assert [m.text for m in api.messages_to(chat)] == [f"{chat}: message {n}" for n in (1, 2)]
    assert len(api.sent) == 6
    assert {row["status"] for row in await rows(app)} == {"sent"}


# -- server errors and no network -------------------------------------------------------


async def test_bad_gateway_is_retried_with_growing_backoff_and_delivered_once(
    app: App, api: FakeBotAPI, clock: FakeClock, on_telegram
) -> None:
    zhang = await on_telegram("张伟", ZHANG)
    await zhang.write("/help")
    api.fail_next("sendMessage", 502, times=2)
    waits = []
    for _ in range(2):
        assert await drain(app) == 0
        [row] = await rows(app)
        assert row["status"] == "pending" and "Bad Gateway" in row["last_error"]
        due = parse_iso(row["next_attempt_at"])
        waits.append((due - clock.now()).total_seconds())
        clock.set(due)

    assert 1.6 <= waits[0] <= 2.4 and 3.2 <= waits[1] <= 4.8  # 2 s, then 4 s, ±20 %
    assert await drain(app) == 1
    assert len(zhang.received) == 1
    [row] = await rows(app)
    assert row["status"] == "sent" and row["attempts"] == 3


async def test_no_network_is_retried_for_the_outage_then_failed_with_the_reason(
    app: App, api: FakeBotAPI, clock: FakeClock, on_telegram
) -> None:
    zhang = await on_telegram("张伟", ZHANG)
    await zhang.write("/help")
    app.sender.retry = Retry(give_up_after=timedelta(minutes=30))
    await api.stop()  # connections refused from now on

    for _ in range(100):
        await drain(app)
        row = (await rows(app))[0]  # (the admins' "channel down" notice comes after it)
        if row["status"] != "pending":
            break
        clock.set(parse_iso(row["next_attempt_at"]))
    assert row["status"] == "failed" and row["attempts"] > 3
    assert row["last_error"].startswith(f"gave up after {row['attempts']} attempts: network:")
    clock.advance(timedelta(days=1))
    assert await drain(app) == 0
    assert (await rows(app))[0]["attempts"] == row["attempts"]


# -- the person blocked the bot -----------------------------------------------------------


async def test_blocked_person_is_reported_to_admins_once_and_reachable_again_on_writing(
    app: App, api: FakeBotAPI, org: dict[str, int], on_telegram, person
) -> None:
    liu = await on_telegram("刘强", LIU)
    api.block(LIU)
    await queue(app, LIU, "提醒 1", staff_id=liu.staff_id)
    await queue(app, LIU, "提醒 2", staff_id=liu.staff_id)

    assert await drain(app) == 0
    for_liu = await rows(app, "address = ?", str(LIU))
    assert [row["status"] for row in for_liu] == ["failed", "failed"]
    assert all(row["last_error"].startswith("403") for row in for_liu)
    await queue(app, LIU, "提醒 3", staff_id=liu.staff_id)
    assert await drain(app) == 0
    assert (await rows(app, "address = ?", str(LIU)))[-1]["status"] == "failed"

    notices = await rows(app, "staff_id = ?", org["王建国"])
    assert len(notices) == 1 and "刘强" in notices[0]["text"]
    assert not await rows(app, "staff_id NOT IN (?, ?)", liu.staff_id, org["王建国"])
    reachable = await app.db.read(
        lambda conn: conn.execute(
            "SELECT reachable FROM channel_identities WHERE channel = ? AND user_id = ?",
            (CHANNEL, str(LIU)),
        ).fetchone()[0]
    )
    assert reachable == 0
    assert await app.db.read(lambda conn: people.reachable_channel(conn, liu.staff_id)) is None

    # 张伟 reports a hazard: the alert for his supervisor waits instead of failing on Telegram.
    zhang: Person = await person("张伟")
    await zhang.send("/check")
    await zhang.press("有问题")
    await zhang.send("灭火器压力不足")
    await zhang.press("跳过")
    [alert] = await rows(app, "staff_id = ? AND text LIKE '%灭火器压力不足%'", liu.staff_id)
    assert alert["channel"] is None and alert["status"] == "pending"

    # 刘强 unblocks the bot and writes again: Telegram reaches him again.
    api.unblock(LIU)
    await liu.write("/help")
    route = await app.db.read(lambda conn: people.reachable_channel(conn, liu.staff_id))
    assert route == (CHANNEL, str(LIU))
    assert await drain(app) >= 1
    reply = (await rows(app, "address = ? AND status = 'sent'", str(LIU)))[-1]
    assert liu.texts()[-1] == reply["text"] and "/check" in reply["text"]
    assert len(await rows(app, "staff_id = ?", org["王建国"])) == 1


# -- our own mistakes: 400 ----------------------------------------------------------------


async def test_bad_request_fails_at_once_and_keeps_what_was_asked(
    app: App, api: FakeBotAPI, clock: FakeClock
) -> None:
    buttons = ((Button("正常", "v3:ok"), Button("有问题", "v3:problem")),)
    await queue(app, ZHANG, "第 1/6 项：消防通道是否畅通？", buttons=buttons)
    api.fail_next("sendMessage", 400, "Bad Request: chat not found")

    assert await drain(app) == 0
    [row] = await rows(app)
    assert row["status"] == "failed" and row["attempts"] == 1
    error = row["last_error"]
    assert "400" in error and "chat not found" in error.lower()
    assert f"chat={ZHANG}" in error and "v3:ok" in error and "v3:problem" in error

    clock.advance(timedelta(days=1))
    assert await drain(app) == 0
    assert api.calls.count("sendMessage") == 1  # never retried
    assert not await rows(app, "id != ?", row["id"])  # a 400 is not a block: no admin notice


# -- Telegram's size limits ---------------------------------------------------------------


async def test_long_text_arrives_as_two_messages_with_buttons_on_the_last(
    app: App, api: FakeBotAPI
) -> None:
    text = "\n".join(f"第{n:03d}行：" + "很" * 44 for n in range(100))  # 5,099 characters
    buttons = ((Button("知道了", "/ack"),),)
    outbox_id = await queue(app, ZHANG, text, buttons=buttons)

    assert await drain(app) == 1
    first, last = api.messages_to(ZHANG)
    assert first.text and last.text and first.text + last.text == text
    assert len(first.text) <= MAX_TEXT and len(last.text) <= MAX_TEXT
    assert first.reply_markup is None
    assert last.reply_markup == {"inline_keyboard": [[{"text": "知道了", "callback_data": "/ack"}]]}
    [row] = await rows(app, "id = ?", outbox_id)
    assert row["channel_message_id"] == str(last.message_id)


async def test_photo_with_a_long_text_comes_first_then_the_text(
    app: App, api: FakeBotAPI, media: Path
) -> None:
    (media / "hazards").mkdir()
    (media / "hazards" / "h1.jpg").write_bytes(b"\xff\xd8 jpeg \xff\xd9")
    text = "隐患描述：" + "油" * 1995  # 2,000 characters: over the 1,024 of a caption
    await queue(app, LIU, text, attachments=("hazards/h1.jpg",))

    assert await drain(app) == 1
    photo, message = api.messages_to(LIU)
    assert photo.method == "sendPhoto" and photo.caption is None
    assert photo.uploads == {"photo": b"\xff\xd8 jpeg \xff\xd9"}
    assert message.method == "sendMessage" and message.text == text


async def test_short_text_rides_on_the_photo_as_its_caption(
    app: App, api: FakeBotAPI, media: Path
) -> None:
    (media / "h2.jpg").write_bytes(b"\xff\xd8 small \xff\xd9")
    buttons = ((Button("已处理", "v2:done"),),)
    await queue(app, LI, "配电箱漏电", attachments=("h2.jpg",), buttons=buttons)

    assert await drain(app) == 1
    [photo] = api.messages_to(LI)
    assert photo.method == "sendPhoto" and photo.caption == "配电箱漏电"
    assert photo.reply_markup == {
        "inline_keyboard": [[{"text": "已处理", "callback_data": "v2:done"}]]
    }


async def test_retry_after_half_a_message_arrived_sends_only_the_rest(
    app: App, api: FakeBotAPI, clock: FakeClock, media: Path
) -> None:
    (media / "h3.jpg").write_bytes(b"\xff\xd8 photo \xff\xd9")
    text = "整改要求：" + "严" * 1500
    outbox_id = await queue(app, ZHANG, text, attachments=("h3.jpg",))
    api.fail_next("sendMessage", 502)  # the photo arrives, the text does not

    assert await drain(app) == 0
    assert [m.method for m in api.messages_to(ZHANG)] == ["sendPhoto"]
    clock.advance(timedelta(minutes=1))
    assert await drain(app) == 1
    photo, message = api.messages_to(ZHANG)
    assert photo.method == "sendPhoto" and message.text == text  # the photo once, not twice
    [row] = await rows(app, "id = ?", outbox_id)
    assert row["status"] == "sent" and row["channel_message_id"] == str(message.message_id)


# -- questions edited in place -----------------------------------------------------------


async def test_pressed_question_becomes_the_next_in_one_edit_and_not_modified_counts_as_done(
    app: App, api: FakeBotAPI, on_telegram
) -> None:
    zhang = await on_telegram("张伟", ZHANG)
    await zhang.write("/check")
    assert await drain(app) == 2
    question = await zhang.press("正常")
    assert await drain(app) == 1  # the next question, in place of the pressed one

    [edit] = api.edits
    assert edit.method == "editMessageText" and edit.chat_id == ZHANG
    assert edit.message_id == question.message_id
    shown = api.message(ZHANG, question.message_id) or {}
    assert shown["text"].startswith("✅ 1. ") and shown["text"].endswith("规定的安全措施已落实")
    keyboard = shown["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in keyboard[0]] == ["v2:ok", "v2:problem", "v2:na"]
    assert len(zhang.received) == 2  # no new message
    edit_row = (await rows(app, "replaces_id IS NOT NULL"))[0]
    assert edit_row["status"] == "sent"
    assert edit_row["channel_message_id"] == str(question.message_id)

    # The same edit again (say, after a crash): Telegram says "not modified"; that is done.
    again = await queue(
        app,
        ZHANG,
        shown["text"],
        buttons=(
            (
                Button("✅ 正常", "v2:ok"),
                Button("⚠️ 有问题", "v2:problem"),
                Button("➖ 不适用", "v2:na"),
            ),
        ),
        replaces_id=edit_row["replaces_id"],
    )
    assert await drain(app) == 1
    [row] = await rows(app, "id = ?", again)
    assert row["status"] == "sent" and row["last_error"] is None
    assert len(api.edits) == 1 and len(zhang.received) == 2


async def test_a_question_whose_message_cannot_be_edited_arrives_as_a_new_one(
    app: App, api: FakeBotAPI
) -> None:
    first = await queue(app, ZHANG, "第 1/6 项")
    assert await drain(app) == 1
    # The person deleted it: Telegram no longer knows the message.
    await app.db.transaction(
        lambda conn: conn.execute(
            "UPDATE outbox SET channel_message_id = '999' WHERE id = ?", (first,)
        )
    )
    buttons = ((Button("✅ 正常", "v2:ok"),),)
    second = await queue(app, ZHANG, "第 2/6 项", buttons=buttons, replaces_id=first)
    assert await drain(app) == 1
    arrived = api.messages_to(ZHANG)[-1]
    assert arrived.text == "第 2/6 项" and arrived.reply_markup is not None
    [row] = await rows(app, "id = ?", second)
    assert row["status"] == "sent" and row["channel_message_id"] == str(arrived.message_id)


# -- pace: within Telegram's limits without provoking a 429 ----------------------------------


async def test_ten_messages_to_one_chat_go_three_at_once_then_one_a_second(
    app: App, api: FakeBotAPI, pace: VirtualTime
) -> None:
    api.enforce_limits()
    for n in range(10):
        await queue(app, ZHANG, f"消息 {n}")
    start = pace.now

    assert await drain(app) == 10
    assert api.rejected_429 == 0
    assert [m.text for m in api.messages_to(ZHANG)] == [f"消息 {n}" for n in range(10)]
    sent_at = [at - start for at in api.accepted_sends]
    assert sent_at[2] < 0.1  # the burst, spaced by the bot's 30/s only
    assert 1.0 <= sent_at[3] <= 1.1  # then a little under one a second
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at[3:])]
    assert all(1.0 <= gap <= 1.1 for gap in gaps), gaps


@pytest.mark.parametrize(
    ("addresses", "burst", "at_least_per_second"),
    [
        ([str(6000 + n) for n in range(120)], 1, 28.5),  # many people: the bot's 30/s binds
        ([str(GROUP)] * 30, 3, 0.25),  # one group: 20 a minute
        ([str(ZHANG)] * 12, 3, 0.9),  # one person: about 1/s after a burst of 3
    ],
    ids=["many-chats", "one-group", "one-chat"],
)
async def test_pace_stays_within_telegrams_limits_without_wasting_them(
    pace: VirtualTime, addresses: list[str], burst: int, at_least_per_second: float
) -> None:
    """Sent one after another as fast as the pace lets them, as Telegram's flood
    control (the fake's) judges them."""
    transport = TelegramTransport(Bot("123:TEST"), Path())
    flood = _FloodControl(pace.monotonic, 30, 1, 20, 3)
    sender_pace = _Pace(transport)
    start, refused = pace.now, 0
    for address in addresses:
        await sender_pace.acquire(address)
        refused += flood.admit(int(address)) is not None
    elapsed = pace.now - start
    assert refused == 0
    assert (len(addresses) - burst) / elapsed >= at_least_per_second


# -- a crash in the middle of a burst ----------------------------------------------------

DRAIN_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime
    from pathlib import Path

    from bot.app import App
    from bot.channels.telegram.channel import TelegramSettings, build_application
    from bot.channels.telegram.transport import TelegramTransport
    from bot.clock import FakeClock


    class Unpaced(TelegramTransport):
        # This process is about the crash, not the pace: as fast as it goes.
        per_second = 0.0

        def limit(self, address):
            return 0.0, 0.0


    async def main(api_url, token, db, media, start):
        bot = build_application(TelegramSettings(token=token, api_url=api_url)).bot
        async with bot:
            clock = FakeClock(datetime.fromisoformat(start))
            app = await App.open(db, {"telegram": Unpaced(bot, Path(media))}, clock=clock)
            await app.sender.drain("telegram")
            print("drained everything", flush=True)


    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_killed_mid_burst_every_message_arrives_and_only_in_flight_ones_twice(
    api: FakeBotAPI, tg: Bot, tmp_path: Path, clock: FakeClock, media: Path
) -> None:
    db_path = tmp_path / "crash.db"
    texts = [f"通知 #{n:03d}" for n in range(300)]
    seeded = await App.open(db_path, {}, clock=clock)
    try:
        for n, text in enumerate(texts):
            await queue(seeded, 7000 + n, text)
    finally:
        await seeded.close()
    script = tmp_path / "drain.py"
    script.write_text(DRAIN_SCRIPT, encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        api.root_url,
        api.token,
        str(db_path),
        str(media),
        iso(clock.now()),
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await api.wait_for_sent(count=100, timeout=20)
    finally:
        process.kill()
        out, _ = await process.communicate()
    assert b"drained everything" not in out, "the process finished before it was killed"
    received_before = len(api.sent)
    conn = sqlite3.connect(db_path)
    try:
        unconfirmed = {
            text for (text,) in conn.execute("SELECT text FROM outbox WHERE status = 'sending'")
        }
        confirmed = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
    finally:
        conn.close()

    restarted = await App.open(db_path, {CHANNEL: TelegramTransport(tg, media)}, clock=clock)
    try:
        await restarted.recover()  # what `frontline run` does first, under its lock
        assert await restarted.sender.drain(CHANNEL) == 300 - confirmed
        assert {row["status"] for row in await rows(restarted)} == {"sent"}
        parallel = restarted.sender.parallel
    finally:
        await restarted.close()

    counts = Counter(sent_texts(api))
    assert set(counts) == set(texts), "a message was lost"
    twice = sorted(text for text, count in counts.items() if count > 1)
    assert all(counts[text] == 2 for text in twice)
    assert set(twice) <= unconfirmed, "a message confirmed before the kill was sent again"
    assert len(twice) <= parallel, (
        f"{len(twice)} delivered twice; at most the {parallel} in flight may be"
    )
    print(  # shown with -s: what the kill cost
        f"killed after {received_before} sends; {len(twice)} in flight delivered twice: {twice}"
    )


async def test_a_printable_pdf_goes_as_a_document(app: App, api: FakeBotAPI, media: Path) -> None:
    (media / "documents" / "ab12").mkdir(parents=True)
    (media / "documents" / "ab12" / "ZG-2026-001.pdf").write_bytes(b"%PDF-1.4 order")
    await queue(app, LIU, "整改通知书 ZG-2026-001", attachments=("documents/ab12/ZG-2026-001.pdf",))

    assert await drain(app) == 1
    [document] = api.messages_to(LIU)
    assert document.method == "sendDocument" and document.caption == "整改通知书 ZG-2026-001"
    assert document.uploads == {"document": b"%PDF-1.4 order"}


# -- a stored photo that is gone ----------------------------------------------------------


async def test_a_missing_photo_goes_by_telegrams_own_copy(
    app: App, api: FakeBotAPI, media: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file_id = api.add_file(b"\xff\xd8 jpeg \xff\xd9")
    await app.db.transaction(
        lambda conn: media_store.remember(conn, CHANNEL, file_id, "ab/gone.jpg", "2026-01-01")
    )
    await queue(app, ZHANG, "⚠️ 隐患报告：护栏松动", attachments=("ab/gone.jpg",))
    assert await drain(app) == 1
    [sent] = api.messages_to(ZHANG)
    assert sent.method == "sendPhoto" and "护栏松动" in (sent.caption or "")
    assert [r for r in caplog.records if "media file missing" in r.getMessage()]


async def test_a_missing_photo_without_a_copy_still_sends_the_text_with_a_note(
    app: App, api: FakeBotAPI, media: Path
) -> None:
    await queue(app, ZHANG, "⚠️ 隐患报告：护栏松动", attachments=("ab/gone.jpg",))
    assert await drain(app) == 1
    [sent] = api.messages_to(ZHANG)
    assert sent.method == "sendMessage" and "护栏松动" in (sent.text or "")
    assert "照片已丢失" in (sent.text or "")
    [row] = await rows(app)
    assert row["status"] == "sent"
