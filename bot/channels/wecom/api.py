"""WeCom's server API (qyapi.weixin.qq.com) on aiohttp: the access token,
messages and template cards, media, the directory and group robots. It speaks
WeCom and nothing more: what to send, to whom and when belongs to the channel
and the sender. Errors never carry a URL: it holds the token or the secret."""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bot.sender import PermanentError, TransientError, Unreachable

log = logging.getLogger(__name__)

BASE_URL = "https://qyapi.weixin.qq.com"
MAX_TEXT_BYTES = 2048  # text and markdown content of an application message
MAX_ROBOT_MARKDOWN_BYTES = 4096
MAX_DOWNLOAD = 20 * 1024 * 1024
# What media/upload accepts, by type.
MAX_UPLOAD = {
    "image": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "video": 10 * 1024 * 1024,
    "file": 20 * 1024 * 1024,
}
# A token is renewed this long before WeCom says it expires: clocks differ, and a
# token that dies in flight costs a failed call and a retry.
TOKEN_MARGIN = 300.0

# WeCom's errcodes that the client acts on.
SYSTEM_BUSY = -1
INVALID_TOKEN = 40014
TOKEN_EXPIRED = 42001
FREQUENCY_LIMIT = 45009
CONCURRENCY_LIMIT = 45033
NO_VALID_RECIPIENT = 81013
# Our own codes, for answers WeCom did not give (never used by WeCom, whose are >= -1).
NO_ANSWER = -1001  # connection error, timeout or an HTTP error status
BAD_ANSWER = -1002  # a 200 whose body is not the JSON WeCom sends
TOO_LARGE = -1003  # media over the size we accept

RETRYABLE = frozenset({SYSTEM_BUSY, FREQUENCY_LIMIT, CONCURRENCY_LIMIT})
UNREACHABLE = frozenset({NO_VALID_RECIPIENT})
TOKEN_ERRORS = frozenset({INVALID_TOKEN, TOKEN_EXPIRED})

JSONDict = dict[str, Any]
T = TypeVar("T")


class WeComError(Exception):
    """An errcode from WeCom (or one of ours, below -1000 for trouble before an answer)."""

    def __init__(self, errcode: int, errmsg: str, *, http_status: int | None = None) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status

    @property
    def retryable(self) -> bool:
        """Busy, a rate limit, a 5xx, no connection or a timeout: later may work."""
        if self.errcode == NO_ANSWER:
            status = self.http_status
            return status is None or status == 429 or status >= 500
        return self.errcode in RETRYABLE

    @property
    def unreachable(self) -> bool:
        """WeCom will not deliver to this recipient (left, disabled, not visible to the app)."""
        return self.errcode in UNREACHABLE


def delivery_error(exc: WeComError) -> TransientError | PermanentError:
    """The sender's reading of a WeCom error: retry later, give up, or the
    recipient is unreachable. Use as `raise delivery_error(exc) from exc`."""
    reason = f"wecom {exc}"
    if exc.unreachable:
        return Unreachable(reason)
    if exc.retryable:
        # 45009 is a per-minute quota: waiting out the minute beats backing off blindly.
        return TransientError(reason, retry_after=60.0 if exc.errcode == FREQUENCY_LIMIT else None)
    return PermanentError(reason)


@dataclass(frozen=True, slots=True)
class Sent:
    """What message/send answered. `response_code` comes with interactive
    template cards and is what update_template_card needs; `invalid_users` are
    recipients WeCom did not deliver to (unknown, or without a licence)."""

    msgid: str
    response_code: str | None = None
    invalid_users: tuple[str, ...] = ()


