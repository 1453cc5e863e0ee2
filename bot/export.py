"""Registers out (台账导出): each register as rows for an auditor, in the unit's
local time and the reader's language, streamed from SQLite in chunks into an
XLSX sheet or a CSV file. It reads only; it never changes a record."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.drawing.image import Image as XLImage
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from PIL import Image as PILImage

from bot.i18n import catalog, t
from bot.store import people
from schedules.clock import iso

Cell = str | int | float | None
CHUNK = 2000
# Text a spreadsheet would read as a formula (or as the start of one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Period:
    """Local dates, both included."""

    first: date
    last: date

    def bounds(self, timezone: str) -> tuple[str, str]:
        """The period as UTC ISO bounds [start, end) in `timezone`."""
        zone = ZoneInfo(timezone)
        start = datetime.combine(self.first, time(), zone)
        end = datetime.combine(self.last + timedelta(days=1), time(), zone)
        return iso(start), iso(end)


@dataclass(slots=True)
class Source:
    """What a register's rows are read with: the connection, who reads, which
    units (None: all) and which period."""

    conn: sqlite3.Connection
    language: str
    period: Period
    root_unit: int | None
    default_timezone: str
    media_dir: Path
    now: datetime
    _zones: dict[int, ZoneInfo] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[str, str]:
        zone = (
            people.unit_timezone(self.conn, self.root_unit, self.default_timezone)
            if self.root_unit is not None
            else self.default_timezone
        )
        return self.period.bounds(zone)

    def local(self, moment: str | None, unit_id: int) -> str:
        """A stored UTC time as the unit's local 'YYYY-MM-DD HH:MM'."""
        if not moment:
            return ""
        zone = self._zones.get(unit_id)
        if zone is None:
            zone = ZoneInfo(people.unit_timezone(self.conn, unit_id, self.default_timezone))
            self._zones[unit_id] = zone
        return datetime.fromisoformat(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def label(self, key: str, value: str | None) -> str:
        """The catalog's word for a stored value (`key` names it), or the value itself."""
        if not value:
            return ""
        return catalog(self.language).get(key) or value

    def link(self, media_path: str | None) -> str:
        return (self.media_dir / media_path).resolve().as_uri() if media_path else ""

    def links(self, photos_json: str | None, *single: str | None) -> str:
        paths = [p for p in single if p]
        if photos_json:
            paths += [str(p) for p in json.loads(photos_json)]
        return "\n".join(self.link(p) for p in dict.fromkeys(paths))

    def rows(self, sql: str, params: Sequence[object]) -> Iterator[sqlite3.Row]:
        """The query's rows, fetched a chunk at a time."""
        cursor = self.conn.execute(sql, params)
        try:
            while chunk := cursor.fetchmany(CHUNK):
                yield from chunk
        finally:
            cursor.close()

    def scoped(self, sql: str, params: Sequence[object]) -> Iterator[sqlite3.Row]:
        """`sql` with the unit subtree as the CTE `scope(id)`; `{unit}` in it
        stands for the condition on a unit column."""
        return self.rows(
            "WITH RECURSIVE scope(id) AS (SELECT ? UNION ALL"
            " SELECT u.id FROM units u JOIN scope s ON u.parent_id = s.id) " + sql,
            (self.root_unit, *params),
        )

    def within(self, column: str) -> str:
        if self.root_unit is None:
            return "1 = 1"
        return f"{column} IN (SELECT id FROM scope)"


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    columns: tuple[str, ...]  # keys under `export.col_`
    widths: tuple[int, ...]
    rows: Callable[[Source], Iterator[list[Cell]]]

    def headers(self, language: str) -> list[str]:
        return [t(language, f"export.col_{column}") for column in self.columns]


class ExportError(Exception):
    """Bad input to an export; carries a catalog key."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


# -- the registers ---------------------------------------------------------------


def _checklists(src: Source) -> Iterator[list[Cell]]:
    from handlers.checklists import load_all  # the checklist files live with their flow

    titles = {
        (c.id, item.key): item.text.get(src.language)
        for c in load_all().values()
        for item in c.items
    }
    names = {c.id: c.title.get(src.language) for c in load_all().values()}
    start, end = src.bounds
    for row in src.scoped(
        "SELECT r.id AS run, r.checklist, s.name AS person, u.path AS unit, r.unit_id,"
        " r.local_date, r.started_at, r.completed_at, a.item, a.answer, a.note,"
        " a.answered_at, h.number AS hazard, h.photo, h.photos"
        " FROM checklist_runs r JOIN checklist_answers a ON a.run_id = r.id"
        " JOIN staff s ON s.id = r.staff_id JOIN units u ON u.id = r.unit_id"
        " LEFT JOIN hazards h ON h.id = a.hazard_id"
        f" WHERE r.started_at >= ? AND r.started_at < ? AND {src.within('r.unit_id')}"
        " ORDER BY r.id, a.id",
        (start, end),
    ):
        unit = row["unit_id"]
        yield [
            row["run"],
            names.get(row["checklist"], row["checklist"]),
            row["person"],
            row["unit"],
            row["local_date"],
            src.local(row["started_at"], unit),
            src.local(row["completed_at"], unit),
            titles.get((row["checklist"], row["item"]), row["item"]),
            src.label(f"export.answer_{row['answer']}", row["answer"]),
            row["note"] or "",
            src.local(row["answered_at"], unit),
            row["hazard"] or "",
            src.links(row["photos"], row["photo"]),
        ]


def _hazards(src: Source) -> Iterator[list[Cell]]:
    start, end = src.bounds
    for row in src.scoped(
        "SELECT h.*, u.path AS unit, rep.name AS reporter, resp.name AS responsible,"
        " acc.name AS acceptor FROM hazards h JOIN units u ON u.id = h.unit_id"
        " JOIN staff rep ON rep.id = h.reported_by"
        " LEFT JOIN staff resp ON resp.id = h.responsible_id"
        " LEFT JOIN staff acc ON acc.id = h.accepted_by"
        f" WHERE h.created_at >= ? AND h.created_at < ? AND {src.within('h.unit_id')}"
        " ORDER BY h.id",
        (start, end),
    ):
        unit = row["unit_id"]
        yield [
            row["number"] or f"#{row['id']}",
            row["unit"],
            row["reporter"],
            src.local(row["created_at"], unit),
            src.label(f"hazard.category_{row['category']}", row["category"]),
            src.label(f"hazard.severity_{row['severity']}", row["severity"]),
            row["place"] or "",
            row["description"],
            src.label(f"hazards.status_{row['status']}", row["status"]),
            row["responsible"] or "",
            row["measure"] or "",
            src.local(row["deadline_at"], unit),
            row["funding"] or "",
            row["interim_measures"] or "",
            row["rectification"] or "",
            row["acceptor"] or "",
            src.local(row["closed_at"], unit),
            _history(src, "hazard", row["id"], unit),
            src.links(row["photos"], row["photo"]),
            src.links(row["rectification_photos"]),
        ]


def _history(src: Source, entity: str, entity_id: int, unit: int) -> str:
    rows = src.conn.execute(
        "SELECT a.at, a.action, s.name FROM audit_log a LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = ? AND a.entity_id = ? ORDER BY a.id",
        (entity, entity_id),
    ).fetchall()
    system = t(src.language, "export.system")
    words = catalog(src.language)
    lines = []
    for r in rows:
        action = words.get(f"{entity}.did_{r['action']}", r["action"])
        lines.append(f"{src.local(r['at'], unit)} {r['name'] or system}: {action}")
    return "\n".join(lines)


def _orders(src: Source) -> Iterator[list[Cell]]:
    start, end = src.bounds
    for row in src.scoped(
        "SELECT o.*, h.number AS hazard, h.unit_id, h.status, u.path AS unit, s.name AS issuer"
        " FROM rectification_orders o JOIN hazards h ON h.id = o.hazard_id"
        " JOIN units u ON u.id = h.unit_id JOIN staff s ON s.id = o.issued_by"
        f" WHERE o.issued_at >= ? AND o.issued_at < ? AND {src.within('h.unit_id')}"
        " ORDER BY o.id",
        (start, end),
    ):
        unit = row["unit_id"]
        yield [
            row["number"],
            row["hazard"] or "",
            row["unit"],
            row["issuer"],
            src.local(row["issued_at"], unit),
            src.local(row["deadline_at"], unit),
            row["requirement"],
            src.label(f"hazards.status_{row['status']}", row["status"]),
        ]


def report_status(due_at: str, submitted_at: str | None, now: datetime) -> str:
    """Where the 15-day report stands: 'on_time', 'late', 'overdue' or 'pending'."""
    if submitted_at:
        return "on_time" if submitted_at <= due_at else "late"
    return "overdue" if iso(now) > due_at else "pending"


def _incidents(src: Source) -> Iterator[list[Cell]]:
    start, end = src.bounds
    for row in src.scoped(
        "SELECT i.*, u.path AS unit, rep.name AS reporter, sub.name AS submitter"
        " FROM incidents i JOIN units u ON u.id = i.unit_id"
        " JOIN staff rep ON rep.id = i.reported_by"
        " LEFT JOIN staff sub ON sub.id = i.report_submitted_by"
        f" WHERE i.occurred_at >= ? AND i.occurred_at < ? AND {src.within('i.unit_id')}"
        " ORDER BY i.id",
        (start, end),
    ):
        unit = row["unit_id"]
        status = report_status(row["report_due_at"], row["report_submitted_at"], src.now)
        yield [
            row["number"],
            row["unit"],
            row["reporter"],
            src.local(row["occurred_at"], unit),
            row["place"],
            src.label(f"incident.kind_{row['kind']}", row["kind"]),
            row["description"],
            row["hurt_count"],
            row["hurt_names"] or "",
            row["first_actions"] or "",
            src.label(f"export.investigation_{row['investigation']}", row["investigation"]),
            src.local(row["report_due_at"], unit),
            t(src.language, f"export.report_{status}"),
            row["report_reference"] or "",
            src.local(row["report_submitted_at"], unit),
            row["submitter"] or "",
            src.links(row["photos"]),
        ]


def _drills(src: Source) -> Iterator[list[Cell]]:
    start, end = src.bounds
    for row in src.scoped(
        "SELECT d.*, u.path AS unit, s.name AS organiser, h.number AS hazard"
        " FROM drills d JOIN units u ON u.id = d.unit_id JOIN staff s ON s.id = d.organiser_id"
        " LEFT JOIN hazards h ON h.id = d.hazard_id"
        f" WHERE d.at >= ? AND d.at < ? AND {src.within('d.unit_id')} ORDER BY d.at, d.id",
        (start, end),
    ):
        unit = row["unit_id"]
        yield [
            row["unit"],
            src.label(f"drill.kind_{row['kind']}", row["kind"]),
            src.local(row["at"], unit),
            row["organiser"],
            src.label(f"export.drill_state_{row['state']}", row["state"]),
            row["participants"],
            row["minutes"],
            row["problems"] or "",
            row["hazard"] or "",
            src.local(row["recorded_at"], unit),
            src.links(None, row["photo"]),
        ]


def _trainings(src: Source) -> Iterator[list[Cell]]:
    for row in src.scoped(
        "SELECT tr.*, s.name AS person, s.unit_id, u.path AS unit, rec.name AS recorder"
        " FROM trainings tr JOIN staff s ON s.id = tr.staff_id JOIN units u ON u.id = s.unit_id"
        " JOIN staff rec ON rec.id = tr.recorded_by"
        f" WHERE tr.held_on >= ? AND tr.held_on <= ? AND {src.within('s.unit_id')}"
        " ORDER BY tr.held_on, tr.id",
        (src.period.first.isoformat(), src.period.last.isoformat()),
    ):
        yield [
            row["person"],
            row["unit"],
            src.label(f"export.training_{row['kind']}", row["kind"]),
            row["held_on"],
            row["recorder"],
            src.local(row["recorded_at"], row["unit_id"]),
        ]


def _notices(src: Source) -> Iterator[list[Cell]]:
    start, end = src.bounds
    yes, no = t(src.language, "export.yes"), t(src.language, "export.no")
    for row in src.scoped(
        "SELECT n.id, n.created_at, n.text, n.confidential, n.attachment, snd.name AS sender,"
        " r.read_at, s.name AS reader, s.unit_id, u.path AS unit"
        " FROM notices n JOIN notice_recipients r ON r.notice_id = n.id"
        " JOIN staff snd ON snd.id = n.sender_id JOIN staff s ON s.id = r.staff_id"
        " JOIN units u ON u.id = s.unit_id"
        f" WHERE n.created_at >= ? AND n.created_at < ? AND {src.within('s.unit_id')}"
        " ORDER BY n.id, s.id",
        (start, end),
    ):
        unit = row["unit_id"]
        yield [
            row["id"],
            src.local(row["created_at"], unit),
            row["sender"],
            row["text"],
            yes if row["confidential"] else no,
            row["reader"],
            row["unit"],
            src.local(row["read_at"], unit) or t(src.language, "export.unread"),
            src.links(None, row["attachment"]),
        ]


def _visits(src: Source) -> Iterator[list[Cell]]:
    start, end = src.bounds
    for row in src.scoped(
        "SELECT v.*, c.number AS client_no, c.name AS client, c.address, s.name AS worker,"
        " u.path AS unit, q.services AS planned,"
        " (SELECT group_concat(f.satisfaction || '★ ' || COALESCE(f.comments, ''), char(10))"
        "  FROM visit_followups f WHERE f.visit_id = v.id) AS followups"
        " FROM visits v JOIN clients c ON c.id = v.client_id JOIN staff s ON s.id = v.worker_id"
        " JOIN units u ON u.id = v.unit_id LEFT JOIN visit_requests q ON q.id = v.request_id"
        f" WHERE v.checkin_at >= ? AND v.checkin_at < ? AND {src.within('v.unit_id')}"
        " ORDER BY v.checkin_at, v.id",
        (start, end),
    ):
        unit = row["unit_id"]
        yield [
            row["id"],
            _services(src, row["planned"]),
            f"{row['client']} ({row['client_no']})",
            row["worker"],
            row["unit"],
            src.local(row["checkin_at"], unit)[:10],
            row["address"],
            _place(row["checkin_lat"], row["checkin_lon"]),
            src.local(row["checkin_at"], unit),
            src.local(row["checkout_at"], unit),
            _metres(row["checkin_distance_m"]),
            _metres(row["checkout_distance_m"]),
            _exceptions(src, row),
            _services(src, row["services"]),
            _gifts(src, row),
            row["followups"] or "",
        ]


def _services(src: Source, services_json: str | None) -> str:
    from handlers import care  # the care plan's services live with the visit flow

    keys = json.loads(services_json) if services_json else []
    return "、".join(care.title(str(key), src.language) for key in keys)


def _gifts(src: Source, row: sqlite3.Row) -> str:
    """What the worker declared about gifts at check-out, with their account."""
    outcome = src.label(f"export.gifts_{row['gifts']}", row["gifts"])
    if not row["gifts_note"]:
        return outcome
    return t(src.language, "export.gifts_with_note", outcome=outcome, note=row["gifts_note"])


def _place(lat: float | None, lon: float | None) -> str:
    return f"{lat:.6f},{lon:.6f}" if lat is not None and lon is not None else ""


def _metres(value: float | None) -> int | None:
    return round(value) if value is not None else None


def _exceptions(src: Source, row: sqlite3.Row) -> str:
    lines = []
    for side in ("checkin", "checkout"):
        if row[f"{side}_exception"]:
            reason = src.label(f"visit.reason_{row[f'{side}_reason']}", row[f"{side}_reason"])
            note = row[f"{side}_note"] or ""
            kind = src.label(
                f"export.exception_{row[f'{side}_exception']}", row[f"{side}_exception"]
            )
            lines.append(f"{t(src.language, f'export.{side}')}: {kind} {reason} {note}".strip())
    return "\n".join(lines)


REGISTERS: dict[str, Register] = {
    r.name: r
    for r in (
        Register(
            "checklists",
            (
                "run",
                "checklist",
                "person",
                "unit",
                "local_date",
                "started",
                "completed",
                "item",
                "answer",
                "note",
                "answered",
                "hazard",
                "photos",
            ),
            (8, 18, 10, 24, 12, 17, 17, 30, 8, 30, 17, 14, 40),
            _checklists,
        ),
        Register(
            "hazards",
            (
                "number",
                "unit",
                "reporter",
                "reported",
                "category",
                "severity",
                "place",
                "description",
                "status",
                "responsible",
                "measure",
                "deadline",
                "funding",
                "interim",
                "rectification",
                "accepted_by",
                "closed",
                "history",
                "photos",
                "rectification_photos",
            ),
            (16, 24, 10, 17, 14, 10, 16, 36, 12, 10, 30, 17, 10, 24, 30, 10, 17, 50, 40, 40),
            _hazards,
        ),
        Register(
            "orders",
            (
                "number",
                "hazard",
                "unit",
                "issued_by",
                "issued",
                "deadline",
                "requirement",
                "status",
            ),
            (16, 16, 24, 10, 17, 17, 40, 12),
            _orders,
        ),
        Register(
            "incidents",
            (
                "number",
                "unit",
                "reporter",
                "occurred",
                "place",
                "kind",
                "description",
                "hurt_count",
                "hurt_names",
                "first_actions",
                "investigation",
                "report_due",
                "report_status",
                "report_reference",
                "report_submitted",
                "submitted_by",
                "photos",
            ),
            (16, 24, 10, 17, 16, 12, 36, 8, 16, 30, 12, 17, 12, 16, 17, 10, 40),
            _incidents,
        ),
        Register(
            "drills",
            (
                "unit",
                "drill_kind",
                "at",
                "organiser",
                "state",
                "participants",
                "minutes",
                "problems",
                "hazard",
                "recorded",
                "photos",
            ),
            (24, 12, 17, 10, 10, 8, 8, 36, 16, 17, 40),
            _drills,
        ),
        Register(
            "trainings",
            ("person", "unit", "training_kind", "held_on", "recorded_by", "recorded"),
            (10, 24, 12, 12, 10, 17),
            _trainings,
        ),
        Register(
            "notices",
            (
                "notice",
                "sent",
                "sender",
                "text",
                "confidential",
                "recipient",
                "unit",
                "read",
                "photos",
            ),
            (8, 17, 10, 40, 8, 10, 24, 17, 40),
            _notices,
        ),
        Register(
            "visits",
            (
                "visit",
                "service",
                "client",
                "worker",
                "unit",
                "date",
                "location",
                "checkin_place",
                "start",
                "end",
                "checkin_distance",
                "checkout_distance",
                "exceptions",
                "services_done",
                "gifts",
                "followups",
            ),
            (8, 24, 18, 10, 24, 12, 30, 22, 17, 17, 10, 10, 36, 24, 30, 30),
            _visits,
        ),
    )
}


# -- writers -----------------------------------------------------------------------


def csv_safe(value: Cell) -> Cell:
    """Text a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(path: Path, headers: Sequence[str], rows: Iterator[list[Cell]]) -> int:
    """UTF-8 with a BOM, so that Excel opens it as UTF-8; returns the row count."""
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([csv_safe(value) for value in row])
            count += 1
    return count


def write_xlsx(
    path: Path,
    sheets: Sequence[tuple[str, Sequence[str], Sequence[int], Iterator[list[Cell]]]],
    *,
    thumbnails: str | None = None,
) -> int:
    """One streamed sheet per (title, headers, widths, rows): frozen header row,
    autofilter, column widths; every text cell is stored as text, never as a
    formula. With `thumbnails` (that column's header), each row's first photo
    is embedded as a small picture in an extra last column. Returns the number
    of rows written."""
    workbook = Workbook(write_only=True)
    total = 0
    for title, headers, widths, rows in sheets:
        sheet: WriteOnlyWorksheet = workbook.create_sheet(title[:31])
        sheet.freeze_panes = "A2"
        columns = [*headers, thumbnails] if thumbnails else list(headers)
        for index, width in enumerate([*widths, THUMBNAIL_WIDTH], 1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.append([_xlsx_cell(sheet, header) for header in columns])
        count = 0
        for row in rows:
            sheet.append([_xlsx_cell(sheet, value) for value in row])
            count += 1
            if thumbnails:
                picture = thumbnail(row)
                if picture is not None:
                    sheet.add_image(picture, f"{get_column_letter(len(columns))}{count + 1}")
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count + 1}"
        total += count
    workbook.save(path)
    return total


# --with-photos: a thumbnail of each row's first photo, this many pixels on its longer side.
THUMBNAIL_PIXELS = 96
THUMBNAIL_WIDTH = 14


def thumbnail(row: list[Cell]) -> XLImage | None:
    """A small picture of the row's first photo (its link column holds file:// URIs);
    None when the row has none, or the file is missing or not an image."""
    link = next((v for v in row if isinstance(v, str) and v.startswith("file://")), None)
    if link is None:
        return None
    path = Path(unquote(urlsplit(link.split("\n", 1)[0]).path))
    try:
        with PILImage.open(path) as image:
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            buffer = BytesIO()
            image.convert("RGB").save(buffer, "PNG")
            size = image.size
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None
    picture = XLImage(buffer)
    picture.width, picture.height = size
    return picture


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Cell) -> Cell | WriteOnlyCell:
    if not isinstance(value, str):
        return value
    text: str = ILLEGAL_CHARACTERS_RE.sub("", value)
    if text.startswith("="):
        # openpyxl stores text starting with '=' as a formula unless told otherwise.
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        return cell
    return text


