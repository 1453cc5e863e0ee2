"""The documents worker, beside the sender: makes the files queued messages
carry (an /export's XLSX, an order's or an incident's PDF) on a read-only
connection in a worker thread, never on the writer, then lets each message
go in one short write. What a crash left 'preparing' is built at start.

A request says everything its build needs (bot.model.DocumentRequest); the
`*_request` functions here are the one place each kind's parameters are
written, and the builders the one place they are read."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bot import documents, export
from bot.clock import iso, parse_iso, woken
from bot.i18n import t
from bot.model import DocumentRequest
from bot.store import incidents, outbox
from bot.store.db import Database
from bot.store.outbox import Preparing
from bot.store.reader import Reader

log = logging.getLogger(__name__)

EXPORT = "export"
ORDER = "order"
INCIDENT = "incident"
EXPORT_FOLDER = "exports"


# -- the requests, written when a step decides to send a file -------------------------------
def export_request(
    register: str,
    period: export.Period,
    *,
    root_unit: int | None,
    staff_id: int,
    language: str,
    default_timezone: str,
    now: datetime,
    text_params: Mapping[str, Any],
) -> DocumentRequest:
    """A register's rows for a period as XLSX. `root_unit`: the unit subtree
    the asker may see, decided now from their stored roles (None: every unit);
    a build later keeps it. The message becomes `export.ready` with the rows."""
    return DocumentRequest(
        kind=EXPORT,
        params={
            "register": register,
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "root_unit": root_unit,
            "staff": staff_id,
            "timezone": default_timezone,
            "now": iso(now),
        },
        language=language,
        text_key="export.ready",
        text_params=dict(text_params),
    )


def order_request(
    number: str, language: str, *, default_timezone: str, now: datetime
) -> DocumentRequest:
    """A rectification order's PDF in `language`, dated `now`."""
    return DocumentRequest(
        kind=ORDER,
        params={"order": number, "timezone": default_timezone, "now": iso(now)},
        language=language,
    )


def incident_request(
    incident_id: int, language: str, *, default_timezone: str, now: datetime
) -> DocumentRequest:
    """An incident's record as PDF in `language`, dated `now`."""
    return DocumentRequest(
        kind=INCIDENT,
        params={"incident": incident_id, "timezone": default_timezone, "now": iso(now)},
        language=language,
    )


# -- the builders, on a read-only connection in a worker thread --------------------------------
@dataclass(frozen=True, slots=True)
class Built:
    path: str  # the file's media path, as attachments are given
    figures: dict[str, Any] = field(default_factory=dict)  # for the final text (rows)


def build_export(conn: sqlite3.Connection, row: Preparing, media_dir: Path) -> Built:
    """The file is named by its message, so a build again after a crash
    overwrites the first one instead of leaving a second."""
    wanted = row.document.params
    register = export.REGISTERS[str(wanted["register"])]
    period = export.Period(
        date.fromisoformat(str(wanted["first"])), date.fromisoformat(str(wanted["last"]))
    )
    root = wanted.get("root_unit")
    source = export.Source(
        conn=conn,
        language=row.document.language,
        period=period,
        root_unit=int(root) if root is not None else None,
        default_timezone=str(wanted["timezone"]),
        media_dir=media_dir,
        now=parse_iso(str(wanted["now"])),
    )
    relative = (
        f"{EXPORT_FOLDER}/{register.name}-{period.first}-{period.last}"
        f"-{wanted['staff']}-{row.id}.xlsx"
    )
    target = media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    rows = export.export(source, register, target)
    return Built(relative, {"rows": rows})


def build_order(conn: sqlite3.Connection, row: Preparing, media_dir: Path) -> Built:
    """PDFs are stored under their content's hash: the same one made again is one file."""
    wanted = row.document.params
    path = documents.order_pdf(
        conn,
        str(wanted["order"]),
        row.document.language,
        default_timezone=str(wanted["timezone"]),
        now=parse_iso(str(wanted["now"])),
    )
    return Built(path)


def build_incident(conn: sqlite3.Connection, row: Preparing, media_dir: Path) -> Built:
    wanted = row.document.params
    incident = incidents.get(conn, int(wanted["incident"]))
    if incident is None:
        raise documents.DocumentError(f"no incident {wanted['incident']}")
    path = documents.incident_pdf(
        conn,
        incident,
        row.document.language,
        default_timezone=str(wanted["timezone"]),
        now=parse_iso(str(wanted["now"])),
    )
    return Built(path)


