"""WeCom's way out: an outbox row becomes message/send calls of the app
(text in 2,048-byte parts, photos uploaded first, a question with choices as
a `button_interaction` template card), and WeCom's errors become the sender's
vocabulary. A group robot (a unit's alert group) is a second, simpler
transport.

WeCom silently drops more than 30 messages a minute or 1,000 an hour from one
app to one person, so each person's bucket stays under both; when alerts pile
up beyond that the sender merges them (`merges`)."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any

from bot.channels.wecom.api import WeComAPI, WeComError, delivery_error, split_utf8
from bot.media import is_document
from bot.model import Button, Outbound
from bot.sender import PermanentError

log = logging.getLogger(__name__)

CHANNEL = "wecom"
ROBOT_CHANNEL = "wecom_robot"
MAX_CARD_BUTTONS = 6
# A card's sub-title holds this many characters; a longer question goes first as text.
CARD_TEXT = 100
# Per person: a 13-message burst, then 0.27/s (972/h): at most 29.2 in any minute
# and 985 in any hour, under WeCom's 30/min and 1,000/h.
PERSON_RATE, PERSON_BURST = 0.27, 13.0
# Per robot: 20 a minute.
ROBOT_RATE, ROBOT_BURST = 19 / 60, 1.0

_serial = itertools.count(1)


def card_buttons(message: Outbound) -> list[Button]:
    """The buttons a card can carry: not the phone's own requests ('@location')."""
    return [b for row in message.buttons for b in row if not b.action.startswith("@")]


def phone_hints(message: Outbound) -> str:
    """What a '@location' button asks, said in words: WeCom has no such button."""
    hints = [b.label for row in message.buttons for b in row if b.action == "@location"]
    return "".join(f"\n（{label}：＋ → 📍）" for label in hints)


def numbered(buttons: list[Button]) -> str:
    return "\n".join(f"{n}. {b.label}" for n, b in enumerate(buttons, 1))


def template_card(text: str, buttons: list[Button], task_id: str) -> dict[str, Any]:
    title, _, rest = text.partition("\n")
    return {
        "card_type": "button_interaction",
        "main_title": {"title": title[:36] or "👇"},
        "sub_title_text": rest[:CARD_TEXT],
        "task_id": task_id,
        "button_list": [{"text": b.label[:24], "style": 1, "key": b.action} for b in buttons],
    }


class WeComTransport:
    """message/send of the self-built app. `cards` maps a card's task id to the
    response code of its latest press (the channel fills it in), so the card
    can be updated to show the answer."""

    name = CHANNEL
    per_second = 20.0
    merges = True
    # Updating a pressed card is not a message: WeCom's per-person limit does not count it.
    free_edits = True

    def __init__(self, api: WeComAPI, media_dir: Path, cards: dict[str, str]) -> None:
        self.api = api
        self.media_dir = media_dir
        self.cards = cards

    def limit(self, address: str | None) -> tuple[float, float]:
        return PERSON_RATE, PERSON_BURST

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None:
        if message.address is None:
            raise PermanentError("no WeCom user id")
        try:
            if replaces is not None:
                return await self._update(message, replaces)
            return await self._send(message, message.address)
        except WeComError as exc:
            raise delivery_error(exc) from exc

    async def _update(self, message: Outbound, task_id: str) -> str:
        """Show the answer on the card that was pressed (once per press)."""
        code = self.cards.pop(task_id, None)
        if code is not None:
            answer = message.text.rpartition("→ ")[2].strip() or "✔"
            await self.api.update_template_card(
                [message.address or ""], code, replace_name=answer[:24]
            )
        return task_id

    async def _send(self, message: Outbound, user: str) -> str:
        last = ""
        for path in message.attachments:
            if is_document(path):  # a printable PDF: a file to open, forward or print
                media_id = await self.api.upload_file(self.media_dir / path)
                last = (await self.api.send_file(user, media_id)).msgid
            else:
                media_id = await self.api.upload_image(self.media_dir / path)
                last = (await self.api.send_image(user, media_id)).msgid
        buttons = card_buttons(message)
        text = message.text + phone_hints(message)
        if len(buttons) > MAX_CARD_BUTTONS:
            # More choices than a card holds: numbered, answered by replying the number.
            text = f"{text}\n\n{numbered(buttons)}\n↩ 1–{len(buttons)}"
            buttons = []
        if buttons:
            title, _, rest = text.partition("\n")
            if len(title) > 36 or len(rest) > CARD_TEXT:
                for part in split_utf8(text):
                    await self.api.send_text(user, part)
                text = "👇"
            task_id = f"fl{message.id}x{message.attempts}x{next(_serial)}{int(time.time())}"
            await self.api.send_template_card(user, template_card(text, buttons, task_id))
            return task_id
        for part in split_utf8(text) if text else []:
            last = (await self.api.send_text(user, part)).msgid
        return last


class RobotTransport:
    """A unit's alert group: a WeCom group robot's webhook (address = its key)."""

    name = ROBOT_CHANNEL
    per_second = 20.0
    merges = True

    def __init__(self, api: WeComAPI) -> None:
        self.api = api

    def limit(self, address: str | None) -> tuple[float, float]:
        return ROBOT_RATE, ROBOT_BURST

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None:
        if not message.address:
            raise PermanentError("no robot key")
        try:
            for part in split_utf8(message.text):
                await self.api.robot_send(message.address, text=part)
        except WeComError as exc:
            raise delivery_error(exc) from exc
        return None
