"""Notices (`/notices`): those this person sent, with how many have read
each and who has not yet; and those sent to them, unread first."""

from __future__ import annotations

from aiohttp import web

from bot.store import desk_reads, record_reads
from bot.web.context import desk_of, viewer_of
from bot.web.render import local, page

SHOWN = 30


async def page_notices(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    async with the_desk.reader.connection() as conn:
        sent = await record_reads.notices_sent(conn, viewer.staff.id, SHOWN)
        unread = await record_reads.unread_names(conn, [n.id for n in sent])
        received = await record_reads.notices_received(conn, viewer.staff.id, SHOWN)
        senders = await desk_reads.names(conn, [n.sender_id for n in received])
    return page(
        request,
        "notices.html",
        sent=sent,
        unread=unread,
        received=received,
        senders=senders,
        local=local,
        zone=viewer.access.tree.timezone(viewer.staff.unit_id, the_desk.default_timezone),
    )
