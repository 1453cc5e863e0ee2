"""Telegram's way in. Updates are fetched by our own long-polling loop (or
received on our own webhook endpoint) and each is handed to the engine; the
offset moves past an update, or the webhook answers 200, only once the
engine has committed it, so an update is never acknowledged before it is
stored. An update python-telegram-bot cannot parse is skipped with one log
line. This module also answers button presses so their spinner stops,
downloads photos into the media folder, and keeps each person's command menu
in their language and role. No handler is imported here; the menus come in
through `Menus`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels.telegram.request import AiohttpRequest
from bot.channels.telegram.transport import CHANNEL
from bot.engine import Engine, Outcome
from bot.i18n import t
from bot.media import MAX_BYTES, MediaError, NotAnImage, store_file
from bot.model import Inbound, InboundKind, Role
from bot.store import people
from bot.store.db import Database

log = logging.getLogger(__name__)

# What the bot acts on; anything else (edits, polls, joins) is never fetched.
ALLOWED_UPDATES = ("message", "callback_query")
# Seconds between tries while Telegram cannot be reached: (first, most).
CONNECT_BACKOFF = (1.0, 60.0)
POLL_BACKOFF = (0.5, 30.0)
# How long a stopping webhook server waits for updates being processed.
SHUTDOWN_SECONDS = 10.0
MAX_WEBHOOK_BODY = 1024 * 1024  # an update is a few kilobytes of JSON

# What a person's command menu lists: (command, description) for their roles and language.
Menus = Callable[[frozenset[Role], str], list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str
    api_url: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    listen: str = "127.0.0.1:8443"
    poll_timeout: int = 30


def build_application(settings: TelegramSettings) -> Application[Any, Any, Any, Any, Any, Any]:
    """PTB's Application, pointed at `api_url` (Telegram, a self-hosted Bot API
    server, a proxy or a test server), without PTB's Updater: our channel
    fetches updates itself, so that it confirms them only after they commit."""
    root = settings.api_url.rstrip("/")
    return (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .concurrent_updates(256)
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .updater(None)
        .build()
    )


async def _get_updates(bot: Bot, offset: int | None, timeout: int) -> list[dict[str, Any]]:
    """getUpdates as raw JSON: PTB's `get_updates` parses the whole batch at
    once, so one update it cannot read would fail every batch after it."""
    result = await bot._post(  # the raw call behind Bot.get_updates
        "getUpdates",
        {"timeout": timeout, "offset": offset, "allowed_updates": ALLOWED_UPDATES},
        read_timeout=(bot._request[0].read_timeout or 5.0) + timeout,
    )
    return [
        raw for raw in result if isinstance(raw, dict) and isinstance(raw.get("update_id"), int)
    ]


def _sender_key(update: Update) -> str:
    user = update.effective_user
    return f"user:{user.id}" if user is not None else f"update:{update.update_id}"


def _describe(exc: BaseException) -> str:
    """An error for the log: its class and message, which never carry the token."""
    return f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"


def language_hint(code: str | None) -> str:
    return "en" if code and code.lower().startswith("en") else "zh-CN"


class TelegramChannel:
    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        engine: Engine,
        db: Database,
        media_dir: Path,
        menus: Menus,
    ) -> None:
        self.application = application
        self.engine = engine
        self.db = db
        self.media_dir = media_dir
        self.menus = menus
        application.add_handler(TypeHandler(Update, self.on_update))
        application.add_error_handler(self.on_error)

    # -- life cycle ------------------------------------------------------------------
    async def connect(self, stop: asyncio.Event) -> bool:
        """Initialise the bot (getMe) and set the default menus, retrying with
        backoff while Telegram cannot be reached; False if `stop` came first.
        A token Telegram refuses raises `InvalidToken`."""
        delay = CONNECT_BACKOFF[0]
        attempt = 0
        while not stop.is_set():
            attempt += 1
            try:
                await self.application.initialize()
                await self.set_default_menus()
                return True
            except InvalidToken:
                raise
            except (NetworkError, TelegramError) as exc:
                log.warning(
                    "telegram unreachable at start attempt=%s retry_in=%.0fs error=%s",
                    attempt,
                    delay,
                    _describe(exc),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(CONNECT_BACKOFF[1], delay * 2)
        return False

    async def receive(
        self, settings: TelegramSettings, stop: asyncio.Event, ready: asyncio.Event | None = None
    ) -> None:
        """Take updates until `stop` is set: from our webhook endpoint if one is
        configured, else by long polling. `ready` is set once Telegram knows
        where updates go (the webhook registered, or any webhook removed)."""
        ready = ready or asyncio.Event()
        if settings.webhook_url:
            await self._serve_webhook(settings, stop, ready)
        else:
            await self._poll(settings, stop, ready)

    async def close(self) -> None:
        await self.application.shutdown()
        # PTB shuts down only what it initialised fully; a refused token leaves
        # the HTTP sessions open, so close them here (a no-op if already closed).
        for request in self.application.bot._request:
            await request.shutdown()

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Updates dispatched through PTB's Application (benchmarks) that failed."""
        event = update.update_id if isinstance(update, Update) else "-"
        log.error("telegram update failed event=%s", event, exc_info=context.error)

    async def _poll(
        self, settings: TelegramSettings, stop: asyncio.Event, ready: asyncio.Event
    ) -> None:
        """Long polling with the offset held back until a batch is committed:
        after a crash or a busy store Telegram hands the batch over again and
        the engine drops what it already processed."""
        bot = self.application.bot
        await self._call_with_backoff(stop, "deleteWebhook", bot.delete_webhook)
        ready.set()
        offset: int | None = None
        delay = POLL_BACKOFF[0]
        while not stop.is_set():
            fetch = asyncio.ensure_future(_get_updates(bot, offset, settings.poll_timeout))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not fetch.done():  # stopped while waiting: nothing was handed to us
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await fetch
                return
            try:
                batch = fetch.result()
            except InvalidToken:
                raise
            except TelegramError as exc:
                log.warning(
                    "telegram getUpdates failed retry_in=%.1fs error=%s", delay, _describe(exc)
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(POLL_BACKOFF[1], delay * 2)
                continue
            delay = POLL_BACKOFF[0]
            if not batch:
                continue
            try:
                await self.process(batch)
            except Exception:  # the store failed: the batch comes again, deduplicated
                log.exception("telegram batch not committed; fetching it again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_BACKOFF[0])
                continue
            offset = max(int(raw["update_id"]) for raw in batch) + 1
        if offset is not None:
            # Confirm the last batch, so that a restart does not fetch it again.
            with contextlib.suppress(TelegramError):
                await _get_updates(bot, offset, 0)

    async def _serve_webhook(
        self, settings: TelegramSettings, stop: asyncio.Event, ready: asyncio.Event
    ) -> None:
        assert settings.webhook_url is not None
        path = urlsplit(settings.webhook_url).path or "/"
        app = web.Application(client_max_size=MAX_WEBHOOK_BODY)
        app.router.add_post(path, partial(self._webhook, settings.webhook_secret))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        host, _, port = settings.listen.rpartition(":")
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        try:
            await self._call_with_backoff(
                stop,
                "setWebhook",
                partial(
                    self.application.bot.set_webhook,
                    settings.webhook_url,
                    secret_token=settings.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                ),
            )
            log.info("telegram webhook listening on %s%s", settings.listen, path)
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    async def _webhook(self, secret: str | None, request: web.Request) -> web.Response:
        """One update from Telegram: 200 only once it is committed; a 500
        makes Telegram deliver it again."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        try:
            raw = await request.json()
        except (ValueError, web.HTTPRequestEntityTooLarge):
            return web.Response(status=400)
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            return web.Response(status=400)
        try:
            await self.process([raw])
        except Exception:
            log.exception("telegram update not committed event=%s", raw["update_id"])
            return web.Response(status=500)
        return web.Response(text="")

    async def _call_with_backoff(
        self, stop: asyncio.Event, what: str, call: Callable[[], Awaitable[Any]]
    ) -> None:
        delay = POLL_BACKOFF[0]
        while not stop.is_set():
            try:
                await call()
                return
            except InvalidToken:
                raise
            except TelegramError as exc:
                log.warning(
                    "telegram %s failed retry_in=%.1fs error=%s", what, delay, _describe(exc)
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(POLL_BACKOFF[1], delay * 2)

    async def process(self, batch: list[dict[str, Any]]) -> None:
        """Hand a batch of raw updates to the engine: one person's in order,
        different people's side by side. Returns once every update is
        committed; raises if the store could not commit one."""
        queues: dict[str, list[Update]] = {}
        for raw in batch:
            update = self.parse(raw)
            if update is not None:
                queues.setdefault(_sender_key(update), []).append(update)
        results = await asyncio.gather(
            *(self._in_order(updates) for updates in queues.values()), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]

    def parse(self, raw: dict[str, Any]) -> Update | None:
        """The update, or None (logged once, without its content) if it cannot be read."""
        try:
            return Update.de_json(raw, self.application.bot)
        except Exception as exc:
            log.warning(
                "telegram update skipped: cannot be parsed event=%s error=%s",
                raw.get("update_id"),
                type(exc).__name__,
            )
            return None

    async def _in_order(self, updates: list[Update]) -> None:
        for update in updates:
            await self.on_update(update, None)

    # -- updates -----------------------------------------------------------------------
    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE | None) -> None:
        try:
            inbound = await self.inbound(update)
        except Exception:  # an update shape we do not expect: skip it, never retry it forever
            log.warning("telegram update skipped: not understood event=%s", update.update_id)
            return
        if inbound is None:
            if update.callback_query:
                await self._answer_press(update, "")
            return
        outcome = await self.engine.handle(inbound)
        if update.callback_query:
            stale = outcome is Outcome.STALE
            text = t(inbound.data.get("language", "zh-CN"), "errors.stale_button") if stale else ""
            await self._answer_press(update, text)
        if inbound.kind in (InboundKind.COMMAND, InboundKind.CONTACT) and not inbound.data.get(
            "group"
        ):
            await self.sync_menu(inbound.user_id)

    async def _answer_press(self, update: Update, text: str) -> None:
        """Stop the button's spinner at once: this only makes sense in the moment,
        so it goes straight out, not through the outbox."""
        query = update.callback_query
        assert query is not None
        try:
            await query.answer(text or None)
        except TelegramError as exc:  # a press older than Telegram's answer window
            log.info("callback answer failed event=%s error=%s", update.update_id, exc)

    async def inbound(self, update: Update) -> Inbound | None:
        """The Inbound an update stands for; None for what the bot ignores."""
        user = update.effective_user
        if user is None or user.is_bot:
            return None
        base: dict[str, Any] = {"language": language_hint(user.language_code)}
        event = str(update.update_id)
        query = update.callback_query
        if query is not None:
            data = {**base, "ack": True}
            if query.message is not None:
                data["message_id"] = query.message.message_id
                data["chat"] = str(query.message.chat.id)
                if query.message.chat.type != ChatType.PRIVATE:
                    data["group"] = True
            return Inbound(CHANNEL, str(user.id), event, InboundKind.ACTION, query.data or "", data)
        message = update.message
        if message is None:
            return None  # edits, channel posts, joins: nothing to act on
        if message.chat.type != ChatType.PRIVATE:
            if not (message.text or "").startswith("/"):
                return None
            data = {
                **base,
                "group": True,
                "chat": str(message.chat.id),
                "private_link": f"https://t.me/{self.application.bot.username}",
            }
            return Inbound(
                CHANNEL, str(user.id), event, InboundKind.COMMAND, message.text or "", data
            )
        kind, text, extra = await self._content(message, user.id)
        return Inbound(CHANNEL, str(user.id), event, kind, text, {**base, **extra})

    async def _content(
        self, message: Message, user_id: int
    ) -> tuple[InboundKind, str, dict[str, Any]]:
        if message.contact is not None:
            contact = message.contact
            return (
                InboundKind.CONTACT,
                "",
                {
                    "phone": contact.phone_number,
                    # Only the sender's own number may sign them up.
                    "own": contact.user_id == user_id,
                    "name": message.from_user.full_name if message.from_user else "",
                },
            )
        if message.location is not None:
            location = message.location
            return (
                InboundKind.LOCATION,
                "",
                {"lat": location.latitude, "lon": location.longitude},
            )
        if message.photo:
            fitting = [p for p in message.photo if (p.file_size or 0) <= MAX_BYTES]
            if not fitting:
                return InboundKind.PHOTO, "", {"too_large": True}
            largest = max(fitting, key=lambda p: (p.width * p.height, p.file_size or 0))
            return await self._download(InboundKind.PHOTO, largest.file_id, ".jpg")
        if message.document is not None:
            document = message.document
            if (document.file_size or 0) > MAX_BYTES:
                return InboundKind.FILE, "", {"too_large": True}
            image = (document.mime_type or "").startswith("image/")
            suffix = Path(document.file_name or "").suffix[:10] or ".bin"
            return await self._download(
                InboundKind.PHOTO if image else InboundKind.FILE, document.file_id, suffix
            )
        text = message.text or message.caption or ""
        if text.startswith("/"):
            return InboundKind.COMMAND, text, {}
        return InboundKind.TEXT, text, {}

    async def _download(
        self, kind: InboundKind, file_id: str, suffix: str
    ) -> tuple[InboundKind, str, dict[str, Any]]:
        """Fetch a file into the media folder (by content hash); keep Telegram's id too."""
        try:
            remote = await self.application.bot.get_file(file_id)
            self.media_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(suffix=suffix, dir=self.media_dir)
            os.close(handle)
            try:
                await remote.download_to_drive(temporary)
                path = store_file(self.media_dir, Path(temporary), image=kind is InboundKind.PHOTO)
            finally:
                Path(temporary).unlink(missing_ok=True)
        except NotAnImage:
            return kind, "", {"not_image": True, "file_id": file_id}
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                return kind, "", {"too_large": True, "file_id": file_id}
            log.warning("file download refused file_id=%s error=%s", file_id, exc.message)
            return kind, "", {"unavailable": True, "file_id": file_id}
        except (TelegramError, MediaError, OSError) as exc:
            log.warning("file download failed file_id=%s error=%s", file_id, exc)
            return kind, "", {"unavailable": True, "file_id": file_id}
        return kind, path, {"file_id": file_id}

    # -- command menus -------------------------------------------------------------------
    async def set_default_menus(self) -> None:
        """What people see before they sign up or whose chat menu is not set yet."""
        bot = self.application.bot
        staff = frozenset({Role.STAFF})
        for code, language in (("zh", "zh-CN"), ("en", "en"), (None, "zh-CN")):
            commands = [BotCommand(c, d) for c, d in self.menus(staff, language)]
            await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=code)

    async def sync_menu(self, user_id: str) -> None:
        """Give a person the menu of their roles in their language, when it changed."""
        found = await self.db.read(lambda conn: people.identify(conn, CHANNEL, user_id))
        if found is None or not found.staff.active:
            return
        items = self.menus(found.staff.roles, found.staff.language)
        signature = found.staff.language + ":" + ",".join(command for command, _ in items)
        current = await self.db.read(lambda conn: people.menu_signature(conn, CHANNEL, user_id))
        if current == signature:
            return
        try:
            await self.application.bot.set_my_commands(
                [BotCommand(c, d) for c, d in items], scope=BotCommandScopeChat(int(user_id))
            )
        except TelegramError as exc:
            log.warning("menu not set staff=%s error=%s", found.staff.id, exc)
            return
        await self.db.transaction(
            lambda conn: people.set_menu_signature(conn, CHANNEL, user_id, signature)
        )
