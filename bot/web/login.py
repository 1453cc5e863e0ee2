"""Signing in with a one-time link, signing out, and the page language.

Opening the link shows a page whose form signs in (its script submits it at
once): link previews — Telegram fetches every link a message carries — read
the page but never post the form, so they cannot use up someone's link."""

from __future__ import annotations

import sqlite3

from aiohttp import web

from bot.clock import iso, parse_iso
from bot.model import LANGUAGES
from bot.store import desk
from bot.web.context import desk_of, redirect, viewer_of
from bot.web.render import page
from bot.web.tokens import csrf_token, digest, new_secret

COOKIE = "frontline_desk"


def _refusal(request: web.Request, found: desk.Link | None, now: str) -> web.Response | None:
    """The page for a link that cannot sign anyone in, or None if it can."""
    if found is None or not found.active:
        return page(request, "link_refused.html", status=404, reason="unknown")
    if found.used_at is not None:
        return page(request, "link_refused.html", status=410, reason="used")
    if parse_iso(found.expires_at) <= parse_iso(now):
        return page(request, "link_refused.html", status=410, reason="expired")
    return None


async def show(request: web.Request) -> web.Response:
    the_desk = desk_of(request)
    token = request.match_info["token"]
    now = iso(the_desk.clock.now())
    async with the_desk.reader.connection() as conn:
        found = await desk.read_link(conn, digest(token))
    refused = _refusal(request, found, now)
    if refused is not None:
        return refused
    return page(request, "login.html", token=token, login_csrf=csrf_token(token))


async def sign_in(request: web.Request) -> web.Response:
    the_desk = desk_of(request)
    token = request.match_info["token"]
    token_hash = digest(token)
    now = iso(the_desk.clock.now())
    session_id = new_secret()

    def redeem(conn: sqlite3.Connection) -> tuple[desk.Link | None, bool]:
        found = desk.link(conn, token_hash)
        if found is None or not found.active or not desk.use_link(conn, token_hash, now):
            return found, False
        desk.start_session(conn, id_hash=digest(session_id), staff_id=found.staff_id, now=now)
        return found, True

    found, started = await the_desk.db.transaction(redeem)
    if not started:
        return _refusal(request, found, now) or page(
            request, "link_refused.html", status=410, reason="used"
        )
    response = redirect("/")
    _set_cookie(request, response, session_id)
    return response


def _set_cookie(request: web.Request, response: web.Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="Lax",
        secure=desk_of(request).secure,
        path="/",
    )


async def start_session(request: web.Request, response: web.Response, staff_id: int) -> None:
    """A new session for `staff_id` (signed in some other way than a link), on `response`."""
    the_desk = desk_of(request)
    session_id, now = new_secret(), iso(the_desk.clock.now())
    await the_desk.db.transaction(
        lambda conn: desk.start_session(
            conn, id_hash=digest(session_id), staff_id=staff_id, now=now
        )
    )
    _set_cookie(request, response, session_id)


async def sign_out(request: web.Request) -> web.Response:
    the_desk = desk_of(request)
    viewer = viewer_of(request)
    await the_desk.db.transaction(lambda conn: desk.end_session(conn, viewer.session_hash))
    response = page(request, "signed_out.html", status=200, farewell=True)
    response.del_cookie(COOKIE, path="/")
    return response


async def language(request: web.Request) -> web.Response:
    """This browser's language (the wall's TV need not change anyone's chat)."""
    the_desk = desk_of(request)
    viewer = viewer_of(request)
    form = await request.post()
    wanted = str(form.get("language", ""))
    chosen = wanted if wanted in LANGUAGES else None
    await the_desk.db.transaction(
        lambda conn: desk.set_session_language(conn, viewer.session_hash, chosen)
    )
    back = str(form.get("back", "/"))
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/")
