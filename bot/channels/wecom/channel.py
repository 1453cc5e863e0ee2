"""WeCom's way in: the encrypted callback endpoint of a self-built app.

`GET /wecom/callback` answers WeCom's URL verification with the decrypted
echostr. `POST /wecom/callback` checks the signature, decrypts, turns the
message into an Inbound and hands it to the engine, then answers an empty
200 (replies go out through the API, via the outbox). A wrong signature or a
wrong corp id is 403, a malformed body 400; in every case nothing is
processed. WeCom retries a callback it thinks failed: the engine drops the
repeat, keyed by MsgId for messages and by who + when + what for events."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.channels.wecom.api import WeComAPI, WeComError
from bot.channels.wecom.crypto import (
    CorpIdError,
    CryptoFormatError,
    SignatureError,
    WeComCrypto,
    parse_callback,
    parse_message,
)
from bot.channels.wecom.transport import CHANNEL, MAX_CARD_BUTTONS, card_buttons
from bot.engine import Engine
from bot.media import MediaError, NotAnImage, store_bytes
from bot.model import Inbound, InboundKind
from bot.numbers import parse_number
from bot.store import outbox
from bot.store.db import Database

log = logging.getLogger(__name__)

PATH = "/wecom/callback"
MAX_BODY = 64 * 1024  # a callback is a few hundred bytes of XML


class WeComChannel:
    def __init__(
        self,
        crypto: WeComCrypto,
        api: WeComAPI,
        engine: Engine,
        db: Database,
        media_dir: Path,
        cards: dict[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crypto = crypto
        self.api = api
        self.engine = engine
        self.db = db
        self.media_dir = media_dir
        self.cards = cards
        self._runner: web.AppRunner | None = None
        self.clock = clock

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get(PATH, self.verify)
        app.router.add_post(PATH, self.callback)
        return app

    async def start(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, int(port)).start()
        log.info("wecom callback listening on %s%s", listen, PATH)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP -------------------------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            echo = self.crypto.verify_url(
                query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
            )
        except KeyError:
            return web.Response(status=400)
        except (SignatureError, CorpIdError):
            log.warning("wecom url verification refused: bad signature or corp id")
            return web.Response(status=403)
        except CryptoFormatError:
            return web.Response(status=400)
        return web.Response(text=echo)

    async def callback(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            body = await request.read()
            envelope = parse_callback(body)
            xml = self.crypto.decrypt(
                query["msg_signature"], query["timestamp"], query["nonce"], envelope.encrypted
            )
            message = parse_message(xml)
        except (SignatureError, CorpIdError):
            log.warning("wecom callback refused: bad signature or corp id")
            return web.Response(status=403)
        except (KeyError, CryptoFormatError, web.HTTPRequestEntityTooLarge):
            return web.Response(status=400)
        inbound = await self.inbound(message)
        if inbound is not None:
            await self.engine.handle(inbound)
        return web.Response(text="")

    # -- what a callback means ----------------------------------------------------------
    async def inbound(self, message: dict[str, str]) -> Inbound | None:
        """The Inbound for a decrypted message; None for events we do not act on."""
        user = message.get("FromUserName", "")
        kind = message.get("MsgType", "")
        if not user:
            return None
        event_id = message.get("MsgId") or ":".join(
            message.get(field, "")
            for field in ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId")
        )
        if kind == "text":
            text = message.get("Content", "").strip()
            if text.startswith("/"):
                return Inbound(CHANNEL, user, event_id, InboundKind.COMMAND, text)
            chosen = await self._numbered_choice(user, text)
            if chosen is not None:
                return Inbound(CHANNEL, user, event_id, InboundKind.ACTION, chosen, {"ack": True})
            return Inbound(CHANNEL, user, event_id, InboundKind.TEXT, text)
        if kind == "image":
            path, data = await self._download(message.get("MediaId", ""))
            return Inbound(CHANNEL, user, event_id, InboundKind.PHOTO, path, data)
        if kind == "location":
            data = {"lat": message.get("Location_X", ""), "lon": message.get("Location_Y", "")}
            return Inbound(CHANNEL, user, event_id, InboundKind.LOCATION, "", data)
        if kind == "event":
            return self._event(user, event_id, message)
        return Inbound(CHANNEL, user, event_id, InboundKind.TEXT, "")  # voice, video ...: a hint

    def _event(self, user: str, event_id: str, message: dict[str, str]) -> Inbound | None:
        event = message.get("Event", "")
        key = message.get("EventKey", "")
        if event == "enter_agent":
            return Inbound(CHANNEL, user, event_id, InboundKind.COMMAND, "/help")
        if event == "click" and key:
            command = key if key.startswith("/") else f"/{key}"
            return Inbound(CHANNEL, user, event_id, InboundKind.COMMAND, command)
        if event == "template_card_event" and key:
            task_id = message.get("TaskId", "")
            code = message.get("ResponseCode", "")
            if task_id and code:
                self.cards[task_id] = code  # the card is updated with it to show the answer
            # A pressed card shows the answer; the next question comes as a new card,
            # paced as a message (the sender paces updating a card as free).
            data = {"message_id": task_id, "rewritable": False}
            return Inbound(CHANNEL, user, event_id, InboundKind.ACTION, key, data)
        return None

    async def _numbered_choice(self, user: str, text: str) -> str | None:
        """`3` in answer to a question with more choices than a card holds."""
        number = parse_number(text, low=1, high=99)
        if number is None:
            return None

        def latest(conn: sqlite3.Connection) -> Any:
            return outbox.latest_question(conn, CHANNEL, user)

        question = await self.db.read(latest)
        if question is None:
            return None
        choices = card_buttons(question)
        if len(choices) <= MAX_CARD_BUTTONS or number > len(choices):
            return None
        return choices[number - 1].action

    async def _download(self, media_id: str) -> tuple[str, dict[str, Any]]:
        """Fetch a photo into the media folder (by content hash)."""
        data: dict[str, Any] = {"file_id": media_id}
        try:
            content = await self.api.download_media(media_id)
            return store_bytes(self.media_dir, content, ".jpg", image=True), data
        except NotAnImage:
            return "", {**data, "not_image": True}
        except WeComError as exc:
            too_large = exc.errcode == -1003
            log.warning("wecom media download failed errcode=%s", exc.errcode)
            return "", {**data, "too_large" if too_large else "unavailable": True}
        except (MediaError, OSError) as exc:
            log.warning("wecom media store failed error=%s", exc)
            return "", {**data, "unavailable": True}
