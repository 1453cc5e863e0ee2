"""One incident's card (`/incidents/SG-2026-001`): the report, the 15-day
clock, the investigation, the corrective actions, the report's status and
the whole history, and its printable record for overseers. Who may see it
is the chat's rule (bot/incident_rules.py); anyone else gets 404, the same
as a number that does not exist. Recording the investigation, adding an
action and the report stay in the chat (handlers/incident_card.py): they
are conversation steps there, not register actions the desk could call."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from aiohttp import web

from bot import documents
from bot import incident_rules as rules
from bot.store import incidents as incident_store
from bot.store import record_reads
from bot.store.record_reads import IncidentCard
from bot.web.context import LANGUAGE, Viewer, desk_of, viewer_of
from bot.web.render import local, page
from bot.web.today import days_left


@dataclass(frozen=True, slots=True)
class Step:
    at: str
    actor: str
    action: str
    status: str  # an investigation entry's new status
    reference: str  # the report's reference


def _chain(viewer: Viewer, card: IncidentCard) -> list[int]:
    return viewer.access.tree.chain(card.record.unit_id)


async def visible(request: web.Request, viewer: Viewer, number: str) -> IncidentCard:
    async with desk_of(request).reader.connection() as conn:
        card = await record_reads.incident(conn, number)
    if card is None or not rules.may_see(
        viewer.staff, _chain(viewer, card), card.record.reported_by
    ):
        raise web.HTTPNotFound()
    return card


async def page_incident(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    card = await visible(request, viewer, request.match_info["number"])
    record = card.record
    tree = viewer.access.tree
    zone = tree.timezone(record.unit_id, the_desk.default_timezone)
    steps = [
        Step(
            at=local(entry.at, zone),
            actor=entry.actor or "",
            action=entry.action,
            status=str(entry.detail.get("to") or "") if entry.action == "investigation" else "",
            reference=str(entry.detail.get("reference") or ""),
        )
        for entry in card.history
    ]
    return page(
        request,
        "incident_card.html",
        card=card,
        record=record,
        unit=tree.path(record.unit_id),
        zone=zone,
        left=None
        if record.report_submitted_at
        else days_left(record.report_due_at, the_desk.clock.now()),
        report_days=rules.REPORT_DAYS,
        overseer=rules.oversees(viewer.staff, _chain(viewer, card)),
        steps=steps,
        local=local,
    )


async def incident_pdf(request: web.Request) -> web.Response:
    """The incident's record to print and sign (事故登记表), for its overseers
    as in chat; built on a read connection of its own."""
    the_desk, viewer = desk_of(request), viewer_of(request)
    card = await visible(request, viewer, request.match_info["number"])
    if not rules.oversees(viewer.staff, _chain(viewer, card)):
        raise web.HTTPForbidden()
    language = request.get(LANGUAGE, the_desk.default_language)
    now = the_desk.clock.now()
    number = card.record.number

    def build(conn: sqlite3.Connection) -> bytes:
        row = incident_store.by_number(conn, number)
        if row is None:  # deleted between the two reads: registers never delete
            raise documents.DocumentError(f"no incident {number}")
        document = documents.incident_document(
            conn, row, language, default_timezone=the_desk.default_timezone
        )
        return documents.render(document, created=now)

    content = await the_desk.reader.run(build)
    return web.Response(
        body=content,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )
