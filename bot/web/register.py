"""The hazard register (`/hazards`): what this person may read, narrowed by
the filters in the URL (unit subtree, status, severity, category, period,
overdue, responsible person, a search of description and place), sorted and
paged; "export this view" (`/hazards.xlsx`) writes exactly those rows."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

from bot.clock import iso
from bot.hazard_rules import CATEGORIES, SEVERITIES
from bot.i18n import t
from bot.store import desk_reads, hazard_reads
from bot.store.hazard_reads import ExportLine, HazardLine, HazardQuery
from bot.web import filters as register_filters
from bot.web.context import LANGUAGE, Viewer, desk_of, viewer_of
from bot.web.filters import PAGE_SIZE, STATUSES, Filters
from bot.web.render import local, page, word

# An export is one spreadsheet a person can open: this many rows at most.
EXPORT_LIMIT = 100_000


async def _query(request: web.Request, viewer: Viewer, chosen: Filters) -> HazardQuery:
    the_desk = desk_of(request)
    responsible: tuple[int, ...] | None = None
    async with the_desk.reader.connection() as conn:
        if chosen.responsible:
            responsible = tuple(await desk_reads.staff_named(conn, chosen.responsible))
    return register_filters.query(
        chosen,
        viewer.access.hazard_scope(),
        viewer.access.tree,
        timezone=viewer.access.tree.timezone(viewer.staff.unit_id, the_desk.default_timezone),
        now=the_desk.clock.now(),
        responsible_ids=responsible,
    )


@dataclass(frozen=True, slots=True)
class Row:
    line: HazardLine
    unit: str
    responsible: str
    deadline: str
    created: str
    overdue: bool


async def page_register(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    chosen = register_filters.parse(request.query)
    query = await _query(request, viewer, chosen)
    tree = viewer.access.tree
    now = the_desk.clock.now()
    async with the_desk.reader.connection() as conn:
        lines, total = await hazard_reads.register(
            conn, query, limit=PAGE_SIZE, offset=(chosen.page - 1) * PAGE_SIZE
        )
        names = await desk_reads.names(conn, [line.responsible_id or 0 for line in lines])
    rows = [
        Row(
            line=line,
            unit=tree.path(line.unit_id),
            responsible=names.get(line.responsible_id or 0, ""),
            deadline=local(
                line.deadline_at, tree.timezone(line.unit_id, the_desk.default_timezone)
            ),
            created=local(line.created_at, tree.timezone(line.unit_id, the_desk.default_timezone)),
            overdue=line.status not in ("closed", "submitted") and line.deadline_at < iso(now),
        )
        for line in lines
    ]
    pages = max(1, -(-total // PAGE_SIZE))
    return page(
        request,
        "register.html",
        rows=rows,
        total=total,
        filters=chosen,
        pages=pages,
        units=[(uid, tree.depth(uid), tree.by_id[uid].name) for uid in viewer.access.units()],
        statuses=STATUSES,
        severities=SEVERITIES,
        categories=CATEGORIES,
        sorts=register_filters.SORTS,
    )


# -- the spreadsheet ------------------------------------------------------------------
COLUMNS = (
    ("number", 14),
    ("unit", 28),
    ("reported", 17),
    ("category", 14),
    ("severity", 10),
    ("place", 20),
    ("description", 40),
    ("status", 14),
    ("responsible", 10),
    ("measure", 30),
    ("deadline", 17),
    ("funding", 10),
    ("interim", 30),
    ("rectification", 30),
    ("acceptor", 10),
    ("closed", 17),
    ("history", 50),
    ("photos", 40),
)


def _cells(
    item: ExportLine,
    language: str,
    *,
    unit: str,
    timezone: str,
    names: dict[int, str],
    history: Sequence[hazard_reads.HistoryEntry],
    media_url: str,
) -> list[object]:
    line = item.line
    trail = "\n".join(
        f"{local(h.at, timezone)} {h.actor or t(language, 'web.system')}:"
        f" {word(language, f'hazard.did_{h.action}', h.action)}"
        for h in history
    )
    photos = [f"{media_url}/{line.number}/{n}" for n in range(len(item.photos))]
    return [
        line.number,
        unit,
        local(line.created_at, timezone),
        word(language, f"hazard.category_{line.category}", line.category),
        word(language, f"hazard.severity_{line.severity}", line.severity),
        line.place,
        line.description,
        word(language, f"hazards.status_{line.status}", line.status),
        names.get(line.responsible_id or 0, ""),
        item.measure,
        local(line.deadline_at, timezone),
        item.funding,
        item.interim_measures,
        item.rectification,
        names.get(item.accepted_by or 0, ""),
        local(line.closed_at, timezone),
        trail,
        "\n".join(photos),
    ]


def _text_cell(sheet: object, value: object) -> object:
    """Text is stored as text: a description starting with '=' is not a formula."""
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def write_workbook(language: str, rows: list[list[object]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(t(language, "web.export_sheet")[:31])
    sheet.freeze_panes = "A2"
    for index, (_, width) in enumerate(COLUMNS, 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append([t(language, f"web.col_{name}") for name, _ in COLUMNS])
    for row in rows:
        sheet.append([_text_cell(sheet, value) for value in row])
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def export_view(request: web.Request) -> web.Response:
    the_desk, viewer = desk_of(request), viewer_of(request)
    chosen = register_filters.parse(request.query)
    query = await _query(request, viewer, chosen)
    tree = viewer.access.tree
    language = request.get(LANGUAGE, "zh-CN")
    async with the_desk.reader.connection() as conn:
        items = await hazard_reads.register_export(conn, query, EXPORT_LIMIT)
        people = [i.line.responsible_id or 0 for i in items] + [i.accepted_by or 0 for i in items]
        names = await desk_reads.names(conn, people)
        histories = await hazard_reads.histories(conn, [i.line.id for i in items])
    rows = [
        _cells(
            item,
            language,
            unit=tree.path(item.line.unit_id),
            timezone=tree.timezone(item.line.unit_id, the_desk.default_timezone),
            names=names,
            history=histories.get(item.line.id, []),
            media_url=f"{the_desk.web_url}/media",
        )
        for item in items
    ]
    body = await asyncio.to_thread(write_workbook, language, rows)
    stamp = the_desk.clock.now().strftime("%Y%m%d-%H%M")
    return web.Response(
        body=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="hazards-{stamp}.xlsx"'},
    )
