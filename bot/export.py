"""Registers out (台账导出): each register as rows for an auditor, in the unit's
local time and the reader's language, streamed from SQLite in chunks into an
XLSX sheet or a CSV file. It reads only; it never changes a record."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.drawing.image import Image as XLImage
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from PIL import Image as PILImage

from bot import care, checklists
from bot.clock import iso
from bot.i18n import catalog, plain, t
from bot.store import dialect, people

CHUNK = 2000
# Text a spreadsheet would read as a formula (or as the start of one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Photos:
    """A cell's photos: media paths, relative to the media folder."""

    paths: tuple[str, ...]


Value = str | int | float | Decimal | datetime | date | Photos | None


class Kind(Enum):
    """What a column holds, and so how a spreadsheet stores it."""

    TEXT = "text"
    COUNT = "count"  # a number Excel can sum
    MONEY = "money"  # CNY, a number with a currency format
    TIME = "time"  # an Excel date-time in the unit's zone
    DATE = "date"  # a local calendar date
    PHOTOS = "photos"  # links to the photos, one a line


# Excel's own formats for the kinds that are numbers.
NUMBER_FORMATS = {
    Kind.MONEY: "[$¥-804]#,##0.00",
    Kind.TIME: "yyyy-mm-dd hh:mm",
    Kind.DATE: "yyyy-mm-dd",
}


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
    _memo: dict[str, Any] = field(default_factory=dict)
    # None: photos linked as file:// URIs into the media folder (for this
    # server); a folder name: linked relatively under it, to be carried along.
    photo_folder: str | None = None
    linked: set[str] = field(default_factory=set)
    _labels: dict[str, str] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[str, str]:
        zone = (
            people.unit_timezone(self.conn, self.root_unit, self.default_timezone)
            if self.root_unit is not None
            else self.default_timezone
        )
        return self.period.bounds(zone)

    def time(self, moment: str | None, unit_id: int) -> datetime | None:
        """A stored UTC time as the unit's local time (naive, as Excel keeps it)."""
        if not moment:
            return None
        zone = self._zones.get(unit_id)
        if zone is None:
            zone = ZoneInfo(people.unit_timezone(self.conn, unit_id, self.default_timezone))
            self._zones[unit_id] = zone
        return datetime.fromisoformat(moment).astimezone(zone).replace(tzinfo=None)

    def local(self, moment: str | None, unit_id: int) -> str:
        """A stored UTC time as the unit's local 'YYYY-MM-DD HH:MM'."""
        return time_text(self.time(moment, unit_id))

    def label(self, key: str, value: str | None) -> str:
        """The catalog's word for a stored value (`key` names it), or the value
        itself; words only, without the emoji the chat shows beside them."""
        if not value:
            return ""
        words = self._labels.get(key)
        if words is None:
            words = self._labels[key] = plain(catalog(self.language).get(key) or value)
        return words

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """What `make` gives, made once per export (lookup tables)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def link(self, media_path: str) -> str:
        if self.photo_folder is None:
            return (self.media_dir / media_path).resolve().as_uri()
        self.linked.add(media_path)
        return f"{self.photo_folder}/{media_path}"

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
            # BIGINT: PostgreSQL types a bare parameter (or NULL) apart from the ids.
            "WITH RECURSIVE scope(id) AS (SELECT CAST(? AS BIGINT) UNION ALL"
            " SELECT u.id FROM units u JOIN scope s ON u.parent_id = s.id) " + sql,
            (self.root_unit, *params),
        )

    def within(self, column: str) -> str:
        if self.root_unit is None:
            return "1 = 1"
        return f"{column} IN (SELECT id FROM scope)"


def time_text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


CellOf = Callable[[Source, sqlite3.Row], Value]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a register: its header (the catalog's `export.col_<key>`),
    its width, what it holds and how a row gives its cell."""

    key: str
    width: int
    cell: CellOf
    kind: Kind = Kind.TEXT


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    query: Callable[[Source], Iterator[sqlite3.Row]]
    columns: tuple[Column, ...]

    def headers(self, language: str) -> list[str]:
        return [t(language, f"export.col_{column.key}") for column in self.columns]

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(column.width for column in self.columns)

    def rows(self, src: Source) -> Iterator[list[Value]]:
        cells = [column.cell for column in self.columns]
        for row in self.query(src):
            yield [cell(src, row) for cell in cells]


class ExportError(Exception):
    """Bad input to an export; carries a catalog key."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


# -- cells: how a column reads its row ---------------------------------------------------


def value(name: str) -> CellOf:
    return lambda src, row: row[name]


def text(name: str) -> CellOf:
    return lambda src, row: row[name] or ""


def at(name: str) -> CellOf:
    """A stored UTC time, in the row's unit's zone."""
    return lambda src, row: src.time(row[name], row["unit_id"])


def word(name: str, key: Callable[[str], str]) -> CellOf:
    """The catalog's word (under `key` of the stored value) for a coded column."""
    return lambda src, row: src.label(key(row[name]), row[name])


def photos(*names: str, json_list: str | None = None) -> CellOf:
    """The photos in single-path columns `names` and a JSON list column."""

    def cell(src: Source, row: sqlite3.Row) -> Photos:
        paths = [str(row[name]) for name in names if row[name]]
        if json_list and row[json_list]:
            paths += [str(p) for p in json.loads(row[json_list])]
        return Photos(tuple(dict.fromkeys(paths)))

    return cell


def amount(name: str) -> CellOf:
    """Money kept as decimal text ('1200.50'): a Decimal, or the text if it is none."""

    def cell(src: Source, row: sqlite3.Row) -> Value:
        stored = row[name]
        if stored is None or stored == "":
            return None
        try:
            return Decimal(str(stored))
        except InvalidOperation:
            return str(stored)

    return cell


def local_date(name: str) -> CellOf:
    def cell(src: Source, row: sqlite3.Row) -> date | None:
        return date.fromisoformat(row[name]) if row[name] else None

    return cell


# -- the registers ---------------------------------------------------------------


def _checklist_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT r.id AS run, r.checklist, s.name AS person, u.path AS unit, r.unit_id,"
        " r.local_date, r.started_at, r.completed_at, a.item, a.answer, a.note,"
        " a.answered_at, h.number AS hazard, h.photo, h.photos"
        " FROM checklist_runs r JOIN checklist_answers a ON a.run_id = r.id"
        " JOIN staff s ON s.id = r.staff_id JOIN units u ON u.id = r.unit_id"
        " LEFT JOIN hazards h ON h.id = a.hazard_id"
        f" WHERE r.started_at >= ? AND r.started_at < ? AND {src.within('r.unit_id')}"
        " ORDER BY r.id, a.id",
        (start, end),
    )


def _checklist_words(src: Source) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    def make() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        lists = checklists.load_all().values()
        names = {c.id: c.title.get(src.language) for c in lists}
        items = {(c.id, i.key): i.text.get(src.language) for c in lists for i in c.items}
        return names, items

    words: tuple[dict[str, str], dict[tuple[str, str], str]] = src.memo("checklists", make)
    return words


def _checklist_name(src: Source, row: sqlite3.Row) -> str:
    return _checklist_words(src)[0].get(row["checklist"]) or str(row["checklist"])


def _checklist_item(src: Source, row: sqlite3.Row) -> str:
    return _checklist_words(src)[1].get((row["checklist"], row["item"])) or str(row["item"])


def _hazard_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT h.*, u.path AS unit, rep.name AS reporter, resp.name AS responsible,"
        " acc.name AS acceptor FROM hazards h JOIN units u ON u.id = h.unit_id"
        " JOIN staff rep ON rep.id = h.reported_by"
        " LEFT JOIN staff resp ON resp.id = h.responsible_id"
        " LEFT JOIN staff acc ON acc.id = h.accepted_by"
        f" WHERE h.created_at >= ? AND h.created_at < ? AND {src.within('h.unit_id')}"
        " ORDER BY h.id",
        (start, end),
    )


def _hazard_history(src: Source, row: sqlite3.Row) -> str:
    """Every step of the hazard, one a line: when, who, what, and what they
    gave with it (the reason for a send-back, the interim measures, ...)."""
    rows = src.conn.execute(
        "SELECT a.at, a.action, a.detail, s.name FROM audit_log a"
        " LEFT JOIN staff s ON s.id = a.actor_id"
        " WHERE a.entity = 'hazard' AND a.entity_id = ? ORDER BY a.id",
        (row["id"],),
    ).fetchall()
    system = t(src.language, "export.system")
    words = catalog(src.language)
    lines = []
    for r in rows:
        details = _step_details(src, str(r["action"]), r["detail"], row["unit_id"])
        lines.append(
            t(
                src.language,
                "export.history_line",
                at=src.local(r["at"], row["unit_id"]),
                who=r["name"] or system,
                action=plain(words.get(f"hazard.did_{r['action']}", r["action"])),
                details=t(
                    src.language,
                    "export.history_details",
                    details=t(src.language, "export.history_separator").join(details),
                )
                if details
                else "",
            )
        )
    return "\n".join(lines)


# What a step's `description` is, by the action that gave it.
_DESCRIPTIONS = {
    "submit": "export.history_rectification",
    "request_extension": "export.history_interim",
    "order": "export.history_requirement",
}


def _step_details(src: Source, action: str, stored: str | None, unit_id: int) -> list[str]:
    detail = json.loads(stored) if stored else {}
    lang = src.language
    parts = []
    if detail.get("order"):
        parts.append(str(detail["order"]))
    if detail.get("responsible"):
        parts.append(t(lang, "export.history_responsible", name=detail["responsible"]))
    if detail.get("measure"):
        parts.append(t(lang, "export.history_measure", text=detail["measure"]))
    if detail.get("description"):
        key = _DESCRIPTIONS.get(action, "export.history_note")
        parts.append(t(lang, key, text=detail["description"]))
    if detail.get("reason"):
        parts.append(t(lang, "export.history_reason", text=detail["reason"]))
    if detail.get("proposed_deadline_at"):
        at = src.local(str(detail["proposed_deadline_at"]), unit_id)
        parts.append(t(lang, "export.history_proposed", at=at))
    if detail.get("deadline_at"):
        at = src.local(str(detail["deadline_at"]), unit_id)
        parts.append(t(lang, "export.history_deadline", at=at))
    if detail.get("funding") is not None:
        parts.append(t(lang, "export.history_funding", amount=_money(str(detail["funding"]))))
    photos = detail.get("photos") or ([detail["photo"]] if detail.get("photo") else [])
    if photos:
        parts.append(t(lang, "export.history_photos", count=len(photos)))
    return parts


def _money(stored: str) -> str:
    """An amount as text with two decimals and thousands marks (1,200.50)."""
    try:
        return f"{Decimal(stored):,.2f}"
    except InvalidOperation:
        return stored


def _order_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT o.*, h.number AS hazard, h.unit_id, h.status, u.path AS unit, s.name AS issuer"
        " FROM rectification_orders o JOIN hazards h ON h.id = o.hazard_id"
        " JOIN units u ON u.id = h.unit_id JOIN staff s ON s.id = o.issued_by"
        f" WHERE o.issued_at >= ? AND o.issued_at < ? AND {src.within('h.unit_id')}"
        " ORDER BY o.id",
        (start, end),
    )


def report_status(due_at: str, submitted_at: str | None, now: datetime) -> str:
    """Where the 15-day report stands: 'on_time', 'late', 'overdue' or 'pending'."""
    if submitted_at:
        return "on_time" if submitted_at <= due_at else "late"
    return "overdue" if iso(now) > due_at else "pending"


def _incident_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT i.*, u.path AS unit, rep.name AS reporter, sub.name AS submitter"
        " FROM incidents i JOIN units u ON u.id = i.unit_id"
        " JOIN staff rep ON rep.id = i.reported_by"
        " LEFT JOIN staff sub ON sub.id = i.report_submitted_by"
        f" WHERE i.occurred_at >= ? AND i.occurred_at < ? AND {src.within('i.unit_id')}"
        " ORDER BY i.id",
        (start, end),
    )


def _report_status(src: Source, row: sqlite3.Row) -> str:
    status = report_status(row["report_due_at"], row["report_submitted_at"], src.now)
    return t(src.language, f"export.report_{status}")


