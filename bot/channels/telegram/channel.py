"""Telegram's way in: python-telegram-bot receives updates (long polling or a
webhook with a secret token), this module turns each into an Inbound for the
engine, answers button presses so their spinner stops, downloads photos into
the media folder, and keeps each person's command menu in their language and
role. No handler is imported here; the menus come in through `Menus`."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels.telegram.request import AiohttpRequest
from bot.channels.telegram.transport import CHANNEL
from bot.engine import Engine, Outcome
from bot.i18n import t
from bot.media import MAX_BYTES, MediaError, store_file
from bot.model import Inbound, InboundKind, Role
from bot.store import people
from bot.store.db import Database

log = logging.getLogger(__name__)

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
    server, a proxy or a test server). Updates run side by side; the engine
    keeps each person's in order."""
    root = settings.api_url.rstrip("/")
    return (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .concurrent_updates(256)
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .build()
    )


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
    async def start(self, settings: TelegramSettings) -> None:
        """Initialise the bot, set the default menus, and start receiving."""
        await self.application.initialize()
        await self.set_default_menus()
        await self.application.start()
        updater = self.application.updater
        assert updater is not None
        if settings.webhook_url:
            host, _, port = settings.listen.rpartition(":")
            await updater.start_webhook(
                listen=host or "127.0.0.1",
                port=int(port),
                url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
                webhook_url=settings.webhook_url,
                secret_token=settings.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await updater.start_polling(
                poll_interval=0,
                timeout=settings.poll_timeout,
                allowed_updates=Update.ALL_TYPES,
            )

    async def stop(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        event = update.update_id if isinstance(update, Update) else "-"
        log.error("telegram update failed event=%s", event, exc_info=context.error)

    # -- updates -----------------------------------------------------------------------
    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inbound = await self.inbound(update)
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
                path = store_file(self.media_dir, Path(temporary))
            finally:
                Path(temporary).unlink(missing_ok=True)
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
