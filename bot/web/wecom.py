"""Opening the desk from the WeCom app's menu (网页授权): `/wecom/open` sends
the browser to WeCom's authorization page with the corp id; WeCom sends it
back to `/wecom/signin` with a `code`, which auth/getuserinfo turns into the
member's userid; the person bound to that WeCom identity is signed in. A
`state` cookie ties the return to the browser that left."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.channels.wecom.api import WeComAPI, WeComError
from bot.store import desk as desk_store
from bot.web.context import desk_of, redirect
from bot.web.login import start_session
from bot.web.render import page
from bot.web.tokens import new_secret, same

log = logging.getLogger(__name__)

AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
STATE_COOKIE = "frontline_wecom_state"
STATE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class WeComSignIn:
    corp_id: str
    agent_id: int
    api: WeComAPI


def _wecom(request: web.Request) -> WeComSignIn:
    found = desk_of(request).wecom
    if found is None:
        raise web.HTTPNotFound()
    return found


async def open_desk(request: web.Request) -> web.Response:
    wecom, the_desk = _wecom(request), desk_of(request)
    state = new_secret()
    query = urlencode(
        {
            "appid": wecom.corp_id,
            "redirect_uri": f"{the_desk.web_url}/wecom/signin",
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": str(wecom.agent_id),
        },
        quote_via=quote,
    )
    response = web.Response(
        status=302, headers={"Location": f"{AUTHORIZE}?{query}#wechat_redirect"}
    )
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=the_desk.secure,
        path="/wecom/",
    )
    return response


async def sign_in(request: web.Request) -> web.Response:
    wecom, the_desk = _wecom(request), desk_of(request)
    state, code = request.query.get("state", ""), request.query.get("code", "")
    expected = request.cookies.get(STATE_COOKIE, "")
    if not code or not expected or not same(state, expected):
        return page(request, "link_refused.html", status=403, reason="wecom")
    try:
        userid = await wecom.api.user_from_code(code)
    except WeComError as exc:
        log.info("desk wecom sign-in refused errcode=%s", exc.errcode)
        userid = None
    async with the_desk.reader.connection() as conn:
        staff_id = await desk_store.staff_for_identity(conn, "wecom", userid) if userid else None
    if staff_id is None:
        return page(request, "link_refused.html", status=403, reason="wecom")
    response = redirect("/")
    await start_session(request, response, staff_id)
    response.del_cookie(STATE_COOKIE, path="/wecom/")
    return response