def _drill_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT d.*, u.path AS unit, s.name AS organiser, h.number AS hazard"
        " FROM drills d JOIN units u ON u.id = d.unit_id JOIN staff s ON s.id = d.organiser_id"
        " LEFT JOIN hazards h ON h.id = d.hazard_id"
        f" WHERE d.at >= ? AND d.at < ? AND {src.within('d.unit_id')} ORDER BY d.at, d.id",
        (start, end),
    )


def _training_rows(src: Source) -> Iterator[sqlite3.Row]:
    return src.scoped(
        "SELECT tr.*, s.name AS person, s.unit_id, u.path AS unit, rec.name AS recorder"
        " FROM trainings tr JOIN staff s ON s.id = tr.staff_id JOIN units u ON u.id = s.unit_id"
        " JOIN staff rec ON rec.id = tr.recorded_by"
        f" WHERE tr.held_on >= ? AND tr.held_on <= ? AND {src.within('s.unit_id')}"
        " ORDER BY tr.held_on, tr.id",
        (src.period.first.isoformat(), src.period.last.isoformat()),
    )


def _notice_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT n.id, n.created_at, n.text, n.confidential, n.attachment, snd.name AS sender,"
        " r.read_at, s.name AS reader, s.unit_id, u.path AS unit"
        " FROM notices n JOIN notice_recipients r ON r.notice_id = n.id"
        " JOIN staff snd ON snd.id = n.sender_id JOIN staff s ON s.id = r.staff_id"
        " JOIN units u ON u.id = s.unit_id"
        f" WHERE n.created_at >= ? AND n.created_at < ? AND {src.within('s.unit_id')}"
        " ORDER BY n.id, s.id",
        (start, end),
    )


def _confidential(src: Source, row: sqlite3.Row) -> str:
    return t(src.language, "export.yes" if row["confidential"] else "export.no")


def _read(src: Source, row: sqlite3.Row) -> Value:
    return src.time(row["read_at"], row["unit_id"]) or t(src.language, "export.unread")


def _visit_rows(src: Source) -> Iterator[sqlite3.Row]:
    start, end = src.bounds
    return src.scoped(
        "SELECT v.*, c.number AS client_no, c.name AS client, c.address, s.name AS worker,"
        " u.path AS unit, q.services AS planned,"
        " (SELECT group_concat(f.satisfaction || '★ ' || COALESCE(f.comments, ''), char(10))"
        "  FROM visit_followups f WHERE f.visit_id = v.id) AS followups,"
        # The visit's notes, in the order they were written, as one JSON list.
        f" ({dialect.visit_notes_json(dialect.engine_of(src.conn))}) AS notes"
        " FROM visits v JOIN clients c ON c.id = v.client_id JOIN staff s ON s.id = v.worker_id"
        " JOIN units u ON u.id = v.unit_id LEFT JOIN visit_requests q ON q.id = v.request_id"
        f" WHERE v.checkin_at >= ? AND v.checkin_at < ? AND {src.within('v.unit_id')}"
        " ORDER BY v.checkin_at, v.id",
        (start, end),
    )


def _notes(row: sqlite3.Row, kind: str | None = None) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = json.loads(row["notes"]) if row["notes"] else []
    return [note for note in notes if kind is None or note["kind"] == kind]


def _clock(src: Source, moment: str, unit_id: int) -> str:
    """A note's local time of day (the visit's date is a column of its own)."""
    local = src.time(moment, unit_id)
    return local.strftime("%H:%M") if local else ""


def _observations(src: Source, row: sqlite3.Row) -> str:
    lines = []
    for note in _notes(row, "observation"):
        readings = _readings(src, note["readings"]) if note["readings"] else ""
        lines.append(
            t(
                src.language,
                "export.observation_line",
                at=_clock(src, note["at"], row["unit_id"]),
                text=note["text"] or "",
                readings=t(src.language, "export.readings", readings=readings) if readings else "",
            ).strip()
        )
    return "\n".join(lines)


