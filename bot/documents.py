"""Printable documents: the rectification order (整改通知书), the incident
summary and the sign-up poster, as PDF with the Chinese font embedded. It
reads the registers and writes files into the media folder; it sends nothing."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

import segno
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from bot.i18n import t
from bot.media import write_once
from bot.store import hazards, incidents, people
from schedules.clock import local_time_text, parse_iso

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
class Document:
    """What a register document shows: a title, its number, labelled fields
    and the people who sign it."""

    title: str
    number: str
    fields: list[tuple[str, str]]
    signatures: list[str]
    signature_note: str
    filename: str


def _styles() -> tuple[ParagraphStyle, ParagraphStyle, ParagraphStyle]:
    name = font()
    body = ParagraphStyle("body", fontName=name, fontSize=10.5, leading=15, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=20, leading=28, alignment=1)
    number = ParagraphStyle("number", parent=body, alignment=2)
    return body, title, number


def _text(value: str) -> str:
    """User text as paragraph content: markup escaped, line breaks kept."""
    return escape(value).replace("\n", "<br/>")


def render(document: Document) -> bytes:
    """An A4 page (more if the texts are long): title, number, the fields as
    a two-column table, then a line for each signature and its date."""
    body, title, number = _styles()
    label_width = 34 * mm
    fields = Table(
        [
            [Paragraph(_text(label), body), Paragraph(_text(value or NOTHING), body)]
            for label, value in document.fields
        ],
        colWidths=[label_width, A4[0] - 40 * mm - label_width],
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
    signatures = Table(
        [
            [Paragraph(_text(who), body), "", Paragraph(_text(document.signature_note), body)]
            for who in document.signatures
        ],
        colWidths=[50 * mm, 70 * mm, 50 * mm],
        rowHeights=[16 * mm] * len(document.signatures),
    )
    signatures.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (1, 0), (1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ]
        )
    )
    out = io.BytesIO()
    template = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{document.title} {document.number}",
        invariant=1,  # the same content gives the same bytes, stored once
    )
    template.build(
        [
            Paragraph(_text(document.title), title),
            Paragraph(_text(document.number), number),
            Spacer(1, 4 * mm),
            fields,
            Spacer(1, 10 * mm),
            signatures,
        ]
    )
    return out.getvalue()


def save(content: bytes, filename: str, folder: Path | None = None) -> str:
    """Write a document into the media folder (readable by the service's user
    only) under its content hash, keeping its name for the reader; return the
    path relative to the folder, as attachments are given."""
    root = folder or media_dir()
    digest = hashlib.sha256(content).hexdigest()[:24]
    relative = Path(FOLDER) / digest / filename
    write_once(root, relative, lambda temporary: temporary.write_bytes(content))
    return relative.as_posix()


# -- the rectification order -------------------------------------------------------------
def _name(conn: sqlite3.Connection, staff_id: object) -> str:
    person = people.staff_by_id(conn, int(str(staff_id))) if staff_id else None
    return person.name if person else NOTHING


def order_document(
    conn: sqlite3.Connection, number: str, language: str, *, default_timezone: str
) -> Document:
    """The order as issued, with the hazard's four fixes as they stand now."""
    order = hazards.order_by_number(conn, number)
    hazard = hazards.get(conn, int(order["hazard_id"])) if order else None
    if order is None or hazard is None:
        raise DocumentError(f"no rectification order {number}")
    zone = people.unit_timezone(conn, int(hazard["unit_id"]), default_timezone)
    funding = hazard["funding"]

    def label(key: str) -> str:
        return t(language, f"documents.{key}")

    return Document(
        title=label("order_title"),
        number=t(language, "documents.number", number=order["number"]),
        fields=[
            (label("hazard_number"), str(hazard["number"])),
            (label("unit"), people.unit_path(conn, int(hazard["unit_id"]))),
            (label("place"), str(hazard["place"] or NOTHING)),
            (label("description"), str(hazard["description"])),
            (label("severity"), t(language, f"hazard.severity_{hazard['severity']}")),
            (label("responsible"), _name(conn, hazard["responsible_id"])),
            (label("measure"), str(hazard["measure"] or NOTHING)),
            (label("deadline"), local_time_text(parse_iso(order["deadline_at"]), zone)),
            (
                label("funding"),
                t(language, "documents.no_funding")
                if funding in (None, "0", "0.00")
                else t(language, "documents.amount", amount=funding),
            ),
            (label("requirement"), str(order["requirement"])),
            (label("issued_by"), _name(conn, order["issued_by"])),
            (label("issued_at"), local_time_text(parse_iso(order["issued_at"]), zone)),
        ],
        signatures=[label("sign_issuer"), label("sign_responsible"), label("sign_unit_head")],
        signature_note=label("sign_date"),
        filename=f"{order['number']}.pdf",
    )


def order_pdf(
    conn: sqlite3.Connection, number: str, language: str, *, default_timezone: str
) -> str:
    """The order's PDF in the media folder; its path, for an attachment."""
    document = order_document(conn, number, language, default_timezone=default_timezone)
    return save(render(document), document.filename)


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
    )


def incident_pdf(
    conn: sqlite3.Connection, incident: sqlite3.Row, language: str, *, default_timezone: str
) -> str:
    document = incident_document(conn, incident, language, default_timezone=default_timezone)
    return save(render(document), document.filename)


# -- the sign-up poster ------------------------------------------------------------------
POSTER_LANGUAGES = ("zh-CN", "en")


def poster(unit: str, link: str) -> bytes:
    """An A4 poster for a unit's notice board: the unit, a QR code of the bot's
    link, and the three steps to sign up, in Chinese with English below."""
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
    page.drawCentredString(width / 2, top - 22 * mm, unit)
    side = 90 * mm
    _draw_qr(page, link, (width - side) / 2, top - 30 * mm - side, side)
    page.setFont(name, 9)
    page.drawCentredString(width / 2, top - 36 * mm - side, link)
    y = top - 50 * mm - side
    for step in (1, 2, 3):
        page.setFont(name, 15)
        page.drawString(25 * mm, y, t("zh-CN", f"documents.poster_step{step}"))
        page.setFont(name, 11)
        page.drawString(25 * mm, y - 6.5 * mm, t("en", f"documents.poster_step{step}"))
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
