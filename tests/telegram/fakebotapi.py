"""A fake Telegram Bot API server that the real python-telegram-bot client talks to in tests.

It serves tests only: it binds 127.0.0.1 on a free port, keeps everything in memory and never
talks to the internet. It answers like Telegram (status codes, descriptions, limits) so the
channel code meets the errors it will meet in production, and records what the bot did.

PTB appends the token to the base URLs: methods go to ``/bot<token>/<method>`` and downloads to
``/file/bot<token>/<file_path>``. ``base_url`` is ``root_url + "/bot"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import TracebackType
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

JSONDict = dict[str, Any]
ChatId = int | str

BOT_ID = 123  # the id in the default token, and the sender of callback_update's message
BOT_USERNAME = "frontline_test_bot"
BOT_FIRST_NAME = "Frontline Test"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER = 200
MAX_DOWNLOAD = 20 * 1024 * 1024
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BLOCKED = "Forbidden: bot was blocked by the user"

# Methods that create a message: only these count towards the flood limits.
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
EDIT_METHODS = frozenset({"editMessageText", "editMessageReplyMarkup"})
CHAT_METHODS = SEND_METHODS | EDIT_METHODS | {"sendChatAction"}

# PTB sends form fields as strings (objects JSON-encoded); JSON bodies carry real types.
_INT_PARAMS = frozenset(
    {"chat_id", "message_id", "offset", "limit", "cache_time", "user_id", "message_thread_id"}
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = frozenset(
    {"show_alert", "drop_pending_updates", "disable_notification", "protect_content"}
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
        "media",
    }
)
_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji"}
)
_CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note"}
    | {"upload_video_note"}
)
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ApiError(Exception):
    """An error answer: the HTTP status, Telegram's description and, for 429, retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class ApiCall:
    """One request: `params` with types restored, `raw` exactly as the form or JSON carried it."""

    method: str
    params: JSONDict
    raw: JSONDict


@dataclass
class MessageRecord:
    """A message the bot sent or edited, as accepted by the server."""

    method: str
    chat_id: ChatId
    message_id: int
    text: str | None
    caption: str | None
    parse_mode: str | None
    reply_markup: JSONDict | None
    params: JSONDict
    uploads: dict[str, bytes] = field(default_factory=dict)


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    params: JSONDict


@dataclass
class CommandsRecord:
    """One setMyCommands call; `scope` defaults to {"type": "default"}, language_code to ""."""

    commands: list[JSONDict]
    scope: JSONDict
    language_code: str


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    file_size: int


@dataclass
class _Fault:
    method: str
    status: int
    description: str
    retry_after: int | None
    times: int
    chat_id: ChatId | None


@dataclass
class _Upload:
    filename: str
    content: bytes
    content_type: str


class _FloodControl:
    """Telegram's documented send limits: a sliding 1 s window for the bot, a token bucket per
    private chat (sustained rate with a short burst) and a sliding 60 s window per group."""

    def __init__(
        self,
        clock: Callable[[], float],
        per_second: int,
        per_chat_per_second: float,
        per_group_per_minute: int,
        burst: int,
    ) -> None:
        self._clock = clock
        self._per_second = per_second
        self._chat_rate = per_chat_per_second
        self._per_group = per_group_per_minute
        self._burst = burst
        self._recent: deque[float] = deque()
        self._groups: dict[ChatId, deque[float]] = {}
        self._buckets: dict[ChatId, tuple[float, float]] = {}  # chat -> (tokens, at)

    def admit(self, chat_id: ChatId) -> int | None:
        """Count the send and return None, or return the seconds to wait without counting it."""
        now = self._clock()
        waits = [self._window_wait(self._recent, self._per_second, 1.0, now)]
        private = isinstance(chat_id, int) and chat_id > 0
        if private:
            tokens, at = self._buckets.get(chat_id, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - at) * self._chat_rate)
            waits.append(0.0 if tokens >= 1 else (1 - tokens) / self._chat_rate)
        else:
            group = self._groups.setdefault(chat_id, deque())
            waits.append(self._window_wait(group, self._per_group, 60.0, now))
        wait = max(waits)
        if wait > 0:
            return max(1, math.ceil(wait))
        self._recent.append(now)
        if private:
            self._buckets[chat_id] = (tokens - 1, now)
        else:
            self._groups[chat_id].append(now)
        return None

    @staticmethod
    def _window_wait(sends: deque[float], limit: int, window: float, now: float) -> float:
        while sends and sends[0] <= now - window:
            sends.popleft()
        if len(sends) < limit:
            return 0.0
        return sends[len(sends) - limit] + window - now


class _TelegramHTML(HTMLParser):
    """Checks parse_mode=HTML the way Telegram does (known tags, balanced) and collects the
    visible text, whose length is what Telegram limits."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise _entities_error(f'Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _entities_error(f'Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise _entities_error(f'Unmatched end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def _entities_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


def _visible_text(text: str, parse_mode: str | None) -> str:
    """The text Telegram would display; raises ApiError for HTML Telegram would reject.
    Markdown modes are not checked."""
    if (parse_mode or "").upper() != "HTML":
        return text
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
    return "".join(parser.visible)


Handler = Callable[[JSONDict, dict[str, _Upload]], Awaitable[Any]]


class FakeBotAPI:
    """The fake server. Start it with `async with FakeBotAPI() as api:` and point PTB at
    `api.base_url` / `api.base_file_url`. Call its helpers on the event loop that runs it."""

    def __init__(self, token: str = f"{BOT_ID}:TEST", clock: Callable[[], float] = time.monotonic):
        self.token = token
        self.clock = clock
        bot_id = token.split(":", 1)[0]
        self.bot_user: JSONDict = {
            "id": int(bot_id) if bot_id.isdigit() else BOT_ID,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }
        self.requests: list[ApiCall] = []
        self.sent: list[MessageRecord] = []
        self.edits: list[MessageRecord] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.commands: list[CommandsRecord] = []
        self.accepted_sends: list[float] = []
        self.rejected_429 = 0
        self.webhook_url = ""
        self.poll_conflicts = 0  # getUpdates ended by another poller (two bot instances)
        self.webhook_secret: str | None = None
        self._queue: list[JSONDict] = []
        self._last_update_id = 0
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._changed = asyncio.Event()
        self._messages: dict[tuple[ChatId, int], JSONDict] = {}
        self._last_message_id: dict[ChatId, int] = {}
        self._chats: dict[ChatId, JSONDict] = {}
        self._files: dict[str, _File] = {}
        self._file_ids = itertools.count(1)
        self._current_commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._answered: set[str] = set()
        self._faults: list[_Fault] = []
        self._server_errors = 0
        self._blocked: set[ChatId] = set()
        self._delay = 0.0
        self._flood: _FloodControl | None = None
        self._flood_edits = False
        # Called with each message the bot sends or edits, once the server has accepted it.
        self.listeners: list[Callable[[MessageRecord], None]] = []
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendChatAction": self._send_chat_action,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getMyCommands": self._get_my_commands,
                "getFile": self._get_file,
            }.items()
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on a free port (on the same one again after `stop`: an outage)."""
        self._closing = False
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._serve_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._serve_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port or 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing = True  # long polls answer [] at once instead of holding the shutdown
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root_url}/file/bot"

    # -- what the tests look at ------------------------------------------------------------

    @property
    def calls(self) -> list[str]:
        return [call.method for call in self.requests]

    def messages_to(self, chat_id: ChatId) -> list[MessageRecord]:
        return [record for record in self.sent if record.chat_id == chat_id]

    def message(self, chat_id: ChatId, message_id: int) -> JSONDict | None:
        """The message as it stands now, after any edits."""
        current = self._messages.get((chat_id, message_id))
        return dict(current) if current else None

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until `method` has been called `count` times in all."""
        await self._wait_until(lambda: self.calls.count(method) >= count, timeout)

    async def wait_for_sent(
        self, chat_id: ChatId | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[MessageRecord]:
        """Wait until `count` messages were sent (to `chat_id`, if given) and return them all."""

        def matching() -> list[MessageRecord]:
            return self.sent if chat_id is None else self.messages_to(chat_id)

        await self._wait_until(lambda: len(matching()) >= count, timeout)
        return matching()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `condition()` holds; it is checked whenever the server's state changes."""
        await self._wait_until(condition, timeout)

    # -- what the tests arrange ------------------------------------------------------------

    def next_update_id(self) -> int:
        self._last_update_id += 1
        return self._last_update_id

    def push_update(self, update: JSONDict) -> int:
        """Queue an update for getUpdates (update_id assigned if missing); returns its id."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self.next_update_id()
        self._last_update_id = max(self._last_update_id, update["update_id"])
        self._learn(update)
        self._queue.append(update)
        self._notify()
        return int(update["update_id"])

    def seed_message(self, chat_id: ChatId, text: str, reply_markup: JSONDict | None = None) -> int:
        """Pretend the bot sent this message earlier (without recording a send)."""
        content: JSONDict = {"text": text}
        if reply_markup:
            content["reply_markup"] = reply_markup
        return int(self._new_message(chat_id, content)["message_id"])

    def add_file(
        self, content: bytes, file_size: int | None = None, file_path: str | None = None
    ) -> str:
        """Register a downloadable file; `file_size` is the size Telegram declares (defaults to
        len(content)), so a large file can be faked without the bytes. Returns its file_id."""
        n = next(self._file_ids)
        file_id = f"FILE{n:04d}-{uuid.uuid4().hex[:8]}"
        size = len(content) if file_size is None else file_size
        path = file_path or f"documents/file_{n}.bin"
        self._files[file_id] = _File(file_id, f"U{n:04d}", path, content, size)
        return file_id

    def add_photo(
        self,
        content: bytes,
        sizes: tuple[tuple[int, int], ...] = ((90, 90), (320, 320), (1280, 1280)),
        file_size: int | None = None,
    ) -> list[tuple[str, int, int, int]]:
        """Register one file per PhotoSize, smallest first, for `photo_update`. The largest
        declares `file_size` (default len(content)); smaller ones scale by area."""
        largest = len(content) if file_size is None else file_size
        max_area = max(w * h for w, h in sizes)
        entries = []
        for width, height in sizes:
            declared = max(1, largest * width * height // max_area)
            file_id = self.add_file(content, declared, f"photos/file_{next(self._file_ids)}.jpg")
            entries.append((file_id, width, height, declared))
        return entries

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: ChatId | None = None,
    ) -> None:
        """The next `times` calls of `method` (to `chat_id`, if given) fail like this."""
        if status == 429 and retry_after is None:
            retry_after = 1  # Telegram always says how long to wait
        if description is None:
            description = _default_description(status, retry_after)
        self._faults.append(_Fault(method, status, description, retry_after, times, chat_id))

    def block(self, chat_id: ChatId) -> None:
        self._blocked.add(chat_id)

    def unblock(self, chat_id: ChatId) -> None:
        self._blocked.discard(chat_id)

    def server_errors(self, n: int) -> None:
        """The next `n` calls of any method answer 502 (a running poller consumes them too;
        use fail_next to target one method)."""
        self._server_errors = n

    def delay(self, seconds: float) -> None:
        """Hold every request this long before answering it (0 to stop)."""
        self._delay = seconds

    def enforce_limits(
        self,
        per_second: int = 30,
        per_chat_per_second: float = 1,
        per_group_per_minute: int = 20,
        burst: int = 3,
        *,
        count_edits: bool = False,
    ) -> None:
        """Answer 429 with retry_after to sends beyond Telegram's limits (see _FloodControl);
        with `count_edits`, edits count towards them too, as they do in practice."""
        self._flood = _FloodControl(
            self.clock, per_second, per_chat_per_second, per_group_per_minute, burst
        )
        self._flood_edits = count_edits

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        raw, uploads = await _read_params(request)
        params = _restore_types(raw)
        name = request.match_info["method"]
        method, handler = self._handlers.get(name.lower(), (name, None))
        self.requests.append(ApiCall(method, params, raw))
        self._notify()
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            if self._delay:
                await asyncio.sleep(self._delay)
            self._inject_faults(method, params)
            result = await handler(params, uploads)
        except ApiError as err:
            return _error(err)
        self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _serve_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        path = request.match_info["file_path"]
        for file in self._files.values():
            if file.file_path == path and file.file_size <= MAX_DOWNLOAD:
                return web.Response(body=file.content, content_type="application/octet-stream")
        return _error(ApiError(404, "Not Found"))

    def _inject_faults(self, method: str, params: JSONDict) -> None:
        if self._server_errors > 0:
            self._server_errors -= 1
            raise ApiError(502, "Bad Gateway")
        chat_id = params.get("chat_id")
        for fault in self._faults:
            if fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                raise ApiError(fault.status, fault.description, fault.retry_after)
        if method in CHAT_METHODS and chat_id in self._blocked:
            raise ApiError(403, BLOCKED)

    # -- methods ---------------------------------------------------------------------------

    async def _get_me(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _delete_webhook(self, p: JSONDict, u: dict[str, _Upload]) -> bool:
        self.webhook_url, self.webhook_secret = "", None
        if p.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _set_webhook(self, p: JSONDict, u: dict[str, _Upload]) -> bool:
        url, secret = p.get("url", ""), p.get("secret_token")
        if url and not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if secret is not None and not _SECRET.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url, self.webhook_secret = url, (secret if url else None)
        if p.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _get_webhook_info(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }

    async def _get_updates(self, p: JSONDict, u: dict[str, _Upload]) -> list[JSONDict]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._confirm(p.get("offset"))
        if p.get("allowed_updates"):
            self._allowed_updates = list(p["allowed_updates"])
        limit = min(max(int(p.get("limit", 100)), 1), 100)
        # A newer getUpdates terminates a waiting one, as Telegram does for two pollers.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(p.get("timeout", 0))
        while True:
            if generation != self._poll_generation:
                self.poll_conflicts += 1
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._deliverable(limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _send_message(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        chat_id = _require_chat(p)
        text = p.get("text")
        _check_text(text, p.get("parse_mode"))
        markup = _check_markup(p.get("reply_markup"))
        return self._deliver("sendMessage", chat_id, p, {"text": text}, markup, {})

    async def _send_photo(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        chat_id = _require_chat(p)
        _check_caption(p.get("caption"), p.get("parse_mode"))
        markup = _check_markup(p.get("reply_markup"))
        file, uploads = self._incoming_file(p, u, "photo")
        size = {"file_id": file.file_id, "file_unique_id": file.file_unique_id}
        photo = [{**size, "width": 1280, "height": 960, "file_size": file.file_size}]
        content = {"photo": photo, **_caption(p)}
        return self._deliver("sendPhoto", chat_id, p, content, markup, uploads)

    async def _send_document(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        chat_id = _require_chat(p)
        _check_caption(p.get("caption"), p.get("parse_mode"))
        markup = _check_markup(p.get("reply_markup"))
        file, uploads = self._incoming_file(p, u, "document")
        upload = u.get("document")
        document = {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_name": upload.filename if upload else file.file_path.rsplit("/", 1)[-1],
            "mime_type": upload.content_type if upload else "application/octet-stream",
            "file_size": file.file_size,
        }
        content = {"document": document, **_caption(p)}
        return self._deliver("sendDocument", chat_id, p, content, markup, uploads)

    async def _send_chat_action(self, p: JSONDict, u: dict[str, _Upload]) -> bool:
        _require_chat(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _edit_message_text(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        _, current = self._message_to_edit(p)
        if "text" not in current:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = p.get("text")
        _check_text(text, p.get("parse_mode"))
        markup = _check_markup(p.get("reply_markup"))
        if text == current["text"] and markup == current.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        return self._edit("editMessageText", current, p, {"text": text}, markup)

    async def _edit_message_reply_markup(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        _, current = self._message_to_edit(p)
        markup = _check_markup(p.get("reply_markup"))
        if markup == current.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        return self._edit("editMessageReplyMarkup", current, p, {}, markup)

    async def _answer_callback_query(self, p: JSONDict, u: dict[str, _Upload]) -> bool:
        query_id = str(p.get("callback_query_id", ""))
        if not query_id or query_id in self._answered:
            raise ApiError(400, QUERY_INVALID)
        text = p.get("text")
        if text and len(text) > MAX_CALLBACK_ANSWER:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._answered.add(query_id)
        self.callback_answers.append(
            CallbackAnswer(query_id, text, bool(p.get("show_alert", False)), p)
        )
        return True

    async def _set_my_commands(self, p: JSONDict, u: dict[str, _Upload]) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        scope, language = _commands_key(p)
        self.commands.append(CommandsRecord(commands, scope, language))
        self._current_commands[(json.dumps(scope, sort_keys=True), language)] = commands
        return True

    async def _delete_my_commands(self, p: JSONDict, u: dict[str, _Upload]) -> bool:
        scope, language = _commands_key(p)
        self._current_commands.pop((json.dumps(scope, sort_keys=True), language), None)
        return True

    async def _get_my_commands(self, p: JSONDict, u: dict[str, _Upload]) -> list[JSONDict]:
        scope, language = _commands_key(p)
        return self._current_commands.get((json.dumps(scope, sort_keys=True), language), [])

    async def _get_file(self, p: JSONDict, u: dict[str, _Upload]) -> JSONDict:
        file = self._files.get(str(p.get("file_id", "")))
        if file is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if file.file_size > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
            "file_path": file.file_path,
        }

    # -- state -----------------------------------------------------------------------------

    def _deliver(
        self,
        method: str,
        chat_id: ChatId,
        p: JSONDict,
        content: JSONDict,
        markup: JSONDict | None,
        uploads: dict[str, bytes],
    ) -> JSONDict:
        self._admit(chat_id)
        if markup and "inline_keyboard" in markup:
            content = {**content, "reply_markup": markup}  # Telegram echoes inline keyboards only
        message = self._new_message(chat_id, content)
        record = _record(method, chat_id, message["message_id"], p, markup, uploads)
        self.sent.append(record)
        self._tell(record)
        return message

    def _admit(self, chat_id: ChatId) -> None:
        if self._flood is not None:
            retry_after = self._flood.admit(chat_id)
            if retry_after is not None:
                self.rejected_429 += 1
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
            self.accepted_sends.append(self.clock())

    def _tell(self, record: MessageRecord) -> None:
        for listener in self.listeners:
            listener(record)

    def _edit(
        self,
        method: str,
        current: JSONDict,
        p: JSONDict,
        content: JSONDict,
        markup: JSONDict | None,
    ) -> JSONDict:
        chat_id, message_id = current["chat"]["id"], current["message_id"]
        if self._flood_edits:
            self._admit(chat_id)
        current.update(content, edit_date=int(time.time()))
        current.pop("reply_markup", None)
        if markup:
            current["reply_markup"] = markup
        record = _record(method, chat_id, message_id, p, markup, {})
        self.edits.append(record)
        self._tell(record)
        return dict(current)

    def _message_to_edit(self, p: JSONDict) -> tuple[ChatId, JSONDict]:
        chat_id = _require_chat(p)
        current = self._messages.get((chat_id, p.get("message_id", 0)))
        if current is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat_id, current

    def _new_message(self, chat_id: ChatId, content: JSONDict) -> JSONDict:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": self._chats.get(chat_id) or _chat(chat_id),
            "date": int(time.time()),
            **content,
        }
        self._messages[(chat_id, message_id)] = message
        return dict(message)

    def _incoming_file(
        self, p: JSONDict, u: dict[str, _Upload], name: str
    ) -> tuple[_File, dict[str, bytes]]:
        if name in u:
            upload = u[name]
            file_id = self.add_file(upload.content)
            return self._files[file_id], {name: upload.content}
        reference = p.get(name)
        if not reference:
            raise ApiError(400, f"Bad Request: there is no {name} in the request")
        if reference in self._files:
            return self._files[reference], {}
        if str(reference).startswith(("http://", "https://")):
            return self._files[self.add_file(b"", 1024)], {}
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _learn(self, update: JSONDict) -> None:
        """Remember chats, and the bot message under a callback query, which must exist."""
        for kind in ("message", "edited_message", "channel_post"):
            if kind in update:
                chat = update[kind]["chat"]
                self._chats.setdefault(chat["id"], chat)
        query = update.get("callback_query")
        if query and "message" in query:
            message = query["message"]
            chat_id, message_id = message["chat"]["id"], message["message_id"]
            self._chats.setdefault(chat_id, message["chat"])
            self._messages.setdefault((chat_id, message_id), dict(message))
            self._last_message_id[chat_id] = max(self._last_message_id.get(chat_id, 0), message_id)

    def _confirm(self, offset: int | None) -> None:
        if not offset:
            return
        if offset < 0:
            self._queue = self._queue[offset:]
        else:
            self._queue = [update for update in self._queue if update["update_id"] >= offset]

    def _deliverable(self, limit: int) -> list[JSONDict]:
        allowed = self._allowed_updates
        batch = [u for u in self._queue if allowed is None or _update_kind(u) in allowed]
        return batch[:limit]

    def _notify(self) -> None:
        """Wake everyone waiting for a change (long polls, wait_for_*)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await self._changed.wait()


