"""The one place that wires Frontline together: database, handlers, engine
and sender. The command line and the tests both start from here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.channels.telegram.channel import TelegramChannel, TelegramSettings, build_application
from bot.channels.telegram.transport import TelegramTransport
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
from schedules import shifts, visit_plan
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
    ) -> App:
        load_all()  # a bad checklist file stops the start, not the first /check
        clock = clock or SystemClock()
        db = await Database.open(db_path)
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
            },
            planners=[
                shifts.make_planner(timezone),
                drill_reminders.plan_watch,
                duty_book.make_planner(timezone),
                training_reminders.plan,
                visit_plan.make_planner(timezone),
            ],
            language=language,
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
    """`frontline run`: the Telegram channel and the sender, until `stop` is
    set; `started` is set once updates are being received."""
    telegram = telegram_settings(settings)
    if telegram is None:
        raise ValueError("FRONTLINE_TELEGRAM_TOKEN is not set")
    application = build_application(telegram)
    transport = TelegramTransport(application.bot, settings.media_path)
    app = await App.open(
        settings.db,
        {transport.name: transport},
        clock=clock,
        language=settings.language,
        timezone=settings.timezone,
    )
    channel = TelegramChannel(application, app.engine, app.db, settings.media_path, menu)
    sender = asyncio.create_task(app.sender.run(), name="sender")
    try:
        await app.scheduler.start()
        await channel.start(telegram)
        if started is not None:
            started.set()
        log.info(
            "running channel=telegram mode=%s", "webhook" if telegram.webhook_url else "polling"
        )
        await stop.wait()
    finally:
        await app.scheduler.stop()
        await channel.stop()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await app.close()
