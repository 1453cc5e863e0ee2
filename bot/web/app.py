"""The desk's aiohttp application: the routes in one table, and what every
request goes through — security headers (a Content-Security-Policy allowing
only our own origin, and for pictures the map's tile server when one is
set), the session (from the cookie, 12 hours idle at most), and a CSRF
check on every POST. `serve_desk` runs it until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from aiohttp import web

from bot.clock import Clock, iso, parse_iso
from bot.model import LANGUAGES
from bot.store import desk, desk_reads
from bot.store.db import Database
from bot.store.reader import open_reader
from bot.web import (
    audit,
    card,
    drills,
    hazard_actions,
    incident_card,
    incidents,
    login,
    notices,
    people,
    register,
    today,
    visits,
    wecom,
)
from bot.web.access import Access
from bot.web.context import DESK, LANGUAGE, VIEWER, Desk, Viewer, desk_of
from bot.web.render import page
from bot.web.tokens import SEEN_PRECISION, SESSION_IDLE, csrf_token, digest, same
from bot.web.units import UnitTree

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Pages anyone may open: signing in, and the style sheet.
PUBLIC = ("/login/", "/static/", "/wecom/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = page(request, "error.html", status=exc.status, status_code=exc.status)
    response.headers["Content-Security-Policy"] = desk_of(request).csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Same-origin: our own form posts then carry their Origin (no-referrer makes it "null").
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    # Pages carry personal data: never kept. The style sheet and script may be, briefly.
    public = request.path.startswith("/static/") and response.status == 200
    response.headers.setdefault("Cache-Control", "max-age=600" if public else "no-store")
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    viewer = request.get(VIEWER)
    log.info(
        "desk request method=%s route=%s staff=%s status=%s ms=%.1f",
        request.method,
        request.match_info.route.resource.canonical if request.match_info.route.resource else "-",
        viewer.staff.id if isinstance(viewer, Viewer) else "-",
        response.status,
        (time.perf_counter() - started) * 1000,
    )
    return response


@web.middleware
async def session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is signed in, from the cookie; everything but PUBLIC needs someone."""
    the_desk = desk_of(request)
    request[LANGUAGE] = the_desk.default_language
    session_id = request.cookies.get(login.COOKIE, "")
    if session_id:
        found = await _signed_in(the_desk, session_id)
        if found is not None:
            viewer, language = found
            request[VIEWER] = viewer
            request[LANGUAGE] = language
    if request.path.startswith(PUBLIC) or VIEWER in request:
        return await handler(request)
    return page(request, "signed_out.html", status=401)


async def _signed_in(the_desk: Desk, session_id: str) -> tuple[Viewer, str] | None:
    now = the_desk.clock.now()
    id_hash = digest(session_id)
    async with the_desk.reader.connection() as conn:
        signed_in = await desk.signed_in(conn, id_hash)
        if signed_in is None:
            return None
        found, staff = signed_in
        if parse_iso(found.last_seen_at) < now - SESSION_IDLE or not staff.active:
            return None
        tree = UnitTree(await desk_reads.units(conn))
    if parse_iso(found.last_seen_at) < now - SEEN_PRECISION:
        stamp = iso(now)
        await the_desk.db.transaction(lambda c: desk.touch_session(c, id_hash, stamp))
    language = found.language if found.language in LANGUAGES else staff.language
    viewer = Viewer(staff, id_hash, csrf_token(session_id), Access(staff, tree))
    return viewer, language


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST carries the session's CSRF token (sign-in: the link's) and,
    when the browser says where it comes from, comes from the desk itself."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin is not None and origin != desk_of(request).origin:
            return page(request, "error.html", status=403, status_code=403)
        form = await request.post()
        sent = str(form.get("csrf", ""))
        viewer = request.get(VIEWER)
        if request.path.startswith("/login/"):
            expected = csrf_token(request.match_info.get("token", ""))
        elif isinstance(viewer, Viewer):
            expected = viewer.csrf
        else:
            expected = ""
        if not expected or not same(sent, expected):
            return page(request, "error.html", status=403, status_code=403)
    return await handler(request)