# -- request parsing and checks ------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[JSONDict, dict[str, _Upload]]:
    raw: JSONDict = dict(request.query)
    uploads: dict[str, _Upload] = {}
    if not request.can_read_body:
        return raw, uploads
    if request.content_type == "application/json":
        raw.update(await request.json())
        return raw, uploads
    form = await request.post()  # x-www-form-urlencoded, or multipart/form-data for uploads
    for key, value in form.items():
        if isinstance(value, web.FileField):
            uploads[key] = _Upload(value.filename, value.file.read(), value.content_type)
        else:
            raw[key] = value
    return raw, uploads


def _restore_types(raw: JSONDict) -> JSONDict:
    params: JSONDict = {}
    for key, value in raw.items():
        if isinstance(value, str) and value:
            with contextlib.suppress(ValueError):
                if key in _INT_PARAMS:
                    value = int(value)
                elif key in _FLOAT_PARAMS:
                    value = float(value)
                elif key in _BOOL_PARAMS:
                    value = value.lower() == "true"
                elif key in _JSON_PARAMS:
                    value = json.loads(value)
        params[key] = value
    return params


def _require_chat(p: JSONDict) -> ChatId:
    chat_id = p.get("chat_id")
    if chat_id in (None, ""):
        raise ApiError(400, "Bad Request: chat_id is empty")
    return chat_id  # type: ignore[no-any-return]


