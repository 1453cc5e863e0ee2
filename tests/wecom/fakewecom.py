"""A fake WeCom server API (qyapi.weixin.qq.com) for tests, plus builders of
the encrypted callbacks WeCom posts to the bot.

It serves tests only: it binds 127.0.0.1 on a free port, keeps everything in memory and never
talks to the internet. It answers like WeCom (HTTP 200 with errcode/errmsg, the same errcodes
for the mistakes a client can make), records every call, and lets a test expire the token,
inject errors, fill the directory and provide media.

Endpoints are named by their path under ``/cgi-bin/``: ``gettoken``, ``message/send``,
``message/update_template_card``, ``message/recall``, ``media/upload``, ``media/get``,
``department/list``, ``user/list``, ``user/simplelist``, ``webhook/send``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web

from bot.channels.wecom.crypto import WeComCrypto

JSONDict = dict[str, Any]

CORP_ID = "ww0123456789abcdef"
SECRET = "test-secret"
AGENT_ID = 1000002
MAX_TEXT_BYTES = 2048
MAX_ROBOT_MARKDOWN_BYTES = 4096
MEDIA_LIMITS = {
    "image": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "video": 10 * 1024 * 1024,
    "file": 20 * 1024 * 1024,
}
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
# Cards a member answers in place: WeCom gives a response_code to update them.
INTERACTIVE_CARDS = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
MESSAGE_TYPES = frozenset({"text", "markdown", "image", "file", "news", "template_card"})

# Endpoints that need an access_token (all but gettoken and the group robots' webhook).
_TOKEN_FREE = frozenset({"gettoken", "webhook/send"})


class WeComFault(Exception):
    """An error answer: errcode and errmsg (HTTP 200), or a bare HTTP status."""

    def __init__(self, errcode: int, errmsg: str, http_status: int = 200) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status


@dataclass
class Upload:
    filename: str
    content: bytes
    content_type: str


@dataclass
class WeComCall:
    """One request: the endpoint, its query, its JSON body and any uploaded files."""

    endpoint: str
    query: dict[str, str]
    body: JSONDict | None
    files: dict[str, Upload] = field(default_factory=dict)


@dataclass
class SentMessage:
    """An application message WeCom accepted."""

    msgid: str
    touser: list[str]
    msgtype: str
    content: JSONDict
    body: JSONDict
    response_code: str | None = None
    invalid_users: list[str] = field(default_factory=list)
    updates: list[JSONDict] = field(default_factory=list)  # update_template_card bodies
    recalled: bool = False

    @property
    def text(self) -> str | None:
        """The content of a text or markdown message."""
        value = self.content.get("content")
        return value if isinstance(value, str) else None


@dataclass
class RobotMessage:
    key: str
    msgtype: str
    content: str
    body: JSONDict


@dataclass
class _Fault:
    endpoint: str
    fault: WeComFault
    times: int


@dataclass
class _Media:
    content: bytes
    content_type: str
    filename: str


Handler = Callable[[dict[str, str], JSONDict, dict[str, Upload]], Awaitable[JSONDict]]


class FakeWeCom:
    """The fake server. Start it with `async with FakeWeCom() as wecom:` and point the client
    at `wecom.base_url`. Call its helpers on the event loop that runs it."""

    def __init__(
        self,
        corp_id: str = CORP_ID,
        secret: str = SECRET,
        agent_id: int = AGENT_ID,
        expires_in: int = 7200,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.expires_in = expires_in
        self.calls: list[WeComCall] = []
        self.messages: list[SentMessage] = []
        self.robot_messages: list[RobotMessage] = []
        self.uploads: dict[str, Upload] = {}  # media_id -> what media/upload received
        self.departments: list[JSONDict] = []
        self.users: list[JSONDict] = []
        self.blocked: set[str] = set()  # user ids WeCom will not deliver to
        self.robot_keys: set[str] = set()
        self._tokens: dict[str, bool] = {}  # token -> still valid
        self._faults: list[_Fault] = []
        self._delays: dict[str | None, float] = {}
        self._media: dict[str, _Media] = {}
        self._by_msgid: dict[str, SentMessage] = {}
        self._response_codes: dict[str, str] = {}  # unused response_code -> msgid
        self._task_ids: set[str] = set()
        self._auth_codes: dict[str, str] = {}  # web authorization code -> userid, used once
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, Handler] = {
            "gettoken": self._gettoken,
            "message/send": self._message_send,
            "message/update_template_card": self._update_template_card,
            "message/recall": self._recall,
            "media/upload": self._media_upload,
            "department/list": self._department_list,
            "user/list": self._user_list,
            "user/simplelist": self._user_simplelist,
            "webhook/send": self._webhook_send,
            "auth/getuserinfo": self._getuserinfo,
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/cgi-bin/media/get", self._serve_media)
        app.router.add_route("*", "/cgi-bin/{endpoint:.+}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeCom:
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
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeWeCom is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- what the tests look at ------------------------------------------------------------

    def count(self, endpoint: str) -> int:
        """How many times `endpoint` was called (whatever the answer)."""
        return sum(1 for call in self.calls if call.endpoint == endpoint)

    def messages_to(self, userid: str) -> list[SentMessage]:
        return [m for m in self.messages if userid in m.touser and userid not in m.invalid_users]

    def message(self, msgid: str) -> SentMessage:
        return self._by_msgid[msgid]

    async def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until `count` application messages were accepted in all; return them."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await self._changed.wait()
        return self.messages

    # -- what the tests arrange ------------------------------------------------------------

    def expire_token(self) -> None:
        """Every token issued so far expires: the next call with one answers 42001."""
        for token in self._tokens:
            self._tokens[token] = False

    def fail_next(
        self,
        endpoint: str,
        errcode: int = -1,
        errmsg: str | None = None,
        *,
        times: int = 1,
        http_status: int = 200,
    ) -> None:
        """The next `times` calls of `endpoint` answer `errcode` (or, with an http_status other
        than 200, that bare HTTP status) instead of doing anything."""
        message = errmsg or _ERRMSG.get(errcode, "error")
        self._faults.append(_Fault(endpoint, WeComFault(errcode, message, http_status), times))

    def delay(self, seconds: float, endpoint: str | None = None) -> None:
        """Hold calls of `endpoint` (of every endpoint with None) this long before answering."""
        self._delays[endpoint] = seconds

    def set_directory(self, departments: Iterable[JSONDict], users: Iterable[JSONDict]) -> None:
        """The departments ({id, name, parentid, order}) and members ({userid, name,
        department: [ids], mobile, status}) the application sees. With members set, messages
        to anyone else are undeliverable; with none, every user id is accepted."""
        self.departments = [dict(d) for d in departments]
        self.users = [dict(u) for u in users]

    def add_media(
        self, content: bytes, content_type: str = "image/jpeg", filename: str = "photo.jpg"
    ) -> str:
        """Media a member sent (as a photo message's MediaId); returns its media_id."""
        media_id = f"media-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        self._media[media_id] = _Media(content, content_type, filename)
        return media_id

    def add_robot(self, key: str | None = None) -> str:
        """A group robot's webhook key that webhook/send accepts."""
        key = key or str(uuid.uuid4())
        self.robot_keys.add(key)
        return key

    def block(self, userid: str) -> None:
        """WeCom stops delivering to `userid` (left the company, outside the app's scope)."""
        self.blocked.add(userid)

    def click(self, msgid: str) -> str:
        """A member pressed a button of card `msgid`: the fresh response_code the
        TemplateCardEvent callback carries, good for one update_template_card."""
        if msgid not in self._by_msgid:
            raise KeyError(msgid)
        code = f"rc-{uuid.uuid4().hex}"
        self._response_codes[code] = msgid
        return code

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        query = dict(request.query)
        body, files = await _read_body(request)
        self.calls.append(WeComCall(endpoint, query, body, files))
        try:
            handler = self._handlers.get(endpoint)
            if handler is None:
                raise WeComFault(404, "Not Found", http_status=404)
            await self._prelude(endpoint, query)
            if body is None and request.method == "POST" and endpoint != "media/upload":
                raise WeComFault(47001, "data format error")
            answer = await handler(query, body or {}, files)
        except WeComFault as fault:
            return _fault_response(fault)
        self._notify()
        return web.json_response({"errcode": 0, "errmsg": "ok", **answer})

    async def _serve_media(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.calls.append(WeComCall("media/get", query, None))
        try:
            await self._prelude("media/get", query)
            media = self._media.get(query.get("media_id", ""))
            if media is None:
                raise WeComFault(40007, "invalid media_id")
        except WeComFault as fault:
            return _fault_response(fault)
        return web.Response(
            body=media.content,
            content_type=media.content_type,
            headers={"Content-Disposition": f'attachment; filename="{media.filename}"'},
        )

    async def _prelude(self, endpoint: str, query: dict[str, str]) -> None:
        """What happens before any endpoint does its work: delays, faults, the token."""
        seconds = self._delays.get(endpoint, self._delays.get(None, 0.0))
        if seconds:
            await asyncio.sleep(seconds)
        for fault in self._faults:
            if fault.endpoint == endpoint:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                raise fault.fault
        if endpoint not in _TOKEN_FREE:
            token = query.get("access_token")
            if not token:
                raise WeComFault(41001, "access_token missing")
            valid = self._tokens.get(token)
            if valid is None:
                raise WeComFault(40014, "invalid access_token")
            if not valid:
                raise WeComFault(42001, "access_token expired")

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- endpoints -------------------------------------------------------------------------

    async def _gettoken(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        if q.get("corpid") != self.corp_id:
            raise WeComFault(40013, "invalid corpid")
        if q.get("corpsecret") != self.secret:
            raise WeComFault(40001, "invalid secret")
        token = f"token-{next(self._ids)}-{uuid.uuid4().hex}"
        self._tokens[token] = True
        return {"access_token": token, "expires_in": self.expires_in}

    async def _message_send(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        self._check_agent(b)
        msgtype = b.get("msgtype")
        if msgtype not in MESSAGE_TYPES:
            raise WeComFault(40008, "invalid message type")
        content = b.get(msgtype)
        if not isinstance(content, dict):
            raise WeComFault(40058, f"{msgtype} is missing")
        response_code = None
        if msgtype in ("text", "markdown"):
            _check_content(content.get("content"), MAX_TEXT_BYTES)
        elif msgtype in ("image", "file"):
            media_id = content.get("media_id")
            if media_id not in self.uploads and media_id not in self._media:
                raise WeComFault(40007, "invalid media_id")
        elif msgtype == "template_card":
            response_code = self._check_card(content)
        recipients = [u for u in str(b.get("touser") or "").split("|") if u]
        if recipients == ["@all"]:
            recipients = [u["userid"] for u in self.users]
        invalid = [u for u in recipients if not self._deliverable(u)]
        if not recipients or len(invalid) == len(recipients):
            raise WeComFault(81013, "user & party & tag all invalid")
        msgid = f"msg-{next(self._ids)}-{uuid.uuid4().hex[:12]}"
        sent = SentMessage(msgid, recipients, msgtype, content, b, response_code, invalid)
        self.messages.append(sent)
        self._by_msgid[msgid] = sent
        answer: JSONDict = {"invaliduser": "|".join(invalid), "msgid": msgid}
        if response_code is not None:
            self._response_codes[response_code] = msgid
            answer["response_code"] = response_code
        return answer

    async def _update_template_card(
        self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]
    ) -> JSONDict:
        self._check_agent(b)
        msgid = self._response_codes.pop(str(b.get("response_code", "")), None)
        if msgid is None:
            raise WeComFault(40058, "invalid response_code")  # unknown, or used already
        if "template_card" not in b and not (b.get("button") or {}).get("replace_name"):
            raise WeComFault(40058, "button.replace_name or template_card is required")
        self._by_msgid[msgid].updates.append(b)
        return {"invaliduser": []}

    async def _recall(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        sent = self._by_msgid.get(str(b.get("msgid", "")))
        if sent is None:
            raise WeComFault(40058, "invalid msgid")
        sent.recalled = True
        return {}

    async def _media_upload(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        kind = q.get("type", "")
        if kind not in MEDIA_LIMITS:
            raise WeComFault(40004, "invalid media type")
        upload = f.get("media")
        if upload is None or not upload.content:
            raise WeComFault(44001, "empty media data")
        if len(upload.content) > MEDIA_LIMITS[kind]:
            raise WeComFault(40006, "invalid file size")
        media_id = f"upload-{next(self._ids)}-{uuid.uuid4().hex[:12]}"
        self.uploads[media_id] = upload
        self._media[media_id] = _Media(upload.content, upload.content_type, upload.filename)
        return {"type": kind, "media_id": media_id, "created_at": "1700000000"}

    async def _department_list(
        self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]
    ) -> JSONDict:
        if "id" not in q:
            return {"department": self.departments}
        root = self._department_id(q["id"])
        subtree = self._subtree(root)
        return {"department": [d for d in self.departments if d["id"] in subtree]}

    async def _user_list(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        return {"userlist": self._members(q)}

    async def _user_simplelist(
        self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]
    ) -> JSONDict:
        keep = ("userid", "name", "department", "open_userid")
        return {"userlist": [{k: u[k] for k in keep if k in u} for u in self._members(q)]}

    def auth_code(self, userid: str) -> str:
        """The `code` WeCom's authorization page hands a member's browser (网页授权)."""
        code = f"code{next(self._ids)}"
        self._auth_codes[code] = userid
        return code

    async def _getuserinfo(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        userid = self._auth_codes.pop(q.get("code", ""), None)
        if userid is None:
            raise WeComFault(40029, "invalid code")
        return {"userid": userid}

    async def _webhook_send(self, q: dict[str, str], b: JSONDict, f: dict[str, Upload]) -> JSONDict:
        key = q.get("key", "")
        if key not in self.robot_keys:
            raise WeComFault(93000, "invalid webhook url")
        msgtype = b.get("msgtype")
        if msgtype not in ("text", "markdown"):
            raise WeComFault(40008, "invalid message type")
        content = (b.get(msgtype) or {}).get("content")
        limit = MAX_TEXT_BYTES if msgtype == "text" else MAX_ROBOT_MARKDOWN_BYTES
        text = _check_content(content, limit)
        self.robot_messages.append(RobotMessage(key, msgtype, text, b))
        return {}

    # -- checks ----------------------------------------------------------------------------

    def _check_agent(self, b: JSONDict) -> None:
        if b.get("agentid") != self.agent_id:
            raise WeComFault(40056, "invalid agentid")

    def _check_card(self, card: JSONDict) -> str | None:
        """A template card's rules that a client can break; its response_code, if interactive."""
        card_type = card.get("card_type")
        if card_type not in CARD_TYPES:
            raise WeComFault(40058, "invalid card_type")
        if card_type not in INTERACTIVE_CARDS:
            return None
        task_id = card.get("task_id")
        if not isinstance(task_id, str) or not 1 <= len(task_id.encode()) <= 128:
            raise WeComFault(40058, "task_id is required")
        if task_id in self._task_ids:
            raise WeComFault(40058, "task_id is duplicated")
        if card_type == "button_interaction":
            buttons = card.get("button_list")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
                raise WeComFault(40058, "button_list must hold 1 to 6 buttons")
            for button in buttons:
                if not isinstance(button, dict) or not button.get("text") or not button.get("key"):
                    raise WeComFault(40058, "a button needs text and key")
                if len(str(button["key"]).encode()) > 1024:
                    raise WeComFault(40058, "button key is too long")
        self._task_ids.add(task_id)
        return f"rc-{uuid.uuid4().hex}"

    def _deliverable(self, userid: str) -> bool:
        if userid in self.blocked:
            return False
        if not self.users:
            return True
        return any(u["userid"] == userid and u.get("status", 1) == 1 for u in self.users)

    def _department_id(self, raw: str) -> int:
        try:
            department_id = int(raw)
        except ValueError:
            raise WeComFault(60123, "invalid party id") from None
        if not any(d["id"] == department_id for d in self.departments):
            raise WeComFault(60123, "invalid party id")
        return department_id

    def _subtree(self, root: int) -> set[int]:
        found = {root}
        grew = True
        while grew:
            below = {d["id"] for d in self.departments if d.get("parentid") in found}
            grew = not below <= found
            found |= below
        return found

    def _members(self, q: dict[str, str]) -> list[JSONDict]:
        root = self._department_id(q.get("department_id", ""))
        departments = self._subtree(root) if q.get("fetch_child") == "1" else {root}
        return [u for u in self.users if departments & set(u.get("department", []))]


_ERRMSG = {
    -1: "system busy",
    40014: "invalid access_token",
    42001: "access_token expired",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    81013: "user & party & tag all invalid",
}


def _check_content(content: Any, limit: int) -> str:
    if not isinstance(content, str) or not content:
        raise WeComFault(44004, "empty content")
    if len(content.encode()) > limit:
        raise WeComFault(45002, "content size out of limit")
    return content


def _fault_response(fault: WeComFault) -> web.Response:
    if fault.http_status != 200:
        return web.Response(status=fault.http_status, text=fault.errmsg)
    return web.json_response({"errcode": fault.errcode, "errmsg": fault.errmsg})


async def _read_body(request: web.Request) -> tuple[JSONDict | None, dict[str, Upload]]:
    if not request.can_read_body:
        return None, {}
    if request.content_type.startswith("multipart/"):
        files: dict[str, Upload] = {}
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(value.filename, value.file.read(), value.content_type)
        return None, files
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None, {}
    return (body if isinstance(body, dict) else None), {}


# -- callbacks: what WeCom posts to the bot ------------------------------------------------


def message_xml(fields: dict[str, str]) -> bytes:
    """An inner callback message with these fields, in WeCom's layout."""
    root = Element("xml")
    for tag, value in fields.items():
        SubElement(root, tag).text = value
    return tostring(root, encoding="unicode").encode()


def text_message(
    from_user: str, content: str, msg_id: str, *, corp_id: str = CORP_ID, agent_id: int = AGENT_ID
) -> bytes:
    return message_xml(
        {
            "ToUserName": corp_id,
            "FromUserName": from_user,
            "CreateTime": "1700000000",
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
            "AgentID": str(agent_id),
        }
    )


def image_message(
    from_user: str, media_id: str, msg_id: str, *, corp_id: str = CORP_ID, agent_id: int = AGENT_ID
) -> bytes:
    return message_xml(
        {
            "ToUserName": corp_id,
            "FromUserName": from_user,
            "CreateTime": "1700000000",
            "MsgType": "image",
            "PicUrl": f"https://wework.qpic.cn/{media_id}",
            "MediaId": media_id,
            "MsgId": msg_id,
            "AgentID": str(agent_id),
        }
    )


def location_message(
    from_user: str,
    latitude: float,
    longitude: float,
    msg_id: str,
    *,
    corp_id: str = CORP_ID,
    agent_id: int = AGENT_ID,
) -> bytes:
    return message_xml(
        {
            "ToUserName": corp_id,
            "FromUserName": from_user,
            "CreateTime": "1700000000",
            "MsgType": "location",
            "Location_X": str(latitude),
            "Location_Y": str(longitude),
            "Scale": "15",
            "Label": "",
            "MsgId": msg_id,
            "AgentID": str(agent_id),
        }
    )


def card_event(
    from_user: str,
    event_key: str,
    task_id: str,
    response_code: str,
    *,
    card_type: str = "button_interaction",
    create_time: str = "1700000000",
    corp_id: str = CORP_ID,
    agent_id: int = AGENT_ID,
) -> bytes:
    """A template_card_event: a member pressed the button `event_key` of card `task_id`.
    Get `response_code` from FakeWeCom.click. WeCom has no event id: dedupe on
    (FromUserName, CreateTime, TaskId, EventKey)."""
    return message_xml(
        {
            "ToUserName": corp_id,
            "FromUserName": from_user,
            "CreateTime": create_time,
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": event_key,
            "TaskId": task_id,
            "CardType": card_type,
            "ResponseCode": response_code,
            "AgentID": str(agent_id),
        }
    )


def encrypted_callback(
    crypto: WeComCrypto,
    inner: bytes,
    *,
    nonce: str = "nonce",
    timestamp: str = "1700000000",
    agent_id: int = AGENT_ID,
) -> tuple[dict[str, str], bytes]:
    """(query, body) of the POST WeCom makes to the callback URL for `inner`."""
    encrypted, msg_signature = crypto.encrypt(inner, nonce, timestamp)
    body = message_xml(
        {"ToUserName": crypto.corp_id, "Encrypt": encrypted, "AgentID": str(agent_id)}
    )
    return {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce}, body


def url_check(
    crypto: WeComCrypto, echo: str, *, nonce: str = "nonce", timestamp: str = "1700000000"
) -> dict[str, str]:
    """The query of WeCom's GET to verify the callback URL; the answer must be `echo`."""
    echostr, msg_signature = crypto.encrypt(echo.encode(), nonce, timestamp)
    return {
        "msg_signature": msg_signature,
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }
