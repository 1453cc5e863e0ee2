"""Printable documents: the rectification order (整改通知书), the incident
summary and the sign-up poster, as PDF with the Chinese font embedded. It
reads the registers and writes files into the media folder; it sends nothing."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import segno
from PIL import Image as PILImage
from PIL import ImageOps
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from bot.clock import local_time_text, parse_iso
from bot.i18n import plain, t
from bot.media import write_once
from bot.store import hazards, incidents, people

FONT = "WenQuanYiMicroHei"
FOLDER = "documents"
NOTHING = "—"

# Set by App.open from the settings; documents go into the media folder like photos.
_media_dir: Path | None = None


class DocumentError(Exception):
    """A document that cannot be made (unknown number, no media folder)."""


def configure(media_dir: Path) -> None:
    global _media_dir
    _media_dir = media_dir


def media_dir() -> Path:
    if _media_dir is None:
        raise DocumentError("the media folder is not configured (App.open sets it)")
    return _media_dir


@cache
def font() -> str:
    """Register the vendored WenQuanYi Micro Hei once; the subset used is embedded."""
    source = resources.files("bot.data").joinpath("fonts/wqy-microhei.ttc")
    with resources.as_file(source) as path:
        pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
    return FONT


# -- layout ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Receipt:
    """The tear-off slip (回执) under an order: the responsible side signs that
    it received the order; later the re-inspection result is written in."""

    title: str
    cut: str
    intro: str
    received_by: str
    received_on: str
    result: str
    passed: str
    failed: str
    inspector: str
    inspected_on: str


@dataclass(frozen=True)
class Document:
    """What a register document shows: a title, its number, labelled fields,
    photos, the people who sign it and, for an order, its receipt."""

    title: str
    number: str
    fields: list[tuple[str, str]]
    signatures: list[str]
    signature_note: str
    filename: str
    zone: str  # the unit's: the document's times, and its date, are in it
    photos: list[Path] = field(default_factory=list)  # image files, at most MAX_PHOTOS
    photos_caption: str = ""
    receipt: Receipt | None = None


MAX_PHOTOS = 4  # thumbnails side by side across the page
PHOTO_PIXELS = 600  # on the longer side: sharp at 4 cm, small in the file
FRAME = A4[0] - 40 * mm  # the text width between the margins
BODY_SIZE = 10.5
CELL_PADDING = 6 + 6  # reportlab's default left and right cell padding, in points


def _styles() -> tuple[ParagraphStyle, ParagraphStyle, ParagraphStyle]:
    name = font()
    body = ParagraphStyle("body", fontName=name, fontSize=BODY_SIZE, leading=15, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=20, leading=28, alignment=1)
    number = ParagraphStyle("number", parent=body, alignment=2)
    return body, title, number


@cache
def _glyphs() -> frozenset[int]:
    embedded = pdfmetrics.getFont(font())
    assert isinstance(embedded, TTFont)
    return frozenset(embedded.face.charToGlyph)


# Typesetters' mark for a character the font lacks (a rare name character,
# 𠮷): the reader sees something is missing, rather than a silent gap.
MISSING = "〓"


def printable(value: str) -> str:
    """Text as the font can print it: no emoji (‼️ would print as "!!" and a
    gap), and MISSING for any other character the font has no glyph for."""
    glyphs = _glyphs()
    return "".join(c if c == "\n" or ord(c) in glyphs else MISSING for c in plain(value))


def _text(value: str) -> str:
    """User text as paragraph content: markup escaped, line breaks kept."""
    return escape(printable(value)).replace("\n", "<br/>")


def _fitting(labels: list[str], *, most: float) -> float:
    """A column as wide as its widest label, so that no label wraps, up to `most`."""
    widest = max(
        (pdfmetrics.stringWidth(printable(x), font(), BODY_SIZE) for x in labels), default=0
    )
    return min(widest + CELL_PADDING + 2, most)


def render(document: Document, *, created: datetime) -> bytes:
    """An A4 page (more if the texts are long): title, number, the fields as
    a two-column table, the photos, a line for each signature and its date,
    and the receipt. `created` is the PDF's date, given in the unit's zone."""
    body, title, number = _styles()
    story: list[Flowable] = [
        Paragraph(_text(document.title), title),
        Paragraph(_text(document.number), number),
        Spacer(1, 4 * mm),
        _fields(document, body),
    ]
    if document.photos:
        story += [
            Spacer(1, 4 * mm),
            KeepTogether(
                [Paragraph(_text(document.photos_caption), body), _photo_row(document.photos)]
            ),
        ]
    story += [Spacer(1, 4 * mm), _signatures(document, body)]
    if document.receipt is not None:
        story += [Spacer(1, 6 * mm), KeepTogether(_receipt(document.receipt, body))]
    out = io.BytesIO()
    template = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=printable(f"{document.title} {document.number}"),
        invariant=1,  # the same content gives the same bytes but for the date
    )
    stamp = _pdf_date(created.astimezone(ZoneInfo(document.zone)))

    def dated(canvas: Canvas, _document: object) -> None:
        canvas.setDateFormatter(lambda *_ymdhms: stamp)

    template.build(story, onFirstPage=dated, onLaterPages=dated)
    return out.getvalue()


def _pdf_date(moment: datetime) -> str:
    """A PDF date with the zone's offset: D:20261127090000+08'00'."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{moment:D:%Y%m%d%H%M%S}{sign}{hours:02d}'{rest:02d}'"