def _check_text(text: Any, parse_mode: str | None) -> None:
    visible = _visible_text(text, parse_mode) if isinstance(text, str) else ""
    if not visible.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(visible) > MAX_TEXT:
        raise ApiError(400, "Bad Request: message is too long")


def _check_caption(caption: Any, parse_mode: str | None) -> None:
    if isinstance(caption, str) and len(_visible_text(caption, parse_mode)) > MAX_CAPTION:
        raise ApiError(400, "Bad Request: message caption is too long")


def _check_markup(markup: Any) -> JSONDict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _caption(p: JSONDict) -> JSONDict:
    return {"caption": p["caption"]} if p.get("caption") else {}


def _commands_key(p: JSONDict) -> tuple[JSONDict, str]:
    return p.get("scope") or {"type": "default"}, str(p.get("language_code") or "")


def _record(
    method: str,
    chat_id: ChatId,
    message_id: int,
    p: JSONDict,
    markup: JSONDict | None,
    uploads: dict[str, bytes],
) -> MessageRecord:
    return MessageRecord(
        method=method,
        chat_id=chat_id,
        message_id=message_id,
        text=p.get("text"),
        caption=p.get("caption"),
        parse_mode=p.get("parse_mode"),
        reply_markup=markup,
        params=p,
        uploads=uploads,
    )


