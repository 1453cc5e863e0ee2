"""The one place that wires Frontline together: database, handlers, engine,
sender and the documents worker. The command line and the tests both start from here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from telegram.error import InvalidToken

from bot import charts, documents, i18n
from bot.channels.telegram.channel import TelegramChannel, TelegramSettings, build_application
from bot.channels.telegram.transport import TelegramTransport
from bot.channels.wecom.api import WeComAPI
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.crypto import WeComCrypto
from bot.channels.wecom.transport import CHANNEL as WECOM
from bot.channels.wecom.transport import ROBOT_CHANNEL as ROBOT
from bot.channels.wecom.transport import RobotTransport, WeComTransport
from bot.checklists import load_all
from bot.clock import Clock, SystemClock
from bot.config import Settings, media_beside
from bot.engine import Engine
from bot.preparer import Preparer
from bot.roles import Role
from bot.sender import Sender, Transport
from bot.store import instance, outbox
from bot.store.db import Database
from bot.store.dialect import is_postgresql
from bot.store.leases import listen
from bot.store.reader import Reader, open_reader
from bot.web.app import opened, serve_desk
from bot.web.context import Desk
from bot.web.wecom import WeComSignIn
from handlers.router import build_router, menu
from schedules import drills as drill_reminders
from schedules import duties as duty_book
from schedules import hazards as deadlines
from schedules import incidents as incident_reminders
from schedules import notices as notice_reminders
from schedules import shifts, visit_plan, weekly
from schedules import training as training_reminders
from schedules import visits as visit_watch
from schedules.runner import Scheduler

log = logging.getLogger(__name__)


@dataclass
class App:
    db: Database
    engine: Engine
    sender: Sender
    scheduler: Scheduler
    preparer: Preparer
    reader: Reader

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
        ready: Collection[str] | None = None,
        served: Collection[str] | None = None,
        web_url: str | None = None,
    ) -> App:
        """`ready`: the channels whose transports can deliver now (default all);
        `serve` enables each once its transport has started. `served`: the
        channels this deployment delivers on, so that nobody's message is
        routed to one it does not run (None: any, for tests and commands).
        `web_url`: the desk's public base, for the links `/web` sends."""
        load_all()  # a bad checklist file stops the start, not the first /check
        i18n.load_catalogs()  # and a bad catalog too, not the first reply
        clock = clock or SystemClock()
        media_dir = media_dir or media_beside(db_path)
        charts.configure(media_dir)
        db = await Database.open(db_path)
        # Printable documents go where photos go: `media/` beside the database by default.
        documents.configure(media_dir)
        sender = Sender(
            db,
            transports,
            clock,
            ready=ready,
            media_dir=media_dir,
        )
        # Files are made on read connections of their own (no pool: each
        # build opens one in its worker thread), never on the writer.
        reader = await open_reader(db, size=0)
        preparer = Preparer(
            db,
            reader,
            media_dir=media_dir,
            on_ready=sender.wake,
        )
        engine = Engine(
            db,
            build_router(web_url=web_url),
            clock,
            default_language=language,
            default_timezone=timezone,
            on_commit=sender.wake,
            # The settings' default: `media/` beside the database.
            media_dir=media_dir,
            served=served,
            on_documents=preparer.wake,
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
        scheduler.served = served
        sender.served = served
        return cls(
            db=db,
            engine=engine,
            sender=sender,
            scheduler=scheduler,
            preparer=preparer,
            reader=reader,
        )

    async def recover(self, channel: str | None = None) -> int:
        """Rows a dead process was delivering go back to the queue, so the
        sender decides on them again: one channel's (None: every channel's).
        Only the process that has just become that channel's sender may do it
        (`serve`, as it takes the role), before it sends."""
        released = await self.db.transaction(partial(outbox.release_interrupted, channel=channel))
        if released:
            log.warning(
                "rows left in flight by a stopped process requeued=%s channel=%s",
                released,
                channel or "*",
            )
        return int(released)

    def roles(self, *, polling: bool) -> list[Role]:
        """What one process at a time does with several processes on PostgreSQL
        (with SQLite, this process always does all of it): send on each channel,
        fire reminders, make files and, if `polling`, poll Telegram (the last is
        the channel's: `serve` gives it its hooks)."""
        target = self.db.path
        found = [
            Role(
                target,
                f"sender:{channel}",
                on_taken=partial(self._send_on, channel),
                on_lost=partial(_sync, partial(self.sender.give_up, channel)),
            )
            for channel in self.sender.transports
        ]
        found.append(
            Role(target, "scheduler", on_taken=self.scheduler.start, on_lost=self.scheduler.stop)
        )
        found.append(
            Role(
                target,
                "documents",
                on_taken=partial(_sync, self.preparer.take),
                on_lost=partial(_sync, self.preparer.give_up),
            )
        )
        if polling and is_postgresql(target):  # with SQLite this process always polls
            found.append(Role(target, "telegram:polling"))
        self.sender.held = set()
        self.preparer.active = False
        return found

    async def _send_on(self, channel: str) -> None:
        await self.recover(channel)
        self.sender.take(channel)

    def committed(self) -> None:
        """Something outside the engine (the desk) committed rows: the sender
        looks, and the documents worker for files to make."""
        self.sender.wake()
        self.preparer.wake()

    async def close(self) -> None:
        await self.preparer.stop()
        await self.reader.close()
        await self.db.close()


async def _sync(call: Callable[[], object]) -> None:
    call()


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


class StartError(Exception):
    """`frontline run` cannot start; the message is one line for the operator."""


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """`frontline run`: the configured channels (Telegram, WeCom or both), the
    sender and the scheduler, until `stop` is set; `started` is set once every
    channel receives. A channel that cannot be reached at start is retried
    while the others serve; its rows wait until its transport is up.

    On `stop`: no new events are taken, the events being processed commit,
    the deliveries in flight finish (bounded), then everything closes."""
    telegram = telegram_settings(settings)
    if telegram is None and not settings.wecom_enabled:
        raise ValueError("no channel is configured")
    async with contextlib.AsyncExitStack() as stack:
        if not is_postgresql(settings.db):  # several processes share a PostgreSQL database
            try:
                stack.enter_context(instance.only_instance(settings.db))
            except instance.AlreadyRunning as exc:
                raise StartError(str(exc)) from None
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
            ready=(),
            served=frozenset(transports),
            web_url=settings.web_url,
        )
        stack.push_async_callback(app.close)
        polling = telegram is not None and not telegram.webhook_url
        roles = app.roles(polling=polling)
        by_name = {role.name: role for role in roles}
        # Each channel's life: connect (retried while unreachable), then receive until stop.
        lives: dict[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = {}
        if application is not None and telegram is not None:
            channel = TelegramChannel(application, app.engine, app.db, settings.media_path, menu)
            lives["telegram"] = partial(
                _telegram_life, channel, telegram, app.sender, stop, by_name.get("telegram:polling")
            )
            # Its HTTP session serves the sender too: closed after the sender has stopped.
            stack.push_async_callback(channel.close)
        if wecom is not None:
            crypto = WeComCrypto(
                _secret(settings.wecom_token),
                _secret(settings.wecom_aes_key),
                settings.wecom_corp_id or "",
            )
            callbacks = WeComChannel(crypto, wecom, app.engine, app.db, settings.media_path, cards)
            lives[WECOM] = partial(_wecom_life, callbacks, settings.wecom_listen, app.sender, stop)
        if settings.web_url is not None:
            the_desk = await stack.enter_async_context(
                desk_for(
                    app.db,
                    settings,
                    clock,
                    wecom,
                    served=frozenset(transports),
                    on_commit=app.committed,
                )
            )
            lives["web"] = partial(_desk_life, the_desk, settings.web_listen, stop)
        sender = asyncio.create_task(app.sender.run(), name="sender")
        # The roles are taken (and given up, last) by their own tasks.
        holding = [asyncio.create_task(role.run(), name=f"role-{role.name}") for role in roles]
        if is_postgresql(settings.db):
            # Rows committed by any process (the desk's too) wake this one's sender.
            holding.append(
                asyncio.create_task(
                    listen(str(settings.db), outbox.NOTIFY_CHANNEL, app.committed), name="listen"
                )
            )
        # Its first look builds what a crash left 'preparing'.
        preparer = asyncio.create_task(app.preparer.run(), name="preparer")
        receiving = {name: asyncio.Event() for name in lives}
        tasks = [
            asyncio.create_task(life(receiving[name]), name=f"channel-{name}")
            for name, life in lives.items()
        ]
        try:
            # Started once each role has been tried (SQLite: all taken, reminders caught up).
            await asyncio.gather(*(role.tried.wait() for role in roles))
            announced = asyncio.create_task(_announce(receiving, started))
            stopping = asyncio.create_task(stop.wait())
            # A channel that ends before `stop` failed for good (a refused token).
            done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            announced.cancel()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if task is not stopping and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await app.scheduler.stop()
            await app.preparer.stop()
            preparer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await preparer
            await app.sender.stop(grace_seconds=SHUTDOWN_SECONDS)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            # Only now may another process take over what this one did.
            for task in holding:
                task.cancel()
            await asyncio.gather(*holding, return_exceptions=True)
            log.info("stopped")


# How long a stopping process gives the deliveries in flight.
SHUTDOWN_SECONDS = 10.0


async def _announce(receiving: Mapping[str, asyncio.Event], started: asyncio.Event | None) -> None:
    for event in receiving.values():
        await event.wait()
    log.info("running channels=%s", ",".join(receiving))
    if started is not None:
        started.set()


async def _telegram_life(
    channel: TelegramChannel,
    settings: TelegramSettings,
    sender: Sender,
    stop: asyncio.Event,
    polling: Role | None,
    receiving: asyncio.Event,
) -> None:
    """Webhook mode (`polling` None): every process takes the updates sent to
    it. Long polling: only the holder of `polling` asks Telegram (a second
    poller would get 409 Conflict); the others stand by, ready to take over."""
    try:
        if not await channel.connect(stop):
            return
        sender.enable("telegram")
        if polling is None:
            await channel.receive(settings, stop, receiving)
            return
        receiving.set()  # standing by counts as up: the holder receives
        while not stop.is_set():
            if not await _first(polling.held, stop):
                return
            log.info("telegram polling in this process")
            turn = asyncio.Event()  # this process's turn ends: stop, or the role lost
            ending = asyncio.create_task(_set_on_first(turn, polling.free, stop))
            try:
                await channel.receive(settings, turn, asyncio.Event())
            finally:
                ending.cancel()
    except InvalidToken:
        raise StartError(
            "bad setting FRONTLINE_TELEGRAM_TOKEN: Telegram refused the token"
        ) from None


async def _first(wanted: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for `wanted` or `stop`; True if `wanted` came (and `stop` did not)."""
    waits = [asyncio.ensure_future(wanted.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    return wanted.is_set() and not stop.is_set()


async def _set_on_first(event: asyncio.Event, *sources: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(source.wait()) for source in sources]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        event.set()
    finally:
        for waiting in waits:
            waiting.cancel()


async def _wecom_life(
    channel: WeComChannel,
    listen: str,
    sender: Sender,
    stop: asyncio.Event,
    receiving: asyncio.Event,
) -> None:
    await channel.start(listen)
    sender.enable(WECOM)
    sender.enable(ROBOT)
    receiving.set()
    try:
        await stop.wait()
    finally:
        await channel.stop()


def desk_for(
    db: Database,
    settings: Settings,
    clock: Clock | None = None,
    wecom: WeComAPI | None = None,
    *,
    served: Collection[str] | None = None,
    on_commit: Callable[[], None] | None = None,
) -> contextlib.AbstractAsyncContextManager[Desk]:
    """The desk (bot/web/) on this database, as the settings say; with the
    WeCom API, the app's menu can open it (网页授权). Beside the bot
    (`frontline run`): the channels it serves, and its sender to wake."""
    signin = None
    if wecom is not None and settings.wecom_corp_id and settings.wecom_agent_id:
        signin = WeComSignIn(settings.wecom_corp_id, settings.wecom_agent_id, wecom)
    return opened(
        db,
        web_url=settings.web_url or "",
        clock=clock or SystemClock(),
        default_timezone=settings.timezone,
        default_language=settings.language,
        media_dir=settings.media_path,
        drills_per_year=duty_book.drill_rules().min_planned,
        wecom_signin=signin,
        served=served,
        on_commit=on_commit,
        map_tiles=settings.map_tiles,
    )


async def _desk_life(
    the_desk: Desk, listen: str, stop: asyncio.Event, receiving: asyncio.Event
) -> None:
    try:
        await serve_desk(the_desk, listen, stop, started=receiving)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise StartError(
            f"bad setting FRONTLINE_WEB_LISTEN: cannot listen on {listen}: {exc}"
        ) from None


def wecom_api(settings: Settings) -> WeComAPI:
    return WeComAPI(
        settings.wecom_api_url,
        settings.wecom_corp_id or "",
        _secret(settings.wecom_secret),
        settings.wecom_agent_id or 0,
    )


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
