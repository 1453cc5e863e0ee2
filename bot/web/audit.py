"""The audit log (`/audit`), for admins: every state change, newest first,
who did it and when, optionally one kind of record (hazard, staff, ...)."""

from __future__ import annotations

import json

from aiohttp import web

from bot.model import Role
from bot.store import hazard_reads, record_reads
from bot.web.context import desk_of, viewer_of
from bot.web.render import local, page

PAGE = 50


async def page_audit(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    if not viewer.staff.has(Role.ADMIN):
        raise web.HTTPForbidden()
    entity = request.query.get("entity", "").strip()[:30]
    wanted = request.query.get("id", "")
    entity_id = int(wanted) if wanted.isdecimal() and len(wanted) < 10 else None
    number = request.query.get("page", "1")
    page_no = max(1, min(int(number), 100_000)) if number.isdecimal() else 1
    async with the_desk.reader.connection() as conn:
        entities = await record_reads.audit_entities(conn)
        lines = await record_reads.audit_log(
            conn,
            entity=entity if entity in entities else None,
            entity_id=entity_id,
            limit=PAGE + 1,
            offset=(page_no - 1) * PAGE,
        )
        numbers = await hazard_reads.hazard_numbers(
            conn, [line.entity_id for line in lines if line.entity == "hazard"]
        )
    return page(
        request,
        "audit.html",
        lines=lines[:PAGE],
        details={line.id: readable(line.detail) for line in lines},
        more=len(lines) > PAGE,
        entities=entities,
        entity=entity,
        entity_id=entity_id,
        page_no=page_no,
        numbers=numbers,
        local=local,
        zone=the_desk.default_timezone,
    )


def readable(detail: str) -> str:
    """An audit row's JSON detail as 'key: value' pairs, Chinese as Chinese."""
    try:
        value = json.loads(detail) if detail else {}
    except ValueError:
        return detail
    if not isinstance(value, dict):
        return str(value)
    return " · ".join(f"{key}: {item}" for key, item in value.items() if item not in (None, ""))