def _fields(document: Document, body: ParagraphStyle) -> Table:
    label_width = _fitting([label for label, _ in document.fields], most=FRAME * 0.45)
    fields = Table(
        [
            [Paragraph(_text(label), body), Paragraph(_text(value or NOTHING), body)]
            for label, value in document.fields
        ],
        colWidths=[label_width, FRAME - label_width],
    )
    fields.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#F0F0F0")),
            ]
        )
    )
    return fields


def _photo_row(files: list[Path]) -> Table:
    """Up to four thumbnails side by side, each fitted into its quarter."""
    width = FRAME / MAX_PHOTOS
    box = (width - 4 * mm, 30 * mm)
    cells: list[Any] = [_thumbnail(path, box) for path in files[:MAX_PHOTOS]]
    cells += [""] * (MAX_PHOTOS - len(cells))
    row = Table([cells], colWidths=[width] * MAX_PHOTOS, rowHeights=[box[1] + 2 * mm])
    row.setStyle(
        TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")])
    )
    return row


def _thumbnail(path: Path, box: tuple[float, float]) -> Image | str:
    """A photo made small (a phone's 4000 px would make a 5 MB order), upright
    as the phone held it, fitted into `box`; nothing if it cannot be read."""
    try:
        with PILImage.open(path) as original:
            picture = ImageOps.exif_transpose(original).convert("RGB")
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return ""
    picture.thumbnail((PHOTO_PIXELS, PHOTO_PIXELS))
    content = io.BytesIO()
    picture.save(content, "JPEG", quality=80)
    content.seek(0)
    scale = min(box[0] / picture.width, box[1] / picture.height)
    return Image(content, width=picture.width * scale, height=picture.height * scale)


def _signatures(document: Document, body: ParagraphStyle) -> Table:
    who_width = _fitting(document.signatures, most=FRAME * 0.4)
    note_width = _fitting([document.signature_note], most=FRAME * 0.35)
    signatures = Table(
        [
            [Paragraph(_text(who), body), "", Paragraph(_text(document.signature_note), body)]
            for who in document.signatures
        ],
        colWidths=[who_width, FRAME - who_width - note_width, note_width],
        rowHeights=[12 * mm] * len(document.signatures),
    )
    signatures.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (1, 0), (1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ]
        )
    )
    return signatures


