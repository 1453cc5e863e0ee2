"""One hazard's card (`/hazards/YH-2026-0001`): the report, its photos, the
four fixes, orders, the whole history, and what this person may do now by
the chat's rules. A hazard they may not see is 404, and so are its photos."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from bot import documents
from bot import hazards as register
from bot.clock import end_of_local_day, parse_iso
from bot.hazard_rules import Action
from bot.hazard_view import WORDS
from bot.i18n import t
from bot.model import Staff
from bot.store import desk_reads, hazard_reads
from bot.store.hazard_reads import HazardCard
from bot.web.context import LANGUAGE, Desk, Viewer, desk_of, viewer_of
from bot.web.render import local, page

# What the card's forms do (bot/web/hazard_actions.py); submitting and
# asking for more time take photos: those stay in the chat.
ON_DESK = (
    Action.ASSIGN,
    Action.START,
    Action.APPROVE_EXTENSION,
    Action.REFUSE_EXTENSION,
    Action.ACCEPT,
    Action.SEND_BACK,
    Action.ORDER,
)
# The note of what was just done, set by an action for the card it returns to.
FLASH = "frontline_flash"
# How many people the assign form offers (the chat pages through them).
CANDIDATES = 300


async def visible(request: web.Request, viewer: Viewer, number: str) -> HazardCard:
    async with desk_of(request).reader.connection() as conn:
        card = await hazard_reads.hazard(conn, number)
    if card is None or not viewer.access.may_see(card.line):
        raise web.HTTPNotFound()
    return card


@dataclass(frozen=True, slots=True)
class Step:
    at: str
    actor: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class Forms:
    """What the card's forms offer: whom one may make responsible, and the
    deadline inputs' value and earliest value in the unit's zone."""

    candidates: list[Staff]
    deadline: str
    earliest: str


def _input(moment: datetime, zone: str) -> str:
    """A moment as a date-time input shows it, in `zone`."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


async def _forms(
    the_desk: Desk, staff: Staff, card: HazardCard, zone: str, *, assigning: bool
) -> Forms:
    now = the_desk.clock.now()
    candidates = (
        await the_desk.reader.run(
            lambda conn: register.candidates(conn, staff, card.line.unit_id, CANDIDATES)
        )
        if assigning
        else []
    )
    current = parse_iso(card.line.deadline_at)
    shown = current if current > now else end_of_local_day(now, zone)
    return Forms(candidates, _input(shown, zone), _input(now, zone))


def _flash(request: web.Request, number: str) -> str:
    """The note an action left for this card, in the page's language."""
    number_, _, word = request.cookies.get(FLASH, "").partition(".")
    if number_ != number or word not in WORDS.values():
        return ""
    return t(request.get(LANGUAGE, "zh-CN"), f"web.done_{word}", hazard=number)


async def page_card(
    request: web.Request,
    *,
    refusal: str = "",
    posted: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    """The card; after a refused action, with the reason and what was typed."""
    the_desk, viewer = desk_of(request), viewer_of(request)
    card = await visible(request, viewer, request.match_info["number"])
    line = card.line
    tree = viewer.access.tree
    zone = tree.timezone(line.unit_id, the_desk.default_timezone)
    async with the_desk.reader.connection() as conn:
        history = await hazard_reads.history(conn, line.id)
        orders = await hazard_reads.orders(conn, line.id)
        names = await desk_reads.names(
            conn,
            [
                line.reported_by,
                line.responsible_id or 0,
                card.assigned_by or 0,
                card.accepted_by or 0,
                *(o.issued_by for o in orders),
            ],
        )
    steps = [
        Step(
            at=local(h.at, zone),
            actor=h.actor or "",
            action=h.action,
            detail=_detail(h.detail),
        )
        for h in history
    ]
    photos = list(range(len(card.photos)))
    fixed = list(range(len(card.photos), len(card.photos) + len(card.rectification_photos)))
    actions = viewer.access.actions(line)
    forms = (
        await _forms(the_desk, viewer.staff, card, zone, assigning=Action.ASSIGN in actions)
        if actions
        else None
    )
    flash = "" if refusal else _flash(request, line.number)
    response = page(
        request,
        "card.html",
        status=status,
        card=card,
        line=line,
        unit=tree.path(line.unit_id),
        zone=zone,
        names=names,
        steps=steps,
        orders=orders,
        photos=photos,
        fixed=fixed,
        actions=[(WORDS[action], action in ON_DESK) for action in actions],
        forms=forms,
        paths={p.unit_id: tree.path(p.unit_id) for p in forms.candidates} if forms else {},
        path=f"/hazards/{line.number}",
        flash=flash,
        refusal=refusal,
        posted=posted or {},
        local=local,
    )
    if FLASH in request.cookies:
        response.del_cookie(FLASH, path="/hazards/")
    return response


def _detail(detail: dict[str, object]) -> str:
    """What an audit row adds beyond who and what: its new deadline or reason."""
    shown = [
        str(detail[key])
        for key in ("reason", "measure", "requirement", "order", "text")
        if detail.get(key)
    ]
    return " · ".join(shown)[:300]


async def order_pdf(request: web.Request) -> web.Response:
    """A rectification order of the hazard as its printable PDF (整改通知书)."""
    the_desk, viewer = desk_of(request), viewer_of(request)
    card = await visible(request, viewer, request.match_info["number"])
    wanted = request.match_info["order"].upper()
    async with the_desk.reader.connection() as conn:
        issued = {order.number for order in await hazard_reads.orders(conn, card.line.id)}
    if wanted not in issued:
        raise web.HTTPNotFound()
    language = request.get(LANGUAGE, the_desk.default_language)
    now = the_desk.clock.now()
    content = await the_desk.reader.run(
        lambda conn: documents.render(
            documents.order_document(
                conn, wanted, language, default_timezone=the_desk.default_timezone
            ),
            created=now,
        )
    )
    return web.Response(
        body=content,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{wanted}.pdf"'},
    )


async def photo(request: web.Request) -> web.StreamResponse:
    """A hazard's photo (report first, then rectification), only for whoever may see it."""
    the_desk, viewer = desk_of(request), viewer_of(request)
    card = await visible(request, viewer, request.match_info["number"])
    every = [*card.photos, *card.rectification_photos]
    index = int(request.match_info["index"])
    if index >= len(every):
        raise web.HTTPNotFound()
    root = the_desk.media_dir.resolve()
    path = (root / every[index]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        Path(path),
        headers={"Cache-Control": "private, max-age=3600", "Content-Type": _kind(path)},
    )


def _kind(path: Path) -> str:
    return {
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".webp": "image/webp",
        ".gif": "image/gif",
    }.get(path.suffix.lower(), "application/octet-stream")