def _readings(src: Source, readings: dict[str, float]) -> str:
    """Readings in words (the chat's ♥ and · do not belong in a register)."""
    lang = src.language
    parts = []
    if "systolic" in readings:
        pressure = f"{readings['systolic']:g}/{readings['diastolic']:g}"
        parts.append(t(lang, "export.reading_pressure", value=pressure))
    for name in ("pulse", "temperature", "glucose"):
        if name in readings:
            parts.append(t(lang, f"export.reading_{name}", value=f"{readings[name]:g}"))
    return t(lang, "export.reading_separator").join(parts)


def _unusual(src: Source, row: sqlite3.Row) -> str:
    lines = []
    for note in _notes(row, "unusual"):
        hazard = note["hazard"]
        lines.append(
            t(
                src.language,
                "export.unusual_line",
                at=_clock(src, note["at"], row["unit_id"]),
                kind=src.label(f"visit.unusual_{note['unusual']}", note["unusual"]),
                text=note["text"] or "",
                hazard=t(src.language, "export.unusual_hazard", number=hazard) if hazard else "",
            )
        )
    return "\n".join(lines)


def _note_photos(src: Source, row: sqlite3.Row) -> Photos:
    return Photos(tuple(dict.fromkeys(n["photo"] for n in _notes(row) if n["photo"])))


def services(name: str) -> CellOf:
    def cell(src: Source, row: sqlite3.Row) -> str:
        keys = json.loads(row[name]) if row[name] else []
        return "、".join(plain(care.title(str(key), src.language)) for key in keys)

    return cell


def _gifts(src: Source, row: sqlite3.Row) -> str:
    """What the worker declared about gifts at check-out, with their account."""
    outcome = src.label(f"export.gifts_{row['gifts']}", row["gifts"])
    if not row["gifts_note"]:
        return outcome
    return t(src.language, "export.gifts_with_note", outcome=outcome, note=row["gifts_note"])


def place(side: str) -> CellOf:
    def cell(src: Source, row: sqlite3.Row) -> str:
        lat, lon = row[f"{side}_lat"], row[f"{side}_lon"]
        return f"{lat:.6f},{lon:.6f}" if lat is not None and lon is not None else ""

    return cell


def metres(name: str) -> CellOf:
    def cell(src: Source, row: sqlite3.Row) -> int | None:
        return round(row[name]) if row[name] is not None else None

    return cell


def _visit_date(src: Source, row: sqlite3.Row) -> date | None:
    moment = src.time(row["checkin_at"], row["unit_id"])
    return moment.date() if moment else None


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


TIME_WIDTH = 17
PHOTOS_WIDTH = 40