def _receipt(receipt: Receipt, body: ParagraphStyle) -> list[Flowable]:
    centred = ParagraphStyle("centred", parent=body, alignment=1)
    heading = ParagraphStyle("heading", parent=centred, fontSize=14, leading=20)
    small = ParagraphStyle("small", parent=centred, fontSize=8, leading=10)
    who_width = _fitting([receipt.received_by, receipt.result, receipt.inspector], most=FRAME * 0.4)
    note_width = _fitting([receipt.received_on, receipt.inspected_on], most=FRAME * 0.4)
    line_width = FRAME - who_width - note_width

    def cell(text: str) -> Paragraph:
        return Paragraph(_text(text), body)

    rows: list[list[Any]] = [
        [cell(receipt.intro), "", ""],
        [cell(receipt.received_by), "", cell(receipt.received_on)],
        [
            cell(receipt.result),
            Paragraph(_text(receipt.passed) + "&nbsp;" * 8 + _text(receipt.failed), body),
            "",
        ],
        [cell(receipt.inspector), "", cell(receipt.inspected_on)],
        ["", "", ""],  # keeps the last signature line off the border
    ]
    table = Table(
        rows,
        colWidths=[who_width, line_width, note_width],
        rowHeights=[None, 12 * mm, 10 * mm, 12 * mm, 2 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("SPAN", (0, 0), (-1, 0)),
                ("SPAN", (1, 2), (-1, 2)),
                ("LINEBELOW", (1, 1), (1, 1), 0.5, colors.black),
                ("LINEBELOW", (1, 3), (1, 3), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                ("BOX", (0, 0), (-1, -1), 0.5, colors.black),
            ]
        )
    )
    return [
        Paragraph(_text(receipt.cut), small),
        _CutLine(FRAME),
        Spacer(1, 2 * mm),
        Paragraph(_text(receipt.title), heading),
        Spacer(1, 1 * mm),
        table,
    ]


class _CutLine(Flowable):
    """A dashed line across the page, where the receipt is cut off."""

    def __init__(self, width: float) -> None:
        super().__init__()
        self.width, self.height = width, 2 * mm

    def draw(self) -> None:
        self.canv.setDash(4, 3)
        self.canv.setLineWidth(0.5)
        self.canv.line(0, self.height / 2, self.width, self.height / 2)


# The creation date is the one part of a PDF that differs between two renders
# of the same document; the file's name is the hash of the rest.
_DATES = re.compile(rb"/(?:CreationDate|ModDate) \(D:[^)]*\)")


def save(content: bytes, filename: str, folder: Path | None = None) -> str:
    """Write a document into the media folder (readable by the service's user
    only) under its content hash, keeping its name for the reader; return the
    path relative to the folder, as attachments are given. The same document
    made again is stored once, with the date it was first made."""
    root = folder or media_dir()
    digest = hashlib.sha256(_DATES.sub(b"", content)).hexdigest()[:24]
    relative = Path(FOLDER) / digest / filename
    write_once(root, relative, lambda temporary: temporary.write_bytes(content))
    return relative.as_posix()


def _photo_files(stored: list[str]) -> list[Path]:
    """The media paths' files that are there, at most MAX_PHOTOS of them."""
    root = media_dir().resolve()
    files = []
    for media_path in dict.fromkeys(stored):
        candidate = (root / media_path).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            files.append(candidate)
        if len(files) == MAX_PHOTOS:
            break
    return files


def _photos(language: str, stored: list[str], caption: str) -> tuple[list[Path], str]:
    """The files to print and their caption: how many there are, and how many shown."""
    files = _photo_files(stored)
    if not files:
        return [], ""
    if len(files) < len(stored):
        key = f"documents.{caption}_first"
        return files, t(language, key, count=len(stored), shown=len(files))
    return files, t(language, f"documents.{caption}", count=len(stored))


# -- the rectification order -------------------------------------------------------------
def _name(conn: sqlite3.Connection, staff_id: object) -> str:
    person = people.staff_by_id(conn, int(str(staff_id))) if staff_id else None
    return person.name if person else NOTHING


def order_document(
    conn: sqlite3.Connection, number: str, language: str, *, default_timezone: str
) -> Document:
    """The order as issued, with the hazard's four fixes as they stand now."""
    order = hazards.order_by_number(conn, number)
    hazard = hazards.get(conn, order.hazard_id) if order else None
    if order is None or hazard is None:
        raise DocumentError(f"no rectification order {number}")
    zone = people.unit_timezone(conn, hazard.unit_id, default_timezone)
    funding = hazard.funding
    photos, caption = _photos(language, list(hazard.photos), "hazard_photos")

    def label(key: str) -> str:
        return t(language, f"documents.{key}")

    return Document(
        title=label("order_title"),
        number=t(language, "documents.number", number=order.number),
        fields=[
            (label("hazard_number"), hazard.number),
            (label("unit"), people.unit_path(conn, hazard.unit_id)),
            (label("place"), hazard.place or NOTHING),
            (label("description"), hazard.description),
            (label("severity"), t(language, f"hazard.severity_{hazard.severity}")),
            (label("responsible"), _name(conn, hazard.responsible_id)),
            (label("measure"), str(hazard.measure or NOTHING)),
            (label("deadline"), local_time_text(parse_iso(order.deadline_at), zone)),
            (
                label("funding"),
                t(language, "documents.no_funding")
                if funding in (None, "0", "0.00")
                else t(language, "documents.amount", amount=funding),
            ),
            (label("requirement"), order.requirement),
            (label("issued_by"), _name(conn, order.issued_by)),
            (label("issued_at"), local_time_text(parse_iso(order.issued_at), zone)),
        ],
        signatures=[label("sign_issuer"), label("sign_responsible"), label("sign_unit_head")],
        signature_note=label("sign_date"),
        filename=f"{order.number}.pdf",
        zone=zone,
        photos=photos,
        photos_caption=caption,
        receipt=Receipt(
            title=label("receipt_title"),
            cut=label("receipt_cut"),
            intro=t(
                language,
                "documents.receipt_intro",
                order=order.number,
                hazard=hazard.number,
            ),
            received_by=label("receipt_received_by"),
            received_on=label("receipt_received_on"),
            result=label("receipt_result"),
            passed=label("receipt_passed"),
            failed=label("receipt_failed"),
            inspector=label("receipt_inspector"),
            inspected_on=label("receipt_inspected_on"),
        ),
    )


def order_pdf(
    conn: sqlite3.Connection,
    number: str,
    language: str,
    *,
    default_timezone: str,
    now: datetime,
) -> str:
    """The order's PDF in the media folder, dated `now`; its path, for an attachment."""
    document = order_document(conn, number, language, default_timezone=default_timezone)
    return save(render(document, created=now), document.filename)


# -- the incident summary ----------------------------------------------------------------
def incident_document(
    conn: sqlite3.Connection, incident: sqlite3.Row, language: str, *, default_timezone: str
) -> Document:
    zone = people.unit_timezone(conn, int(incident["unit_id"]), default_timezone)
    incident_id = int(incident["id"])
    latest = incidents.latest_investigation(conn, incident_id)
    actions = incidents.actions(conn, incident_id)

    def label(key: str) -> str:
        return t(language, f"documents.{key}")

    if incident["report_submitted_at"] is None:
        report = t(
            language,
            "documents.report_pending",
            deadline=local_time_text(parse_iso(incident["report_due_at"]), zone),
        )
    else:
        report = t(
            language,
            "documents.report_done",
            reference=incident["report_reference"],
            at=local_time_text(parse_iso(incident["report_submitted_at"]), zone),
            by=_name(conn, incident["report_submitted_by"]),
        )
    stored = [str(p) for p in json.loads(incident["photos"])] if incident["photos"] else []
    photos, caption = _photos(language, stored, "incident_photos")
    hurt = str(incident["hurt_count"])
    if incident["hurt_names"]:
        hurt = f"{hurt}（{incident['hurt_names']}）"
    return Document(
        title=label("incident_title"),
        number=t(language, "documents.number", number=incident["number"]),
        fields=[
            (label("occurred_at"), local_time_text(parse_iso(incident["occurred_at"]), zone)),
            (label("unit"), people.unit_path(conn, int(incident["unit_id"]))),
            (label("place"), str(incident["place"])),
            (label("kind"), t(language, f"incident.kind_{incident['kind']}")),
            (label("description"), str(incident["description"])),
            (label("hurt"), hurt),
            (label("first_actions"), str(incident["first_actions"] or NOTHING)),
            (label("reported_by"), _name(conn, incident["reported_by"])),
            (
                label("investigation"),
                t(language, f"incident.status_{incident['investigation']}"),
            ),
            (label("findings"), str(latest["findings"]) if latest else NOTHING),
            (
                label("people_responsible"),
                str(latest["responsible"] or NOTHING) if latest else NOTHING,
            ),
            (
                label("corrective_actions"),
                "\n".join(
                    t(
                        language,
                        "documents.action_line",
                        hazard=row["hazard"],
                        description=row["description"],
                        status=t(language, f"hazards.status_{row['status']}"),
                    )
                    for row in actions
                )
                or NOTHING,
            ),
            (label("report"), report),
        ],
        signatures=[label("sign_reporter"), label("sign_safety"), label("sign_unit_head")],
        signature_note=label("sign_date"),
        filename=f"{incident['number']}.pdf",
        zone=zone,
        photos=photos,
        photos_caption=caption,
    )


