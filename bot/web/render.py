"""Turning a page's data into HTML: one Jinja2 environment over the
package's templates, autoescaped, with the person's language bound into `t`
and times shown in the unit's zone. No business logic here."""

from __future__ import annotations

from datetime import datetime
from functools import cache, partial
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.clock import local_time_text
from bot.i18n import catalog, t
from bot.web.context import LANGUAGE, VIEWER


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the package; no stat() per page
    )
    return env


def word(language: str, key: str, fallback: str = "") -> str:
    """The catalog's text for a stored value's key, or the value itself."""
    return catalog(language).get(key) or catalog("zh-CN").get(key) or fallback


def local(moment: str | None, timezone: str) -> str:
    return local_time_text(datetime.fromisoformat(moment), timezone) if moment else ""


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    viewer = request.get(VIEWER)
    language = request.get(LANGUAGE, "zh-CN")
    html = (
        environment()
        .get_template(template)
        .render(
            **{
                "t": partial(t, language),
                "word": partial(word, language),
                "lang": language,
                "viewer": viewer,
                # The page's own address (a refused form's page says the card's).
                "path": request.path,
                **context,
            }
        )
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
