"""People (`/people`): who is on the roster, by unit, and where they have
signed in. Supervisors read their units' people; admins every unit's, with
phone numbers, and they alone upload a roster or the elder-care client list
(the same all-or-nothing imports as `frontline roster import` and
`frontline clients import`, their problems listed by line) and deactivate
someone (audited with who did it)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import clients, roster
from bot.clock import iso
from bot.model import Role
from bot.store import desk_reads, record_reads
from bot.store import roster as roster_store
from bot.web.context import LANGUAGE, desk_of, redirect, viewer_of
from bot.web.filters import PAGE_SIZE
from bot.web.render import page

log = logging.getLogger(__name__)

# The largest roster file the desk takes (the row limit is the importer's).
MAX_UPLOAD = 10 * 1024 * 1024
SUFFIXES = (".csv", ".xlsx")


async def page_people(request: web.Request, **shown: Any) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    access = viewer.access
    is_admin = viewer.staff.has(Role.ADMIN)
    if not (is_admin or viewer.staff.has(Role.SUPERVISOR)):
        raise web.HTTPForbidden()
    search = request.query.get("q", "").strip()[:40]
    number = request.query.get("page", "1")
    page_no = max(1, min(int(number), 100_000)) if number.isdecimal() else 1
    async with the_desk.reader.connection() as conn:
        lines, total = await record_reads.people(
            conn,
            None if is_admin else access.units(),
            search=search,
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
        )
    return page(
        request,
        "people.html",
        lines=lines,
        total=total,
        search=search,
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
        is_admin=is_admin,
        paths={line.staff.unit_id: access.tree.path(line.staff.unit_id) for line in lines},
        roles=tuple(Role),
        **shown,
    )


def _admin(request: web.Request) -> None:
    if not viewer_of(request).staff.has(Role.ADMIN):
        raise web.HTTPForbidden()


async def upload_roster(request: web.Request) -> web.Response:
    """Import an uploaded roster: all of it, or nothing and every problem by line."""
    _admin(request)
    the_desk, viewer = desk_of(request), viewer_of(request)
    form = await request.post()
    upload = form.get("roster")
    filename = str(getattr(upload, "filename", "") or "")
    suffix = Path(filename).suffix.lower()
    language = request.get(LANGUAGE, the_desk.default_language)
    if upload is None or not hasattr(upload, "file") or suffix not in SUFFIXES:
        return await page_people(request, problems=[roster.describe(_wrong_file(), language)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"roster{suffix}"
        path.write_bytes(upload.file.read(MAX_UPLOAD + 1))
        if path.stat().st_size > MAX_UPLOAD:
            return await page_people(request, problems=[roster.describe(_wrong_file(), language)])
        try:
            result = await roster.import_roster_file(
                the_desk.db,
                path,
                deactivate_missing=form.get("deactivate_missing") == "1",
                default_language=the_desk.default_language,
                now=the_desk.clock.now(),
            )
        except roster.RosterError as exc:
            problems = [roster.describe(problem, language) for problem in exc.problems]
            return await page_people(request, problems=problems)
    log.info("desk roster imported by staff=%s created=%s", viewer.staff.id, result.created)
    return await page_people(request, imported=result)


async def upload_clients(request: web.Request) -> web.Response:
    """Import an uploaded client list: all of it, or nothing and every problem
    by line; the audit rows name the admin who uploaded it."""
    _admin(request)
    the_desk, viewer = desk_of(request), viewer_of(request)
    form = await request.post()
    upload = form.get("clients")
    filename = str(getattr(upload, "filename", "") or "")
    suffix = Path(filename).suffix.lower()
    language = request.get(LANGUAGE, the_desk.default_language)

    def refused(key: str) -> roster.RosterProblem:
        return roster.RosterProblem(None, key, {"mb": MAX_UPLOAD // (1024 * 1024)})

    if upload is None or not hasattr(upload, "file") or suffix not in SUFFIXES:
        problem = refused("web.upload_wrong_type")
        return await page_people(request, client_problems=[clients.describe(problem, language)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"clients{suffix}"
        path.write_bytes(upload.file.read(MAX_UPLOAD + 1))
        if path.stat().st_size > MAX_UPLOAD:
            problem = refused("web.upload_too_large")
            return await page_people(request, client_problems=[clients.describe(problem, language)])
        try:
            result = await clients.import_clients_file(
                the_desk.db,
                path,
                deactivate_missing=form.get("deactivate_missing") == "1",
                now=the_desk.clock.now(),
                actor_id=viewer.staff.id,
            )
        except clients.ClientsError as exc:
            problems = [clients.describe(problem, language) for problem in exc.problems]
            return await page_people(request, client_problems=problems)
    log.info("desk clients imported by staff=%s created=%s", viewer.staff.id, result.created)
    return await page_people(request, clients_imported=result)


def _wrong_file() -> roster.RosterProblem:
    return roster.RosterProblem(None, "web.roster_wrong_file", {})


async def confirm_deactivate(request: web.Request) -> web.Response:
    """Deactivating someone is asked once more, on its own page."""
    _admin(request)
    the_desk, viewer = desk_of(request), viewer_of(request)
    staff_id = int(request.match_info["staff_id"])
    async with the_desk.reader.connection() as conn:
        person = await desk_reads.staff(conn, staff_id)
    if person is None or not person.active or person.id == viewer.staff.id:
        raise web.HTTPNotFound()
    return page(
        request, "deactivate.html", person=person, unit=viewer.access.tree.path(person.unit_id)
    )


async def deactivate(request: web.Request) -> web.Response:
    _admin(request)
    the_desk, viewer = desk_of(request), viewer_of(request)
    staff_id = int(request.match_info["staff_id"])
    if staff_id == viewer.staff.id:  # an admin does not lock themselves out
        raise web.HTTPForbidden()
    now = iso(the_desk.clock.now())
    await the_desk.db.transaction(
        lambda conn: roster_store.deactivate_staff(
            conn, staff_id, now, reason="deactivated_on_desk", actor_id=viewer.staff.id
        )
    )
    return redirect("/people")
