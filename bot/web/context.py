"""What every desk handler reaches through its request: the wiring (`Desk`)
and the person signed in (`Viewer`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from bot.clock import Clock
from bot.model import Staff
from bot.store.db import Database
from bot.store.reader import Reader
from bot.web import maps
from bot.web.access import Access

if TYPE_CHECKING:
    from bot.web.wecom import WeComSignIn


@dataclass
class Desk:
    """What the desk's handlers need, wired once (bot/app.py, bot/cli.py)."""

    db: Database  # writes: sign-in, sessions, and the registers' actions
    reader: Reader  # every page's reads
    clock: Clock
    web_url: str
    default_timezone: str = "Asia/Shanghai"
    default_language: str = "zh-CN"
    media_dir: Path = Path("media")
    drills_per_year: int = 2  # schedules/duties.toml [drills] min_planned
    wecom: WeComSignIn | None = None  # opening the desk from the WeCom app's menu
    # The channels this deployment delivers on (None: any), as the engine's.
    served: Collection[str] | None = None
    # Called after an action committed outbox rows: wakes the sender in this process.
    on_commit: Callable[[], None] | None = None
    # The visits page's map tiles, a {z}/{x}/{y} URL template (None: no map).
    map_tiles: str | None = None
    origin: str = field(init=False)
    csp: str = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.web_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.csp = content_security_policy(self.map_tiles)

    @property
    def secure(self) -> bool:
        return self.web_url.startswith("https://")


def content_security_policy(map_tiles: str | None) -> str:
    """Only our own origin, and for pictures the tile server's when a map is set."""
    images = "'self'" if map_tiles is None else f"'self' {maps.origin(map_tiles)}"
    return (
        f"default-src 'self'; img-src {images}; style-src 'self'; script-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


DESK = web.AppKey("desk", Desk)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person signed in on this request."""

    staff: Staff
    session_hash: str
    csrf: str
    access: Access


VIEWER = web.RequestKey("viewer", Viewer)
LANGUAGE = web.RequestKey("language", str)


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]


def viewer_of(request: web.Request) -> Viewer:
    if VIEWER not in request:  # the session middleware lets no one through without
        raise web.HTTPUnauthorized()
    return request[VIEWER]


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the page it lands on."""
    return web.Response(status=303, headers={"Location": location})