class Department(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str = ""
    parentid: int = 0
    order: int = 0


class Member(BaseModel):
    """A directory member. `mobile` is absent for applications created after
    June 2022, which no longer see it; `status` 1 is active, 2 disabled,
    4 not yet activated, 5 left."""

    model_config = ConfigDict(frozen=True)

    userid: str
    name: str = ""
    department: tuple[int, ...] = ()
    mobile: str | None = None
    status: int = 1


_Departments = TypeAdapter(list[Department])
_Members = TypeAdapter(list[Member])


class _Token(BaseModel):
    access_token: str = Field(min_length=1)
    expires_in: float = Field(gt=0)


class WeComAPI:
    """One application (corp id, its secret, its agent id) talking to WeCom.
    The access token is cached and shared: one gettoken per expiry, however many
    callers ask at once. Use `async with WeComAPI(...) as api:` or call `close()`."""

    def __init__(
        self,
        base_url: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        *,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._session_factory = session_factory or _default_session
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._clock = clock
        self._token: str | None = None
        self._token_until = 0.0
        self._refreshing: asyncio.Task[str] | None = None

    async def __aenter__(self) -> WeComAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- the access token --------------------------------------------------------------------

    async def access_token(self) -> str:
        """The cached token, or a fresh one when it is (nearly) expired."""
        token = self._token
        if token is not None and self._clock() < self._token_until:
            return token
        return await self._refresh(stale=token)

    async def _refresh(self, stale: str | None) -> str:
        """A token other than `stale`. Callers that arrive while a refresh runs
        await that refresh (and share its failure) rather than start their own."""
        if self._token is not None and self._token != stale and self._clock() < self._token_until:
            return self._token
        task = self._refreshing
        if task is None:
            task = self._refreshing = asyncio.create_task(self._fetch_token())
            task.add_done_callback(_consume_exception)
        # Shielded: one caller giving up must not cancel the refresh the others await.
        return await asyncio.shield(task)

    async def _fetch_token(self) -> str:
        try:
            answer = await self._request(
                "GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}
            )
            try:
                token = _Token.model_validate(answer)
            except ValidationError as exc:
                raise WeComError(BAD_ANSWER, "gettoken answer has no token") from exc
            self._token = token.access_token
            lifetime = token.expires_in
            self._token_until = self._clock() + max(lifetime - TOKEN_MARGIN, lifetime / 2)
            log.info("wecom token refreshed expires_in=%s", int(lifetime))
            return token.access_token
        finally:
            self._refreshing = None

    async def _with_token(self, call: Callable[[str], Awaitable[T]]) -> T:
        """`call(token)`; when WeCom says the token is invalid or expired, once
        more with a fresh one."""
        token = await self.access_token()
        try:
            return await call(token)
        except WeComError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("wecom token refused errcode=%s; refreshing", exc.errcode)
        return await call(await self._refresh(stale=token))

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        json_body: JSONDict | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> JSONDict:
        async def call(token: str) -> JSONDict:
            query = {**(params or {}), "access_token": token}
            return await self._request(method, path, query, json_body=json_body, form=form)

        return await self._with_token(call)

    # -- messages --------------------------------------------------------------------------

    async def send(self, touser: str | Sequence[str], msgtype: str, content: JSONDict) -> Sent:
        """message/send of one message of `msgtype` to one or more user ids."""
        body: JSONDict = {
            "touser": _ids(touser),
            "msgtype": msgtype,
            "agentid": self.agent_id,
            msgtype: content,
        }
        answer = await self._call("POST", "/cgi-bin/message/send", json_body=body)
        code = answer.get("response_code")
        return Sent(
            msgid=str(answer.get("msgid") or ""),
            response_code=str(code) if code else None,
            invalid_users=_split_ids(answer.get("invaliduser"))
            + _split_ids(answer.get("unlicenseduser")),
        )

    async def send_text(self, touser: str | Sequence[str], content: str) -> Sent:
        """Plain text, at most MAX_TEXT_BYTES of UTF-8 (see split_utf8)."""
        return await self.send(touser, "text", {"content": content})

    async def send_markdown(self, touser: str | Sequence[str], content: str) -> Sent:
        """WeCom's markdown subset, at most MAX_TEXT_BYTES of UTF-8."""
        return await self.send(touser, "markdown", {"content": content})

    async def send_image(self, touser: str | Sequence[str], media_id: str) -> Sent:
        return await self.send(touser, "image", {"media_id": media_id})

    async def send_file(self, touser: str | Sequence[str], media_id: str) -> Sent:
        return await self.send(touser, "file", {"media_id": media_id})

    async def send_template_card(self, touser: str | Sequence[str], card: JSONDict) -> Sent:
        """A template card (`card` is the template_card object: card_type, main_title,
        button_list, task_id ...). Interactive cards answer with a response_code."""
        return await self.send(touser, "template_card", card)

    async def update_template_card(
        self,
        userids: Sequence[str],
        response_code: str,
        *,
        replace_name: str | None = None,
        card: JSONDict | None = None,
    ) -> None:
        """Change a card already sent: grey its buttons out under `replace_name`,
        or replace it with `card`. A response_code works once."""
        body: JSONDict = {
            "userids": list(userids),
            "agentid": self.agent_id,
            "response_code": response_code,
        }
        if card is not None:
            body["template_card"] = card
        elif replace_name is not None:
            body["button"] = {"replace_name": replace_name}
        else:
            raise ValueError("update_template_card needs replace_name or card")
        await self._call("POST", "/cgi-bin/message/update_template_card", json_body=body)

    async def recall(self, msgid: str) -> None:
        """Withdraw a message sent in the last 24 hours."""
        await self._call("POST", "/cgi-bin/message/recall", json_body={"msgid": msgid})

    # -- media -----------------------------------------------------------------------------

    async def upload_image(self, path: str | Path) -> str:
        """Upload an image file; returns its media_id (valid for three days)."""
        file = Path(path)
        content = await asyncio.to_thread(file.read_bytes)
        return await self.upload_media("image", content, file.name)

    async def upload_file(self, path: str | Path) -> str:
        """Upload a file (a PDF to print); returns its media_id (valid for three days)."""
        file = Path(path)
        content = await asyncio.to_thread(file.read_bytes)
        return await self.upload_media("file", content, file.name)

    async def upload_media(self, kind: str, content: bytes, filename: str) -> str:
        """media/upload of `content` as `kind` (image, voice, video, file); returns the media_id."""
        limit = MAX_UPLOAD.get(kind)
        if limit is None:
            raise ValueError(f"unknown media type {kind!r}")
        if len(content) > limit:
            raise WeComError(TOO_LARGE, f"{kind} of {len(content)} bytes is over {limit}")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

        def form() -> aiohttp.FormData:  # a FormData is spent once sent: one per attempt
            data = aiohttp.FormData()
            data.add_field("media", content, filename=filename, content_type=content_type)
            return data

        answer = await self._call("POST", "/cgi-bin/media/upload", {"type": kind}, form=form)
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeComError(BAD_ANSWER, "media/upload answer has no media_id")
        return media_id

    async def download_media(self, media_id: str, *, limit: int = MAX_DOWNLOAD) -> bytes:
        """media/get: the bytes of a photo or file a member sent; refuses more than `limit`."""

        async def call(token: str) -> bytes:
            params = {"access_token": token, "media_id": media_id}
            return await self._download("/cgi-bin/media/get", params, limit)

        return await self._with_token(call)

    # -- directory -------------------------------------------------------------------------

    async def departments(self, department_id: int | None = None) -> list[Department]:
        """The department tree the application may see (below `department_id`, if given)."""
        params = {} if department_id is None else {"id": str(department_id)}
        answer = await self._call("GET", "/cgi-bin/department/list", params)
        return _parse(_Departments, answer.get("department", []), "department/list")

    async def users(
        self, department_id: int, *, fetch_child: bool = True, simple: bool = False
    ) -> list[Member]:
        """Members of a department (and of its sub-departments with `fetch_child`);
        `simple` asks user/simplelist for ids, names and departments only."""
        path = "/cgi-bin/user/simplelist" if simple else "/cgi-bin/user/list"
        params = {"department_id": str(department_id), "fetch_child": "1" if fetch_child else "0"}
        answer = await self._call("GET", path, params)
        return _parse(_Members, answer.get("userlist", []), path)

    # -- web authorization (网页授权) -----------------------------------------------------------

    async def user_from_code(self, code: str) -> str | None:
        """auth/getuserinfo: the member of this corp whose browser brought back
        `code` from WeCom's authorization page; None for someone outside it."""
        answer = await self._call("GET", "/cgi-bin/auth/getuserinfo", {"code": code})
        userid = answer.get("userid") or answer.get("UserId")
        return str(userid) if userid else None

    # -- group robots ----------------------------------------------------------------------

    async def robot_send(
        self,
        key: str,
        *,
        text: str | None = None,
        markdown: str | None = None,
        mentioned_mobiles: Sequence[str] = (),
    ) -> None:
        """Post to a group chat through its robot's webhook key (text: at most
        MAX_TEXT_BYTES, markdown: MAX_ROBOT_MARKDOWN_BYTES). No access token involved."""
        if (text is None) == (markdown is None):
            raise ValueError("robot_send needs exactly one of text or markdown")
        body: JSONDict
        if text is not None:
            body = {"msgtype": "text", "text": {"content": text}}
            if mentioned_mobiles:
                body["text"]["mentioned_mobile_list"] = list(mentioned_mobiles)
        else:
            body = {"msgtype": "markdown", "markdown": {"content": markdown}}
        await self._request("POST", "/cgi-bin/webhook/send", {"key": key}, json_body=body)

    # -- HTTP ------------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._session_factory()
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        *,
        json_body: JSONDict | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> JSONDict:
        try:
            async with self._client().request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                data=form() if form is not None else None,
                timeout=self._timeout,
            ) as response:
                _check_status(response)
                payload = await response.read()
        except TimeoutError as exc:
            raise WeComError(NO_ANSWER, "timed out") from exc
        except aiohttp.ClientError as exc:
            raise WeComError(NO_ANSWER, f"connection: {type(exc).__name__}") from exc
        return _answer(payload)

    async def _download(self, path: str, params: Mapping[str, str], limit: int) -> bytes:
        try:
            async with self._client().get(
                self.base_url + path, params=params, timeout=self._timeout
            ) as response:
                _check_status(response)
                if response.content_type in ("application/json", "text/plain"):
                    _answer(await _read_at_most(response, 1024 * 1024))  # raises its errcode
                    raise WeComError(BAD_ANSWER, "media/get answered JSON without an error")
                if response.content_length is not None and response.content_length > limit:
                    raise WeComError(TOO_LARGE, f"media of {response.content_length} bytes")
                return await _read_at_most(response, limit)
        except TimeoutError as exc:
            raise WeComError(NO_ANSWER, "timed out") from exc
        except aiohttp.ClientError as exc:
            raise WeComError(NO_ANSWER, f"connection: {type(exc).__name__}") from exc


def split_utf8(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Cut `text` into parts of at most `limit` UTF-8 bytes, never inside a
    character, at a line break when one falls in the second half of a part."""
    if limit < 4:
        raise ValueError("limit must hold the longest UTF-8 character (4 bytes)")
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return [text]
    parts: list[str] = []
    start = 0
    while len(data) - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:  # a continuation byte: back to the character's start
            cut -= 1
        newline = data.rfind(b"\n", start, cut)
        if newline >= start + limit // 2:
            cut = newline + 1
        parts.append(data[start:cut].decode("utf-8", "surrogatepass"))
        start = cut
    parts.append(data[start:].decode("utf-8", "surrogatepass"))
    return parts


def _default_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(trust_env=True)  # HTTP(S)_PROXY, for egress proxies


def _consume_exception(task: asyncio.Task[str]) -> None:
    """A refresh whose every waiter gave up must not log 'exception never retrieved'."""
    if not task.cancelled():
        task.exception()


def _check_status(response: aiohttp.ClientResponse) -> None:
    if response.status != 200:
        raise WeComError(NO_ANSWER, f"HTTP {response.status}", http_status=response.status)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise WeComError(TOO_LARGE, f"answer over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(payload: bytes) -> JSONDict:
    """WeCom's JSON answer, or its errcode raised."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise WeComError(BAD_ANSWER, "answer is not JSON") from exc
    if not isinstance(body, dict):
        raise WeComError(BAD_ANSWER, "answer is not a JSON object")
    errcode = body.get("errcode", 0)
    if not isinstance(errcode, int):
        raise WeComError(BAD_ANSWER, "errcode is not a number")
    if errcode != 0:
        raise WeComError(errcode, str(body.get("errmsg", "")))
    return body


def _parse(adapter: TypeAdapter[list[T]], value: Any, what: str) -> list[T]:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise WeComError(BAD_ANSWER, f"{what} answer not understood") from exc


def _ids(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else "|".join(value)


def _split_ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value if v)
    if isinstance(value, str):
        return tuple(v for v in value.split("|") if v)
    return ()