def _update_kind(update: JSONDict) -> str:
    return next(key for key in update if key != "update_id")


def _default_description(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    if status == 403:
        return BLOCKED
    if status == 400:
        return "Bad Request"
    return "Internal Server Error" if status == 500 else "Bad Gateway"


def _error(err: ApiError) -> web.Response:
    return web.json_response(err.body(), status=err.status)


# -- update builders -----------------------------------------------------------------------

# Incoming message ids start high so they never collide with the bot's own (from 1 per chat).
_incoming_message_ids = itertools.count(1_000_000)


def _chat(chat_id: ChatId, first_name: str = "Test") -> JSONDict:
    if isinstance(chat_id, int) and chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": first_name}
    supergroup = isinstance(chat_id, int) and chat_id <= -1_000_000_000_000
    return {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": "Test group"}


def _user(user_id: int, first_name: str, language_code: str) -> JSONDict:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": language_code,
    }


def _message_update(
    user_id: int,
    content: JSONDict,
    *,
    chat_id: ChatId | None = None,
    chat_type: str | None = None,
    first_name: str = "Test",
    language_code: str = "zh-hans",
    message_id: int | None = None,
    update_id: int | None = None,
) -> JSONDict:
    chat = _chat(user_id if chat_id is None else chat_id, first_name)
    if chat_type:
        chat["type"] = chat_type
    message = {
        "message_id": next(_incoming_message_ids) if message_id is None else message_id,
        "from": _user(user_id, first_name, language_code),
        "chat": chat,
        "date": int(time.time()),
        **content,
    }
    update: JSONDict = {"message": message}
    if update_id is not None:
        update["update_id"] = update_id
    return update


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def text_update(
    user_id: int,
    text: str,
    chat_id: ChatId | None = None,
    chat_type: str = "private",
    first_name: str = "Test",
    language_code: str = "zh-hans",
    *,
    message_id: int | None = None,
    update_id: int | None = None,
) -> JSONDict:
    """A text message; a leading "/command" gets the bot_command entity CommandHandler needs."""
    content: JSONDict = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
    return _message_update(
        user_id,
        content,
        chat_id=chat_id,
        chat_type=None if chat_type == "private" else chat_type,  # else inferred from the id
        first_name=first_name,
        language_code=language_code,
        message_id=message_id,
        update_id=update_id,
    )


def group_text_update(
    user_id: int, group_chat_id: int, text: str, *, update_id: int | None = None
) -> JSONDict:
    """A text in a group (a supergroup if the id looks like -100…)."""
    return text_update(user_id, text, chat_id=group_chat_id, update_id=update_id)


def contact_update(
    user_id: int,
    phone: str,
    contact_user_id: int | None = None,
    *,
    first_name: str = "Test",
    update_id: int | None = None,
) -> JSONDict:
    """A shared contact; pass contact_user_id=user_id for the user's own number (what a
    request_contact button sends)."""
    contact: JSONDict = {"phone_number": phone, "first_name": first_name}
    if contact_user_id is not None:
        contact["user_id"] = contact_user_id
    return _message_update(
        user_id, {"contact": contact}, first_name=first_name, update_id=update_id
    )


def photo_update(
    user_id: int,
    file_ids_and_sizes: list[tuple[str, int, int, int]],
    caption: str | None = None,
    *,
    chat_id: ChatId | None = None,
    update_id: int | None = None,
) -> JSONDict:
    """A photo with one PhotoSize per (file_id, width, height, file_size), smallest first."""
    photo = [
        {
            "file_id": file_id,
            "file_unique_id": f"U{file_id}"[:32],
            "width": width,
            "height": height,
            "file_size": size,
        }
        for file_id, width, height, size in file_ids_and_sizes
    ]
    content: JSONDict = {"photo": photo}
    if caption:
        content["caption"] = caption
    return _message_update(user_id, content, chat_id=chat_id, update_id=update_id)


def document_update(
    user_id: int,
    file_id: str,
    file_name: str = "report.pdf",
    mime_type: str = "application/pdf",
    file_size: int = 1024,
    caption: str | None = None,
    *,
    chat_id: ChatId | None = None,
    update_id: int | None = None,
) -> JSONDict:
    document = {
        "file_id": file_id,
        "file_unique_id": f"U{file_id}"[:32],
        "file_name": file_name,
        "mime_type": mime_type,
        "file_size": file_size,
    }
    content: JSONDict = {"document": document}
    if caption:
        content["caption"] = caption
    return _message_update(user_id, content, chat_id=chat_id, update_id=update_id)


def location_update(
    user_id: int, lat: float, lon: float, *, update_id: int | None = None
) -> JSONDict:
    return _message_update(
        user_id, {"location": {"latitude": lat, "longitude": lon}}, update_id=update_id
    )


def callback_update(
    user_id: int,
    data: str,
    message_id: int,
    chat_id: ChatId | None = None,
    message_text: str = "...",
    *,
    reply_markup: JSONDict | None = None,
    first_name: str = "Test",
    language_code: str = "zh-hans",
    update_id: int | None = None,
) -> JSONDict:
    """A button press on the bot's message `message_id`. Pushing it makes that message exist
    in the fake (a callback can only come from a real message), so the bot can edit it."""
    chat = _chat(user_id if chat_id is None else chat_id, first_name)
    message: JSONDict = {
        "message_id": message_id,
        "from": {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        },
        "chat": chat,
        "date": int(time.time()),
        "text": message_text,
    }
    if reply_markup:
        message["reply_markup"] = reply_markup
    query = {
        "id": uuid.uuid4().hex,
        "from": _user(user_id, first_name, language_code),
        "chat_instance": f"ci{chat['id']}",
        "data": data,
        "message": message,
    }
    update: JSONDict = {"callback_query": query}
    if update_id is not None:
        update["update_id"] = update_id
    return update


async def post_webhook(url: str, update: JSONDict, secret: str | None = None) -> tuple[int, str]:
    """POST an update to a webhook the way Telegram does; returns (status, body).
    The update must carry an update_id (use `update_id=` or api.next_update_id())."""
    if "update_id" not in update:
        raise ValueError("a webhook update needs an update_id")
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    async with (
        ClientSession(timeout=ClientTimeout(total=10)) as session,
        session.post(url, json=update, headers=headers) as response,
    ):
        return response.status, await response.text()