def create_app(the_desk: Desk) -> web.Application:
    app = web.Application(
        middlewares=[security_headers, session, csrf], client_max_size=people.MAX_UPLOAD + (1 << 16)
    )
    app[DESK] = the_desk
    app.add_routes(
        [
            web.get("/login/{token}", login.show),
            web.post("/login/{token}", login.sign_in),
            web.post("/logout", login.sign_out),
            web.post("/language", login.language),
            web.get("/wecom/open", wecom.open_desk),
            web.get("/wecom/signin", wecom.sign_in),
            web.get("/", today.page_today),
            web.get("/wall", today.page_wall),
            web.get("/checks", today.page_checks),
            web.get("/hazards", register.page_register),
            web.get("/hazards.xlsx", register.export_view),
            web.get("/hazards/{number}", card.page_card),
            web.get("/hazards/{number}/orders/{order}.pdf", card.order_pdf),
            web.post("/hazards/{number}/{action}", hazard_actions.act),
            web.get("/incidents", incidents.page_incidents),
            web.get("/incidents/{number}", incident_card.page_incident),
            web.get("/incidents/{number}/record.pdf", incident_card.incident_pdf),
            web.get("/visits", visits.page_visits),
            web.get("/drills", drills.page_drills),
            web.get("/notices", notices.page_notices),
            web.get("/people", people.page_people),
            web.post("/people/roster", people.upload_roster),
            web.post("/people/clients", people.upload_clients),
            web.get("/people/{staff_id:\\d+}/deactivate", people.confirm_deactivate),
            web.post("/people/{staff_id:\\d+}/deactivate", people.deactivate),
            web.get("/audit", audit.page_audit),
            web.get("/media/{number}/{index:\\d+}", card.photo),
            web.static("/static", STATIC, append_version=False),
        ]
    )
    return app


@contextlib.asynccontextmanager
async def opened(
    db: Database,
    *,
    web_url: str,
    clock: Clock,
    default_timezone: str,
    default_language: str,
    media_dir: Path,
    drills_per_year: int,
    wecom_signin: wecom.WeComSignIn | None = None,
    served: Collection[str] | None = None,
    on_commit: Callable[[], None] | None = None,
    map_tiles: str | None = None,
) -> AsyncIterator[Desk]:
    """The desk on `db`'s file, with its read connections open while in use."""
    reader = await open_reader(db)
    try:
        yield Desk(
            db=db,
            reader=reader,
            clock=clock,
            web_url=web_url,
            default_timezone=default_timezone,
            default_language=default_language,
            media_dir=media_dir,
            drills_per_year=drills_per_year,
            wecom=wecom_signin,
            served=served,
            on_commit=on_commit,
            map_tiles=map_tiles,
        )
    finally:
        await reader.close()


def _forget(now: datetime, conn: sqlite3.Connection) -> int:
    return desk.forget_stale(
        conn, idle_since=iso(now - SESSION_IDLE), links_before=iso(now - timedelta(days=1))
    )


async def serve_desk(
    the_desk: Desk, listen: str, stop: asyncio.Event, started: asyncio.Event | None = None
) -> None:
    """Serve the desk on `listen` (HOST:PORT) until `stop` is set; once an
    hour, sessions idle too long and expired links are deleted."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(create_app(the_desk), access_log=None)
    await runner.setup()
    # What is loaded by now lives as long as the process: a full garbage
    # collection need not walk it (measured: it was the pages' 100 ms tail).
    gc.collect()
    gc.freeze()
    try:
        await web.TCPSite(runner, host, int(port)).start()
        log.info("desk listening on %s", listen)
        if started is not None:
            started.set()
        while not stop.is_set():
            gone = await the_desk.db.transaction(partial(_forget, the_desk.clock.now()))
            if gone:
                log.info("desk sessions and links forgotten=%s", gone)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=3600)
    finally:
        await runner.cleanup()
