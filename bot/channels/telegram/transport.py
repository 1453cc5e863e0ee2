"""Telegram's way out: turns an outbox row into Bot API calls through
python-telegram-bot, and Telegram's errors into the sender's vocabulary
(retry later, give up, the person blocked us). Plain text only: nothing a user
wrote is ever read as markup."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
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
from telegram.warnings import PTBDeprecationWarning

from bot.media import is_document
from bot.model import Outbound
from bot.sender import REMOTE, PermanentError, TransientError, Unreachable

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CAPTION = 1024

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup
# How Telegram refuses to edit a message that is no longer there to edit.
_GONE = ("message to edit not found", "message can't be edited")


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
    20 a minute per group (group chat ids are negative). Each rate stays a
    little under Telegram's: requests sent at the limit arrive a few
    milliseconds apart from how they left, and arriving early is a 429."""

    name = CHANNEL
    per_second = 29.0
    # Telegram keeps every file it was sent: a file id stands in for a lost copy.
    keeps_files = True

    def __init__(self, bot: Bot, media_dir: Path) -> None:
        self.bot = bot
        self.media_dir = media_dir
        # outbox id -> (calls that arrived, the last message) of a row cut short by a retry
        self._progress: dict[int, tuple[int, Message | None]] = {}

    def limit(self, address: str | None) -> tuple[float, float]:
        """(messages per second, burst) for one chat."""
        if address is not None and address.startswith("-"):
            return 16 / 60, 3  # a burst of 3 and 16 a minute: at most 19 in any minute
        return 0.95, 3

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
                "flood limit (429)", retry_after=_retry_after(exc), outage=False
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
            raise TransientError(f"network: {exc.message}", outage=True) from exc
        except TelegramError as exc:
            raise PermanentError(f"telegram: {exc.message}") from exc

    async def _send(self, chat: int, message: Outbound) -> str:
        steps = self._steps(chat, message)
        done, last = self._progress.pop(message.id, (0, None))
        try:
            for step in steps[done:]:
                last = await step()
                done += 1
        except TelegramError as exc:
            if done and _retryable(exc):
                # Telegram has no idempotency key: a retry sends only what has not arrived.
                self._progress[message.id] = (done, last)
            raise
        assert last is not None, "an outbox row always has text or a photo"
        return str(last.message_id)

    def _steps(self, chat: int, message: Outbound) -> list[Callable[[], Awaitable[Message]]]:
        """One Bot API call per photo or document and per part of the text, buttons on the last."""
        keyboard = markup(message)
        text = message.text
        steps: list[Callable[[], Awaitable[Message]]] = []
        for path in message.attachments:
            caption = text if text and _units(text) <= MAX_CAPTION else None
            send = self._document if is_document(path) else self._photo
            steps.append(partial(send, chat, path, caption, keyboard if caption else None))
            if caption:
                text = ""
        if text:
            parts = split_text(text)
            for index, part in enumerate(parts):
                last_part = index == len(parts) - 1
                steps.append(
                    partial(
                        self.bot.send_message,
                        chat,
                        part,
                        reply_markup=keyboard if last_part else None,
                    )
                )
        return steps

    async def _photo(
        self, chat: int, path: str, caption: str | None, keyboard: Markup | None
    ) -> Message:
        if path.startswith(REMOTE):  # Telegram's own copy of a file we no longer have
            return await self.bot.send_photo(
                chat, path.removeprefix(REMOTE), caption=caption, reply_markup=keyboard
            )
        with (self.media_dir / path).open("rb") as photo:
            return await self.bot.send_photo(chat, photo, caption=caption, reply_markup=keyboard)

    async def _document(
        self, chat: int, path: str, caption: str | None, keyboard: Markup | None
    ) -> Message:
        if path.startswith(REMOTE):
            return await self.bot.send_document(
                chat, path.removeprefix(REMOTE), caption=caption, reply_markup=keyboard
            )
        with (self.media_dir / path).open("rb") as document:
            return await self.bot.send_document(
                chat,
                document,
                caption=caption,
                reply_markup=keyboard,
                filename=Path(path).name,
            )

    async def _edit(self, chat: int, message_id: int, message: Outbound) -> str:
        """Rewrite an earlier message (a question showing its answer, or becoming
        the next question). One that is no longer there to edit (the person
        deleted it, say) is sent anew: what it now says must still arrive."""
        keyboard = markup(message)
        parts = split_text(message.text)
        try:
            await self.bot.edit_message_text(
                # A question's buttons belong to its end: keep that part of a text too long.
                parts[-1] if message.buttons else parts[0],
                chat_id=chat,
                message_id=message_id,
                reply_markup=keyboard if isinstance(keyboard, InlineKeyboardMarkup) else None,
            )
        except BadRequest as exc:
            refused = exc.message.lower()
            if "not modified" in refused:
                return str(message_id)
            if not any(gone in refused for gone in _GONE):
                raise
            log.info("edit refused chat=%s message=%s error=%s", chat, message_id, exc.message)
            return await self._send(chat, message)
        return str(message_id)


def _retry_after(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB warns that retry_after will become a timedelta; both are understood here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _retryable(exc: TelegramError) -> bool:
    """What the sender will try again: flood limits, timeouts, 5xx, no connection."""
    return isinstance(exc, RetryAfter | NetworkError) and not isinstance(exc, BadRequest)