REGISTERS: dict[str, Register] = {
    r.name: r
    for r in (
        Register(
            "checklists",
            _checklist_rows,
            (
                Column("run", 8, value("run"), Kind.COUNT),
                Column("checklist", 18, _checklist_name),
                Column("person", 10, value("person")),
                Column("unit", 24, value("unit")),
                Column("local_date", 12, local_date("local_date"), Kind.DATE),
                Column("started", TIME_WIDTH, at("started_at"), Kind.TIME),
                Column("completed", TIME_WIDTH, at("completed_at"), Kind.TIME),
                Column("item", 30, _checklist_item),
                Column("answer", 8, word("answer", lambda v: f"export.answer_{v}")),
                Column("note", 30, text("note")),
                Column("answered", TIME_WIDTH, at("answered_at"), Kind.TIME),
                Column("hazard", 14, text("hazard")),
                Column("photos", PHOTOS_WIDTH, photos("photo", json_list="photos"), Kind.PHOTOS),
            ),
        ),
        Register(
            "hazards",
            _hazard_rows,
            (
                Column("number", 16, lambda src, row: row["number"] or f"#{row['id']}"),
                Column("unit", 24, value("unit")),
                Column("reporter", 10, value("reporter")),
                Column("reported", TIME_WIDTH, at("created_at"), Kind.TIME),
                Column("category", 14, word("category", lambda v: f"hazard.category_{v}")),
                Column("severity", 10, word("severity", lambda v: f"hazard.severity_{v}")),
                Column("place", 16, text("place")),
                Column("description", 36, value("description")),
                Column("status", 12, word("status", lambda v: f"hazards.status_{v}")),
                Column("responsible", 10, text("responsible")),
                Column("measure", 30, text("measure")),
                Column("deadline", TIME_WIDTH, at("deadline_at"), Kind.TIME),
                Column("funding", 12, amount("funding"), Kind.MONEY),
                Column("interim", 24, text("interim_measures")),
                Column("rectification", 30, text("rectification")),
                Column("accepted_by", 10, text("acceptor")),
                Column("closed", TIME_WIDTH, at("closed_at"), Kind.TIME),
                Column("history", 50, _hazard_history),
                Column("photos", PHOTOS_WIDTH, photos("photo", json_list="photos"), Kind.PHOTOS),
                Column(
                    "rectification_photos",
                    PHOTOS_WIDTH,
                    photos(json_list="rectification_photos"),
                    Kind.PHOTOS,
                ),
            ),
        ),
        Register(
            "orders",
            _order_rows,
            (
                Column("number", 16, value("number")),
                Column("hazard", 16, text("hazard")),
                Column("unit", 24, value("unit")),
                Column("issued_by", 10, value("issuer")),
                Column("issued", TIME_WIDTH, at("issued_at"), Kind.TIME),
                Column("deadline", TIME_WIDTH, at("deadline_at"), Kind.TIME),
                Column("requirement", 40, value("requirement")),
                Column("status", 12, word("status", lambda v: f"hazards.status_{v}")),
            ),
        ),
        Register(
            "incidents",
            _incident_rows,
            (
                Column("number", 16, value("number")),
                Column("unit", 24, value("unit")),
                Column("reporter", 10, value("reporter")),
                Column("occurred", TIME_WIDTH, at("occurred_at"), Kind.TIME),
                Column("place", 16, value("place")),
                Column("kind", 12, word("kind", lambda v: f"incident.kind_{v}")),
                Column("description", 36, value("description")),
                Column("hurt_count", 8, value("hurt_count"), Kind.COUNT),
                Column("hurt_names", 16, text("hurt_names")),
                Column("first_actions", 30, text("first_actions")),
                Column(
                    "investigation",
                    12,
                    word("investigation", lambda v: f"export.investigation_{v}"),
                ),
                Column("report_due", TIME_WIDTH, at("report_due_at"), Kind.TIME),
                Column("report_status", 12, _report_status),
                Column("report_reference", 16, text("report_reference")),
                Column("report_submitted", TIME_WIDTH, at("report_submitted_at"), Kind.TIME),
                Column("submitted_by", 10, text("submitter")),
                Column("photos", PHOTOS_WIDTH, photos(json_list="photos"), Kind.PHOTOS),
            ),
        ),
        Register(
            "drills",
            _drill_rows,
            (
                Column("unit", 24, value("unit")),
                Column("drill_kind", 12, word("kind", lambda v: f"drill.kind_{v}")),
                Column("at", TIME_WIDTH, at("at"), Kind.TIME),
                Column("organiser", 10, value("organiser")),
                Column("state", 10, word("state", lambda v: f"export.drill_state_{v}")),
                Column("participants", 8, value("participants"), Kind.COUNT),
                Column("minutes", 8, value("minutes"), Kind.COUNT),
                Column("problems", 36, text("problems")),
                Column("hazard", 16, text("hazard")),
                Column("recorded", TIME_WIDTH, at("recorded_at"), Kind.TIME),
                Column("photos", PHOTOS_WIDTH, photos("photo"), Kind.PHOTOS),
            ),
        ),
        Register(
            "trainings",
            _training_rows,
            (
                Column("person", 10, value("person")),
                Column("unit", 24, value("unit")),
                Column("training_kind", 12, word("kind", lambda v: f"export.training_{v}")),
                Column("held_on", 12, local_date("held_on"), Kind.DATE),
                Column("recorded_by", 10, value("recorder")),
                Column("recorded", TIME_WIDTH, at("recorded_at"), Kind.TIME),
            ),
        ),
        Register(
            "notices",
            _notice_rows,
            (
                Column("notice", 8, value("id"), Kind.COUNT),
                Column("sent", TIME_WIDTH, at("created_at"), Kind.TIME),
                Column("sender", 10, value("sender")),
                Column("text", 40, value("text")),
                Column("confidential", 8, _confidential),
                Column("recipient", 10, value("reader")),
                Column("unit", 24, value("unit")),
                Column("read", TIME_WIDTH, _read, Kind.TIME),
                Column("photos", PHOTOS_WIDTH, photos("attachment"), Kind.PHOTOS),
            ),
        ),
        Register(
            "visits",
            _visit_rows,
            (
                Column("visit", 8, value("id"), Kind.COUNT),
                Column("service", 24, services("planned")),
                Column("client", 18, lambda src, row: f"{row['client']} ({row['client_no']})"),
                Column("worker", 10, value("worker")),
                Column("unit", 24, value("unit")),
                Column("date", 12, _visit_date, Kind.DATE),
                Column("location", 30, value("address")),
                Column("checkin_place", 22, place("checkin")),
                Column("checkout_place", 22, place("checkout")),
                Column("start", TIME_WIDTH, at("checkin_at"), Kind.TIME),
                Column("end", TIME_WIDTH, at("checkout_at"), Kind.TIME),
                Column("checkin_distance", 10, metres("checkin_distance_m"), Kind.COUNT),
                Column("checkout_distance", 10, metres("checkout_distance_m"), Kind.COUNT),
                Column("exceptions", 36, _exceptions),
                Column("services_done", 24, services("services")),
                Column("gifts", 30, _gifts),
                Column("followups", 30, text("followups")),
                Column("observations", 40, _observations),
                Column("unusual", 40, _unusual),
                Column("visit_photos", PHOTOS_WIDTH, _note_photos, Kind.PHOTOS),
            ),
        ),
    )
}


