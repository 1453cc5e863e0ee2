"""One hazard's card (`/hazards/YH-2026-0001`): the report, its photos, the
four fixes, orders, the whole history, and what this person may do now by
the chat's rules. A hazard they may not see is 404, and so are its photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot import documents
from bot.hazard_rules import Action
from bot.store import desk_reads, hazard_reads
from bot.store.hazard_reads import HazardCard
from bot.web.context import LANGUAGE, Viewer, desk_of, viewer_of
from bot.web.render import local, page

# The word after `/hz <number>` in chat for each action (handlers/hazard_card.py).
CHAT_WORDS = {
    Action.ASSIGN: "assign",
    Action.START: "start",
    Action.SUBMIT: "submit",
    Action.REQUEST_EXTENSION: "extend",
    Action.APPROVE_EXTENSION: "approve",
    Action.REFUSE_EXTENSION: "refuse",
    Action.ACCEPT: "accept",
    Action.SEND_BACK: "back",
    Action.ORDER: "order",
}


async def _visible(request: web.Request, viewer: Viewer, number: str) -> HazardCard:
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


async def page_card(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    card = await _visible(request, viewer, request.match_info["number"])
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
    return page(
        request,
        "card.html",
        card=card,
        line=line,
        unit=tree.path(line.unit_id),
        zone=zone,
        names=names,
        steps=steps,
        orders=orders,
        photos=photos,
        fixed=fixed,
        actions=[(action, CHAT_WORDS[action]) for action in viewer.access.actions(line)],
        local=local,
    )


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
    card = await _visible(request, viewer, request.match_info["number"])
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
    card = await _visible(request, viewer, request.match_info["number"])
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