Builder = Callable[[sqlite3.Connection, Preparing, Path], Built]
BUILDERS: dict[str, Builder] = {
    EXPORT: build_export,
    ORDER: build_order,
    INCIDENT: build_incident,
}


def finished(row: Preparing, built: Built | None) -> tuple[str, tuple[str, ...]]:
    """The message's final text and files: with the file, or (`built` None)
    saying in the person's language that it could not be made; the rest of
    the message (a card's text and buttons) stays."""
    request = row.document
    if built is None:
        failed = t(request.language, "documents.failed")
        if request.text_key:
            return failed, row.attachments
        return f"{row.text}\n\n{failed}", row.attachments
    text = row.text
    if request.text_key:
        text = t(request.language, request.text_key, **request.text_params, **built.figures)
    return text, (*row.attachments, built.path)


def _build(builder: Builder, row: Preparing, media_dir: Path, conn: sqlite3.Connection) -> Built:
    return builder(conn, row, media_dir)


class Preparer:
    """Builds what is queued 'preparing', oldest first: exports in one lane,
    PDFs in another, so a long export never holds up an order's PDF. Woken
    when a transaction queues such a row; looks again every `idle_seconds`
    (for rows another process queued)."""

    def __init__(
        self,
        db: Database,
        reader: Reader,
        *,
        media_dir: Path,
        on_ready: Callable[[], None] | None = None,
        builders: Mapping[str, Builder] | None = None,
    ) -> None:
        self.db = db
        self.reader = reader
        self.media_dir = media_dir
        self.on_ready = on_ready
        self.builders = dict(BUILDERS if builders is None else builders)
        self._wake = asyncio.Event()
        self._lanes = {EXPORT: asyncio.Lock(), "print": asyncio.Lock()}
        self._building: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        # Whether this process makes the files (with several processes on
        # PostgreSQL one at a time does: bot/roles.py).
        self.active = True

    def wake(self) -> None:
        self._wake.set()

    def take(self) -> None:
        """This process makes the files now, starting with what another left."""
        self.active = True
        self.wake()

    def give_up(self) -> None:
        """Another process makes them now: start nothing more."""
        self.active = False

    async def run(self, idle_seconds: float = 1.0) -> None:
        """Build until `stop`; the first look takes what a crash left."""
        # Loading the Chinese font takes ~0.6 s: once, now, not in someone's first PDF.
        await asyncio.to_thread(documents.font)
        while not self._stopping:
            self._wake.clear()
            await self._start_found()
            await woken(self._wake, idle_seconds)

    async def drain(self) -> int:
        """Build everything queued now, and wait for it (tests, the console);
        returns how many were built (or failed)."""
        built = 0
        while True:
            built += await self._start_found()
            if not self._building:
                return built
            await asyncio.gather(*list(self._building.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Build nothing more. A build in flight is abandoned: its row stays
        'preparing' and is built again at the next start."""
        self._stopping = True
        self.wake()
        tasks = list(self._building.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_found(self) -> int:
        if not self.active:
            return 0
        found = await self.reader.run(outbox.preparing)
        started = 0
        for row in found:
            if row.id not in self._building and not self._stopping:
                task = asyncio.create_task(self._prepare(row), name=f"document-{row.id}")
                self._building[row.id] = task
                task.add_done_callback(partial(self._done, row.id))
                started += 1
        return started

    def _done(self, outbox_id: int, task: asyncio.Task[None]) -> None:
        self._building.pop(outbox_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("document worker failed outbox=%s", outbox_id, exc_info=task.exception())

    async def _prepare(self, row: Preparing) -> None:
        request = row.document
        lane = self._lanes[EXPORT if request.kind == EXPORT else "print"]
        async with lane:
            built: Built | None
            builder = self.builders.get(request.kind)
            try:
                if builder is None:
                    raise documents.DocumentError(f"unknown document kind {request.kind}")
                built = await self.reader.run(partial(_build, builder, row, self.media_dir))
            except Exception:
                log.exception(
                    "document failed outbox=%s staff=%s kind=%s", row.id, row.staff_id, request.kind
                )
                built = None
            text, attachments = finished(row, built)
            changed = await self.db.transaction(
                lambda conn: outbox.prepared(conn, row.id, text, attachments)
            )
        log.info(
            "document outbox=%s staff=%s kind=%s outcome=%s",
            row.id,
            row.staff_id,
            request.kind,
            ("ready" if built else "failed") if changed else "gone",
        )
        if changed and self.on_ready is not None:
            self.on_ready()