# -- writers -----------------------------------------------------------------------


def csv_safe(value: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading quote."""
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_text(src: Source, value: Value) -> str | int | float:
    if isinstance(value, str):
        return csv_safe(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Photos):
        return "\n".join(src.link(path) for path in value.paths)
    return value


def write_csv(src: Source, path: Path, headers: Sequence[str], rows: Iterator[list[Value]]) -> int:
    """UTF-8 with a BOM, so that Excel opens it as UTF-8; times and amounts as
    a person writes them; returns the row count."""
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([_csv_text(src, value) for value in row])
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class Sheet:
    title: str
    headers: Sequence[str]
    columns: Sequence[Column]
    rows: Iterator[list[Value]]


def write_xlsx(
    src: Source, path: Path, sheets: Sequence[Sheet], *, thumbnails: bool = False
) -> int:
    """One streamed sheet per register: frozen header row, autofilter, column
    widths; numbers, amounts and times as Excel's own typed cells, every text
    cell stored as text, never as a formula. With `thumbnails`, each photo
    column gets a column at the end with a small picture of the row's first
    photo of that kind, and rows with pictures are tall enough to show them.
    Returns the number of rows written."""
    workbook = Workbook(write_only=True)
    total = 0
    for page in sheets:
        sheet: WriteOnlyWorksheet = workbook.create_sheet(page.title[:31])
        sheet.freeze_panes = "A2"
        headers = list(page.headers)
        widths = [column.width for column in page.columns]
        pictured = [n for n, c in enumerate(page.columns) if c.kind is Kind.PHOTOS]
        if not thumbnails:
            pictured = []
        for n in pictured:
            headers.append(t(src.language, "export.thumbnail_of", column=page.headers[n]))
            widths.append(THUMBNAIL_WIDTH)
        for index, width in enumerate(widths, 1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.append([_text_cell(sheet, header) for header in headers])
        converters = [_converter(src, sheet, column.kind) for column in page.columns]
        count = 0
        for row in page.rows:
            count += 1
            if pictured:
                _place_thumbnails(src, sheet, row, pictured, count + 1, len(page.columns))
            sheet.append([convert(value) for convert, value in zip(converters, row, strict=True)])
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{count + 1}"
        total += count
    workbook.save(path)
    return total


def _place_thumbnails(
    src: Source,
    sheet: WriteOnlyWorksheet,
    row: list[Value],
    pictured: list[int],
    row_number: int,
    first_column: int,
) -> None:
    """Before the row is written: its pictures, and its height to fit them."""
    tallest = 0
    for offset, n in enumerate(pictured):
        cell = row[n]
        if not isinstance(cell, Photos) or not cell.paths:
            continue
        picture = thumbnail(src.media_dir / cell.paths[0])
        if picture is None:
            continue
        sheet.add_image(picture, f"{get_column_letter(first_column + offset + 1)}{row_number}")
        tallest = max(tallest, picture.height)
    if tallest:
        # Excel measures row heights in points (3/4 of a pixel), plus a small margin.
        sheet.row_dimensions[row_number].height = tallest * 0.75 + 4


def _converter(src: Source, sheet: WriteOnlyWorksheet, kind: Kind) -> Callable[[Value], object]:
    """How a column's values become cells: numbers and times typed, with
    their format; anything else as text."""
    number_format = NUMBER_FORMATS.get(kind)

    def convert(value: Value) -> object:
        if isinstance(value, str):
            return _text_cell(sheet, value)
        if value is None:
            return None
        if isinstance(value, Photos):
            return _photos_cell(src, sheet, value)
        if number_format is None:
            return value
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = number_format
        return cell

    return convert


def _photos_cell(src: Source, sheet: WriteOnlyWorksheet, photos: Photos) -> object:
    links = [src.link(path) for path in photos.paths]
    if not links:
        return None
    if src.photo_folder is None:
        return _text_cell(sheet, "\n".join(links))
    # Carried beside the workbook: a click on the cell opens its first photo.
    cell = WriteOnlyCell(sheet, value="\n".join(links))
    cell.hyperlink = links[0]
    return cell


def _text_cell(sheet: WriteOnlyWorksheet, value: str) -> str | WriteOnlyCell:
    text: str = ILLEGAL_CHARACTERS_RE.sub("", value)
    if text.startswith("="):
        # openpyxl stores text starting with '=' as a formula unless told otherwise.
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        return cell
    return text


# --with-photos: thumbnails this many pixels on their longer side, in columns this wide.
THUMBNAIL_PIXELS = 96
THUMBNAIL_WIDTH = 15


def thumbnail(path: Path) -> XLImage | None:
    """A small picture of the photo at `path`; None when the file is missing
    or not an image."""
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
    first photo of each kind; the thumbnails (a few KB each) are held until the
    file is written."""
    headers = register.headers(src.language)
    create_private(path)
    if file_format == "csv":
        return write_csv(src, path, headers, register.rows(src))
    title = t(src.language, f"export.register_{register.name}")
    sheet = Sheet(title, headers, register.columns, register.rows(src))
    return write_xlsx(src, path, [sheet], thumbnails=with_photos)


PHOTO_FOLDER = "photos"


def export_zip(
    src: Source,
    register: Register,
    path: Path,
    file_format: str = "xlsx",
    *,
    with_photos: bool = False,
) -> int:
    """Write one register into a zip at `path` that also carries its photos,
    so the register is useful away from the server: `<register>.xlsx` (or
    .csv) and `photos/<media path>`, the register linking them relatively.
    Photos missing on the server keep their link and are left out. The
    register is written to a private temporary folder first, then each photo
    is copied in from its file: nothing is held in memory."""
    src.photo_folder = PHOTO_FOLDER
    name = f"{register.name}.{file_format}"
    with tempfile.TemporaryDirectory(prefix="frontline-export-") as folder:
        inner = Path(folder) / name
        rows = export(src, register, inner, file_format, with_photos=with_photos)
        create_private(path)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(inner, name)
            for media_path in sorted(src.linked):
                photo = _media_file(src.media_dir, media_path)
                if photo is not None:
                    # Photos are compressed already; deflating them again only costs time.
                    archive.write(photo, f"{PHOTO_FOLDER}/{media_path}", zipfile.ZIP_STORED)
    return rows


def _media_file(media_dir: Path, media_path: str) -> Path | None:
    """The file of a media path, if it is there and inside the media folder."""
    root = media_dir.resolve()
    candidate = (root / media_path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


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
