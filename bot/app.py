"""The one place that wires Frontline together: database, handlers, engine
and sender. The command line and the tests both start from here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pydantic import SecretStr

from bot import charts, documents
from bot.channels.telegram.channel import TelegramChannel, TelegramSettings, build_application
from bot.channels.telegram.transport import TelegramTransport
from bot.channels.wecom.api import WeComAPI
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.crypto import WeComCrypto
from bot.channels.wecom.transport import CHANNEL as WECOM
from bot.channels.wecom.transport import ROBOT_CHANNEL as ROBOT
from bot.channels.wecom.transport import RobotTransport, WeComTransport
from bot.config import Settings
from bot.engine import Engine
from bot.sender import Sender, Transport
from bot.store import outbox
from bot.store.db import Database
from handlers.checklists import load_all
from handlers.router import build_router, menu
from schedules import drills as drill_reminders
from schedules import duties as duty_book
from schedules import hazards as deadlines
from schedules import incidents as incident_reminders
from schedules import notices as notice_reminders
from schedules import shifts, visit_plan, weekly
from schedules import training as training_reminders
from schedules import visits as visit_watch
from schedules.clock import Clock, SystemClock
from schedules.runner import Scheduler

log = logging.getLogger(__name__)


@dataclass
class App:
    db: Database
    engine: Engine
    sender: Sender
    scheduler: Scheduler

    @classmethod
    async def open(
        cls,
        db_path: Path | str,
        transports: Mapping[str, Transport],
        *,
        clock: Clock | None = None,
        language: str = "zh-CN",
        timezone: str = "Asia/Shanghai",
        media_dir: Path | None = None,
    ) -> App:
        load_all()  # a bad checklist file stops the start, not the first /check
        clock = clock or SystemClock()
        charts.configure(media_dir or Path(db_path).parent / "media")
        db = await Database.open(db_path)
        # Printable documents go where photos go: `media/` beside the database by default.
        documents.configure(media_dir or Path(db_path).parent / "media")
        # Rows a dead process was delivering: the sender decides on them again.
        await db.transaction(outbox.release_interrupted)
        sender = Sender(db, transports, clock)
        engine = Engine(
            db,
            build_router(),
            clock,
            default_language=language,
            default_timezone=timezone,
            on_commit=sender.wake,
            # The settings' default: `media/` beside the database.
            media_dir=media_dir or Path(db_path).parent / "media",
        )
        scheduler = Scheduler(
            db,
            clock,
            {
                **deadlines.KINDS,
                **shifts.KINDS,
                **notice_reminders.KINDS,
                **drill_reminders.KINDS,
                **duty_book.KINDS,
                **training_reminders.KINDS,
                **incident_reminders.KINDS,
                **visit_watch.KINDS,
                **weekly.KINDS,
            },
            planners=[
                shifts.make_planner(timezone),
                drill_reminders.make_watch_planner(timezone),
                duty_book.make_planner(timezone),
                training_reminders.make_planner(timezone),
                visit_plan.make_planner(timezone),
                weekly.make_planner(timezone),
            ],
            language=language,
            timezone=timezone,
            on_commit=sender.wake,
        )
        return cls(db=db, engine=engine, sender=sender, scheduler=scheduler)

    async def close(self) -> None:
        await self.db.close()


def telegram_settings(settings: Settings) -> TelegramSettings | None:
    if settings.telegram_token is None:
        return None
    secret = settings.telegram_webhook_secret
    return TelegramSettings(
        token=settings.telegram_token.get_secret_value(),
        api_url=settings.telegram_api_url,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        listen=settings.telegram_listen,
        poll_timeout=settings.telegram_poll_timeout,
    )


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """`frontline run`: the configured channels (Telegram, WeCom or both), the
    sender and the scheduler, until `stop` is set; `started` is set once
    updates are being received."""
    telegram = telegram_settings(settings)
    if telegram is None and not settings.wecom_enabled:
        raise ValueError("no channel is configured")
    async with contextlib.AsyncExitStack() as stack:
        transports: dict[str, Transport] = {}
        application = None
        if telegram is not None:
            application = build_application(telegram)
            transports["telegram"] = TelegramTransport(application.bot, settings.media_path)
        wecom = None
        cards: dict[str, str] = {}
        if settings.wecom_enabled:
            wecom = await stack.enter_async_context(wecom_api(settings))
            transports[WECOM] = WeComTransport(wecom, settings.media_path, cards)
            transports[ROBOT] = RobotTransport(wecom)
        app = await App.open(
            settings.db,
            transports,
            clock=clock,
            language=settings.language,
            timezone=settings.timezone,
            media_dir=settings.media_path,
        )
        stack.push_async_callback(app.close)
        # Each channel with how it starts receiving.
        channels: list[tuple[TelegramChannel | WeComChannel, Callable[[], Awaitable[None]]]] = []
        if application is not None and telegram is not None:
            channel = TelegramChannel(application, app.engine, app.db, settings.media_path, menu)
            channels.append((channel, partial(channel.start, telegram)))
        if wecom is not None:
            crypto = WeComCrypto(
                _secret(settings.wecom_token),
                _secret(settings.wecom_aes_key),
                settings.wecom_corp_id or "",
            )
            callbacks = WeComChannel(crypto, wecom, app.engine, app.db, settings.media_path, cards)
            channels.append((callbacks, partial(callbacks.start, settings.wecom_listen)))
        sender = asyncio.create_task(app.sender.run(), name="sender")
        try:
            await app.scheduler.start()
            for _, start in channels:
                await start()
            if started is not None:
                started.set()
            log.info("running channels=%s", ",".join(type(one).__name__ for one, _ in channels))
            await stop.wait()
        finally:
            await app.scheduler.stop()
            for one, _ in channels:
                await one.stop()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


def wecom_api(settings: Settings) -> WeComAPI:
    return WeComAPI(
        settings.wecom_api_url,
        settings.wecom_corp_id or "",
        _secret(settings.wecom_secret),
        settings.wecom_agent_id or 0,
    )


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