def export(
    src: Source,
    register: Register,
    path: Path,
    file_format: str = "xlsx",
    *,
    with_photos: bool = False,
) -> int:
    """Write one register to `path`, readable by its owner only; returns the
    number of rows. `with_photos` (XLSX only) embeds a thumbnail of each row's
    first photo; the thumbnails (a few KB each) are held until the file is written."""
    headers = register.headers(src.language)
    create_private(path)
    if file_format == "csv":
        return write_csv(path, headers, register.rows(src))
    title = t(src.language, f"export.register_{register.name}")
    label = t(src.language, "export.thumbnail") if with_photos else None
    return write_xlsx(
        path, [(title, headers, register.widths, register.rows(src))], thumbnails=label
    )


def create_private(path: Path) -> None:
    """Create `path` empty and readable by its owner only (whatever the umask),
    before a byte is written to it: registers carry personal data, like the
    database and the media folder. The writers then open it, keeping the mode."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)  # a file that was already there keeps its mode otherwise


PERIODS = ("week", "month", "last_month", "quarter", "year")


def named_period(kind: str, today: date) -> Period:
    """This week (from Monday), this month, last month, this quarter or this
    year, around the local date `today`."""
    if kind == "week":
        monday = today - timedelta(days=today.weekday())
        return Period(monday, monday + timedelta(days=6))
    if kind == "month":
        return Period(today.replace(day=1), _month_end(today.year, today.month))
    if kind == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return Period(last.replace(day=1), last)
    if kind == "quarter":
        first_month = (today.month - 1) // 3 * 3 + 1
        return Period(date(today.year, first_month, 1), _month_end(today.year, first_month + 2))
    if kind == "year":
        return Period(date(today.year, 1, 1), date(today.year, 12, 31))
    raise ValueError(f"unknown period {kind}")


def _month_end(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)
