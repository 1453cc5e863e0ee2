"""`frontline run` twice on one PostgreSQL database against the fake Bot API
(long polling): one process polls and one sends at a time, the other stands by;
every reply goes once; when the polling, sending process stops, the other
takes both over within seconds and answers the next message. A row queued by
a third process (the desk's `frontline web`) is delivered by the sender."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from conftest import import_demo

from bot.app import App, serve
from bot.config import load_settings
from bot.store import outbox
from bot.store.db import Database
from bot.store.outbox import NewMessage
from tests.postgresql import Cluster
from tests.telegram.fakebotapi import FakeBotAPI, contact_update, text_update

ZHANG = 5001  # 张伟, a worker of the demo data
TAKE_OVER_SECONDS = 10.0


@asynccontextmanager
async def process(api: FakeBotAPI, url: str, media: Path) -> AsyncIterator[asyncio.Event]:
    """One `frontline run` (its own pool, its own role connections); yields its stop."""
    settings = load_settings(
        db=url,
        telegram_token=api.token,
        telegram_api_url=api.root_url,
        telegram_poll_timeout=1,
        media_dir=media,
    )
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, started=started))
    await asyncio.wait_for(started.wait(), 20)
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def sent_to(api: FakeBotAPI, chat: int) -> list[str]:
    return [m.text or "" for m in api.messages_to(chat) if not m.method.startswith("edit")]


async def test_two_processes_poll_and_send_one_at_a_time_and_hand_over(
    postgresql_cluster: Cluster, tmp_path: Path
) -> None:
    url = postgresql_cluster.fresh()
    seeded = await App.open(url, {})
    await import_demo(seeded)
    await seeded.close()
    media = tmp_path / "media"
    async with FakeBotAPI() as api, process(api, url, media) as first, process(api, url, media):
        api.push_update(text_update(ZHANG, "/start"))
        await api.wait_for_sent(ZHANG, count=1, timeout=10)
        api.push_update(contact_update(ZHANG, "+86 138 0000 0003", contact_user_id=ZHANG))
        await api.wait_for_sent(ZHANG, count=2, timeout=10)
        await asyncio.sleep(3)  # a few role checks: nobody else polls or sends
        assert api.poll_conflicts == 0
        replies = sent_to(api, ZHANG)
        assert len(replies) == 2 and "张伟" in replies[-1]

        # A row queued by another process on the database (the desk's):
        # the sender hears of it at commit (NOTIFY) and delivers it once.
        desk = await Database.open(url)
        message = NewMessage(
            staff_id=None,
            channel="telegram",
            address=str(ZHANG),
            text="来自工作台的通知",
            idempotency_key="desk-note-1",
        )
        await desk.transaction(lambda conn: outbox.enqueue(conn, message, "2026-12-03"))
        await desk.close()
        await api.wait_for_sent(ZHANG, count=3, timeout=10)

        # The first process stops; the second takes polling and sending over.
        first.set()
        await asyncio.sleep(0.5)
        stopped_at = time.monotonic()
        api.push_update(text_update(ZHANG, "/help"))
        await api.wait_for_sent(ZHANG, count=4, timeout=TAKE_OVER_SECONDS + 5)
        assert time.monotonic() - stopped_at < TAKE_OVER_SECONDS
        await asyncio.sleep(1)
        replies = sent_to(api, ZHANG)
        assert len(replies) == 4, replies
        assert replies[2] == "来自工作台的通知"
    postgresql_cluster.drop(url)
