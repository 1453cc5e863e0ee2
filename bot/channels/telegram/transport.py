"""Telegram's way out: turns an outbox row into Bot API calls through
python-telegram-bot, and Telegram's errors into the sender's vocabulary
(retry later, give up, the person blocked us). Plain text only: nothing a user
wrote is ever read as markup."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.model import Outbound
from bot.sender import PermanentError, TransientError, Unreachable

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CAPTION = 1024

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a long text into messages Telegram accepts, at line breaks where
    possible. Telegram counts UTF-16 code units; so do we."""
    parts: list[str] = []
    rest = text
    while _units(rest) > limit:
        cut = _prefix_within(rest, limit)
        newline = rest.rfind("\n", 0, cut)
        if newline > cut // 2:
            cut = newline + 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return [part for part in parts if part] or [text]


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """The longest prefix length (in characters) that fits `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def markup(message: Outbound) -> Markup | None:
    """Inline buttons for answers; a one-tap reply keyboard for '@contact' and
    '@location', which only a reply keyboard can ask the phone for."""
    if not message.buttons:
        return None
    if any(b.action.startswith("@") for row in message.buttons for b in row):
        return ReplyKeyboardMarkup(
            [
                [
                    KeyboardButton(
                        b.label,
                        request_contact=b.action == "@contact",
                        request_location=b.action == "@location",
                    )
                    for b in row
                ]
                for row in message.buttons
            ],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.action) for b in row]
            for row in message.buttons
        ]
    )


class TelegramTransport:
    """Delivers outbox rows for the 'telegram' channel. Pace: about 30
    messages/s for the bot, one a second per private chat with short bursts,
    20 a minute per group (group chat ids are negative)."""

    name = CHANNEL
    per_second = 30.0

    def __init__(self, bot: Bot, media_dir: Path) -> None:
        self.bot = bot
        self.media_dir = media_dir

    def limit(self, address: str | None) -> tuple[float, float]:
        """(messages per second, burst) for one chat."""
        if address is not None and address.startswith("-"):
            return 20 / 60, 3
        return 1.0, 3

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None:
        if message.address is None:
            raise PermanentError("no chat id")
        chat = int(message.address)
        try:
            if replaces is not None:
                return await self._edit(chat, int(replaces), message)
            return await self._send(chat, message)
        except RetryAfter as exc:
            raise TransientError(
                "flood limit (429)", retry_after=_seconds(exc.retry_after)
            ) from exc
        except Forbidden as exc:
            raise Unreachable(f"403 {exc.message}") from exc
        except BadRequest as exc:
            # A 400 is our bug: keep what we asked for beside the answer, never retry.
            raise PermanentError(
                f"400 {exc.message}; chat={chat} text_chars={len(message.text)}"
                f" buttons={[[b.action for b in row] for row in message.buttons]}"
                f" attachments={list(message.attachments)} replaces={replaces}"
            ) from exc
        except NetworkError as exc:  # also TimedOut and 5xx answers
            raise TransientError(f"network: {exc.message}") from exc
        except TelegramError as exc:
            raise PermanentError(f"telegram: {exc.message}") from exc

    async def _send(self, chat: int, message: Outbound) -> str:
        keyboard = markup(message)
        text = message.text
        last: Message | None = None
        for path in message.attachments:
            caption = text if _units(text) <= MAX_CAPTION else None
            with (self.media_dir / path).open("rb") as photo:
                last = await self.bot.send_photo(
                    chat, photo, caption=caption, reply_markup=keyboard if caption else None
                )
            if caption:
                text = ""
        if text:
            parts = split_text(text)
            for index, part in enumerate(parts):
                last = await self.bot.send_message(
                    chat, part, reply_markup=keyboard if index == len(parts) - 1 else None
                )
        assert last is not None, "an outbox row always has text or a photo"
        return str(last.message_id)

    async def _edit(self, chat: int, message_id: int, message: Outbound) -> str:
        keyboard = markup(message)
        try:
            await self.bot.edit_message_text(
                split_text(message.text)[0],
                chat_id=chat,
                message_id=message_id,
                reply_markup=keyboard if isinstance(keyboard, InlineKeyboardMarkup) else None,
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise
        return str(message_id)


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