def incident_pdf(
    conn: sqlite3.Connection,
    incident: sqlite3.Row,
    language: str,
    *,
    default_timezone: str,
    now: datetime,
) -> str:
    """The incident's record in the media folder, dated `now`; its path."""
    document = incident_document(conn, incident, language, default_timezone=default_timezone)
    return save(render(document, created=now), document.filename)


# -- the sign-up poster ------------------------------------------------------------------
POSTER_LANGUAGES = ("zh-CN", "en")
POSTER_CHANNELS = ("telegram", "wecom")


def poster(unit: str, link: str, channel: str = "telegram") -> bytes:
    """An A4 poster for a unit's notice board: the unit, a QR code of the
    link (the Telegram bot's, or the WeCom corp's join link), and the three
    steps to sign up on that channel, in Chinese with English below."""
    name = font()
    width, height = A4
    out = io.BytesIO()
    page = Canvas(out, pagesize=A4, invariant=1)
    page.setTitle(f"Frontline — {unit}")
    top = height - 30 * mm
    page.setFont(name, 26)
    page.drawCentredString(width / 2, top, t("zh-CN", "documents.poster_title"))
    page.setFont(name, 14)
    page.drawCentredString(width / 2, top - 10 * mm, t("en", "documents.poster_title"))
    page.setFont(name, 18)
    page.drawCentredString(width / 2, top - 22 * mm, printable(unit))
    side = 90 * mm
    _draw_qr(page, link, (width - side) / 2, top - 30 * mm - side, side)
    page.setFont(name, 9)
    page.drawCentredString(width / 2, top - 36 * mm - side, link)
    y = top - 50 * mm - side
    steps = "poster_step" if channel == "telegram" else f"poster_{channel}_step"
    for step in (1, 2, 3):
        page.setFont(name, 15)
        page.drawString(25 * mm, y, t("zh-CN", f"documents.{steps}{step}"))
        page.setFont(name, 11)
        page.drawString(25 * mm, y - 6.5 * mm, t("en", f"documents.{steps}{step}"))
        y -= 18 * mm
    page.showPage()
    page.save()
    return out.getvalue()


def _draw_qr(page: Canvas, link: str, x: float, y: float, side: float) -> None:
    """The QR code as filled squares: crisp at any print size."""
    code = segno.make(link, error="m", micro=False)
    matrix = [list(row) for row in code.matrix_iter(scale=1, border=4)]
    cell = side / len(matrix)
    page.setFillColor(colors.black)
    for row_index, row in enumerate(matrix):
        for column, dark in enumerate(row):
            if dark:
                page.rect(
                    x + column * cell,
                    y + side - (row_index + 1) * cell,
                    cell,
                    cell,
                    stroke=0,
                    fill=1,
                )
