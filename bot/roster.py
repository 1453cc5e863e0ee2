"""The roster import: read a CSV or XLSX staff list, validate every row, and apply
the whole list through the store in one transaction. It reports every problem at
once as catalog keys, and imports nothing unless every row is good; no SQL here.
Files are read as a stream, within size limits the client list shares."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import logging
import re
import sqlite3
import unicodedata
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot import phones
from bot.i18n import t
from bot.model import LANGUAGES, ROLE_ALIASES, Role
from bot.store import roster as store
from bot.store.db import Database
from bot.store.roster import RosterResult, StaffEntry

__all__ = [
    "RosterError",
    "RosterProblem",
    "RosterResult",
    "RosterRow",
    "describe",
    "import_roster_file",
    "load_roster",
    "normalize_phone",
    "read_table",
]

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("name", "phone", "unit", "roles")
OPTIONAL_COLUMNS = ("language", "telegram_id", "wecom_userid", "employee_no")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Header spellings we accept, after lower-casing and turning spaces/dashes into '_'.
HEADER_ALIASES: dict[str, str] = {
    **{column: column for column in COLUMNS},
    "role": "roles",
    "姓名": "name",
    "手机": "phone",
    "手机号": "phone",
    "手机号码": "phone",
    "电话": "phone",
    "部门": "unit",
    "单位": "unit",
    "角色": "roles",
    "语言": "language",
    "工号": "employee_no",
}

LANGUAGE_ALIASES: dict[str, str] = {
    **{language.lower(): language for language in LANGUAGES},
    "zh": "zh-CN",
    "zh_cn": "zh-CN",
    "中文": "zh-CN",
    "english": "en",
    "英文": "en",
    "英语": "en",
}

# The largest list (roster or client list, CSV or XLSX) we import: a bigger
# file is refused before it is opened, one with more data rows when reading
# reaches the limit. Either is far beyond any one organisation's staff.
MAX_FILE_MB = 20
MAX_FILE_BYTES = MAX_FILE_MB * 2**20
MAX_ROWS = 50_000
# What an XLSX file (a zip) may unpack to, checked from its directory before it is
# opened: its shared strings are read whole. 50,000 rows of 8 columns unpack to ~25 MB.
MAX_XLSX_UNPACKED_MB = 100

MAX_NAME = 64
MAX_EMPLOYEE_NO = 64
ROLE_SEPARATORS = re.compile(r"[,，、]")
TELEGRAM_ID = re.compile(r"[0-9]{1,20}")
# WeCom's own rule for a member's UserID.
WECOM_USERID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True, slots=True)
class RosterProblem:
    """One thing wrong with a roster; `line` is None when it concerns the whole file."""

    line: int | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)


class RosterError(Exception):
    """The roster was not imported; `problems` says why, every one of them."""

    def __init__(self, problems: list[RosterProblem]) -> None:
        super().__init__(f"roster not imported: {len(problems)} problem(s)")
        self.problems = problems


def describe(problem: RosterProblem, language: str) -> str:
    """The problem as an admin reads it, e.g. '第 3 行：手机号无效：12345'."""
    reason = t(language, problem.key, **problem.params)
    if problem.line is None:
        return reason
    return t(language, "roster.row_error", line=problem.line, reason=reason)


def normalize_phone(raw: str) -> str | None:
    """A staff phone in E.164 form ('+8613800000001'), or None if it is not a
    mobile number (or a valid number abroad)."""
    return phones.mobile(raw)


def _fail(key: str, **params: Any) -> PydanticCustomError:
    # The error type is the catalog key, so a ValidationError maps straight to problems.
    return PydanticCustomError(key, key, params)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


class RosterRow(BaseModel):
    """One data row of the roster, validated and normalised."""

    model_config = ConfigDict(frozen=True)

    line: int
    name: str
    phone: str  # E.164, for matching
    phone_display: str | None = None  # as the file wrote it, for showing
    unit: str
    roles: tuple[Role, ...]
    language: str
    employee_no: str | None = None
    telegram_id: str | None = None
    wecom_userid: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _keep_phone_as_written(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("phone"):
            data = {**data, "phone_display": phones.written(str(data["phone"]))}
        return data

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise _fail("roster.name_missing")
        if len(value) > MAX_NAME:
            raise _fail("roster.name_too_long", max=MAX_NAME)
        if _has_control(value):
            raise _fail("roster.name_invalid")
        return value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: str) -> str:
        if not value:
            raise _fail("roster.phone_missing")
        phone = normalize_phone(value)
        if phone is None:
            raise _fail("roster.phone_invalid", value=value)
        return phone

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: str) -> str:
        if not value:
            raise _fail("roster.unit_missing")
        segments = [segment.strip() for segment in value.split("/")]
        if not all(segments) or _has_control(value):
            raise _fail("roster.unit_invalid", value=value)
        return "/".join(segments)

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, value: str) -> tuple[Role, ...]:
        names = [name.strip() for name in ROLE_SEPARATORS.split(value)]
        roles: set[Role] = set()
        for name in filter(None, names):
            role = ROLE_ALIASES.get(name) or ROLE_ALIASES.get(
                name.lower().replace(" ", "_").replace("-", "_")
            )
            if role is None:
                raise _fail("roster.role_unknown", value=name)
            roles.add(role)
        if not roles:
            raise _fail("roster.roles_missing")
        return tuple(sorted(roles))

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            context = info.context or {}
            return str(context.get("default_language", LANGUAGES[0]))
        language = LANGUAGE_ALIASES.get(value.lower())
        if language is None:
            raise _fail("roster.language_unknown", value=value)
        return language

    @field_validator("employee_no", mode="before")
    @classmethod
    def _employee_no(cls, value: str) -> str | None:
        if len(value) > MAX_EMPLOYEE_NO or _has_control(value):
            raise _fail("roster.employee_no_invalid", value=value[:MAX_EMPLOYEE_NO])
        return value or None

    @field_validator("telegram_id", mode="before")
    @classmethod
    def _telegram_id(cls, value: str) -> str | None:
        if value and not TELEGRAM_ID.fullmatch(value):
            raise _fail("roster.telegram_id_invalid", value=value)
        return value or None

    @field_validator("wecom_userid", mode="before")
    @classmethod
    def _wecom_userid(cls, value: str) -> str | None:
        if value and not WECOM_USERID.fullmatch(value):
            raise _fail("roster.wecom_userid_invalid", value=value)
        return value or None

    def entry(self) -> StaffEntry:
        return StaffEntry(
            line=self.line,
            name=self.name,
            phone=self.phone,
            phone_display=self.phone_display,
            unit=self.unit,
            roles=",".join(role.value for role in self.roles),
            language=self.language,
            employee_no=self.employee_no,
            telegram_id=self.telegram_id,
            wecom_userid=self.wecom_userid,
        )


def load_roster(path: Path, default_language: str) -> list[RosterRow]:
    """Read and validate a roster file; raise RosterError listing every problem."""
    return list(_validated(path, default_language))


def _validated(path: Path, default_language: str) -> Iterator[RosterRow]:
    """Each good row as the file is read, until a problem is found (then nothing
    will be imported); at the end, RosterError listing every problem, if any."""
    if default_language not in LANGUAGES:
        raise ValueError(f"unknown default language {default_language!r}")
    problems: list[RosterProblem] = []
    context = {"default_language": default_language}
    first: dict[tuple[str, str], int] = {}
    records = 0
    for line, record in _records(read_table(path)):
        records += 1
        problems.extend(_duplicates(line, record, first))
        try:
            row = RosterRow.model_validate({"line": line, **record}, context=context)
        except ValidationError as exc:
            problems.extend(_problems(line, exc))
            continue
        if not problems:
            yield row
    if problems:
        problems.sort(key=lambda problem: problem.line or 0)
        raise RosterError(problems)
    if not records:
        raise RosterError([RosterProblem(None, "roster.no_rows")])


async def import_roster_file(
    db: Database,
    path: Path,
    *,
    deactivate_missing: bool,
    default_language: str,
    now: datetime,
) -> RosterResult:
    """Import a roster file: all of it in one transaction, or nothing and a RosterError."""
    # Each row is kept as the store's entry only, not as the validated model.
    entries = await asyncio.to_thread(
        lambda: [row.entry() for row in _validated(path, default_language)]
    )
    stamp = _utc_iso(now)

    def apply(conn: sqlite3.Connection) -> RosterResult:
        conflicts = store.find_conflicts(conn, entries)
        if conflicts:
            raise RosterError(
                [RosterProblem(c.line, f"roster.{c.kind}", c.params) for c in conflicts]
            )
        return store.apply_roster(conn, entries, deactivate_missing=deactivate_missing, now=stamp)

    result = await db.transaction(apply)
    log.info(
        "roster imported rows=%d created=%d updated=%d deactivated=%d units_created=%d",
        len(entries),
        result.created,
        result.updated,
        result.deactivated,
        result.units_created,
    )
    return result


def _utc_iso(now: datetime) -> str:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    # The store's timestamp format (bot.clock.iso): UTC with microseconds.
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def _problems(line: int, exc: ValidationError) -> list[RosterProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        key = error["type"]
        params = dict(error.get("ctx") or {})
        if not key.startswith("roster."):
            column = str(error["loc"][0]) if error["loc"] else ""
            key, params = "roster.value_invalid", {"column": column}
        problems.append(RosterProblem(line, key, params))
    return problems


def _unreadable(path: Path) -> RosterError:
    return RosterError([RosterProblem(None, "roster.file_unreadable", {"path": path.name})])


# Rows with their line numbers, read as they are used.
Table = Generator[tuple[int, list[str]], None, None]


def read_table(path: Path) -> Table:
    """Every row of the file with its line number (the sheet row for XLSX), cells
    trimmed, read as they are used. A file over MAX_FILE_BYTES is refused before
    it is opened; one with over MAX_ROWS data rows when reading reaches the limit."""
    if not path.is_file():
        key = "roster.file_unreadable" if path.exists() else "roster.file_missing"
        raise RosterError([RosterProblem(None, key, {"path": str(path)})])
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        reader = _read_csv
    elif suffix in (".xlsx", ".xlsm"):
        reader = _read_xlsx
    else:
        raise RosterError([RosterProblem(None, "roster.file_unsupported", {"path": path.name})])
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        params = {"path": path.name, "size": f"{size / 2**20:.1f}", "limit": MAX_FILE_MB}
        raise RosterError([RosterProblem(None, "roster.file_too_large", params)])
    unpacked = _unpacked_size(path) if reader is _read_xlsx else 0
    if unpacked > MAX_XLSX_UNPACKED_MB * 2**20:
        params = {
            "path": path.name,
            "size": f"{unpacked / 2**20:.1f}",
            "limit": MAX_XLSX_UNPACKED_MB,
        }
        raise RosterError([RosterProblem(None, "roster.file_unpacks_too_large", params)])
    return _within_row_limit(reader(path), path)


def _unpacked_size(path: Path) -> int:
    """What the members of a zip declare they unpack to (reading one never yields
    more); 0 when it is no zip, which openpyxl then reports."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile):
        return 0


def _within_row_limit(table: Table, path: Path) -> Table:
    data_rows = -1  # the first row with anything in it is the header
    with contextlib.closing(table):
        for line, cells in table:
            if any(cells):
                data_rows += 1
                if data_rows > MAX_ROWS:
                    params = {"path": path.name, "limit": MAX_ROWS}
                    raise RosterError([RosterProblem(None, "roster.file_too_many_rows", params)])
            yield line, cells


_CHUNK = 64 * 2**10


def _encoding(path: Path) -> str | None:
    """How a CSV file is encoded, checked a chunk at a time: UTF-16 if it starts
    with its byte order mark, else UTF-8, else GB18030; None for a binary file."""
    with path.open("rb") as handle:
        if handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"  # its decoding errors surface while reading
        # Excel in China saves "CSV" as GB18030/GBK unless told UTF-8; valid UTF-8 is
        # rarely also meant as GBK, so UTF-8 goes first.
        for encoding in ("utf-8-sig", "gb18030"):
            handle.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                while chunk := handle.read(_CHUNK):
                    if b"\x00" in chunk:
                        return None
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            return encoding
    return None


def _read_csv(path: Path) -> Table:
    try:
        encoding = _encoding(path)
        if encoding is None:
            raise _unreadable(path)
        with path.open(encoding=encoding, newline="") as handle:
            first = next((line for line in handle if line.strip()), "")
            handle.seek(0)
            # Excel's "Unicode text" export is tab-separated.
            delimiter = "\t" if "\t" in first and "," not in first else ","
            reader = csv.reader(handle, delimiter=delimiter)
            start = 1
            for cells in reader:
                yield start, [cell.strip() for cell in cells]
                # A quoted cell may span lines; the next record starts after this one ends.
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _unreadable(path) from exc


def _read_xlsx(path: Path) -> Table:
    # A broken upload can fail anywhere inside openpyxl, with any exception type,
    # and corrupt sheets only fail lazily while rows are read.
    try:
        # Read-only mode streams the sheet's rows from the zip.
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise _unreadable(path) from exc
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        # The read-only reader yields empty tuples for missing rows, so numbers stay true.
        for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            yield number, [_cell_text(value) for value in values]
    except Exception as exc:
        raise _unreadable(path) from exc
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Excel stores a typed-in phone number as a float: 13800000001.0.
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def _records(table: Table) -> Iterator[tuple[int, dict[str, str]]]:
    """The data rows as {column: cell}, every known column present; blank rows skipped."""
    rows = ((line, cells) for line, cells in table if any(cells))
    found = next(rows, None)
    if found is None:
        raise RosterError([RosterProblem(None, "roster.file_empty")])
    header_line, header = found
    positions: dict[str, int] = {}
    problems: list[RosterProblem] = []
    for index, title in enumerate(header):
        column = HEADER_ALIASES.get(title.lower().replace(" ", "_").replace("-", "_"))
        if column is None:
            continue  # extra columns (notes, seat numbers) are the admin's business
        if column in positions:
            problems.append(
                RosterProblem(header_line, "roster.column_duplicate", {"column": column})
            )
        positions[column] = index
    for column in REQUIRED_COLUMNS:
        if column not in positions:
            problems.append(RosterProblem(None, "roster.column_missing", {"column": column}))
    if problems:
        raise RosterError(problems)
    for line, cells in rows:
        yield line, {column: _cell(cells, positions.get(column)) for column in COLUMNS}


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _duplicates(
    line: int, record: dict[str, str], first: dict[tuple[str, str], int]
) -> list[RosterProblem]:
    """Where this row repeats an earlier row's phone, employee number or channel
    identity; `first` remembers each value's first line, across the rows."""
    problems: list[RosterProblem] = []
    phone = normalize_phone(record["phone"]) if record["phone"] else None
    if phone is not None:
        if ("phone", phone) in first:
            problems.append(
                RosterProblem(line, "roster.duplicate_phone", {"first_line": first["phone", phone]})
            )
        else:
            first["phone", phone] = line
    for column in ("employee_no", "telegram_id", "wecom_userid"):
        value = record[column]
        if not value:
            continue
        if (column, value) in first:
            kind = "employee_no" if column == "employee_no" else "identity"
            key = f"roster.duplicate_{kind}"
            params = {"column": column, "value": value, "first_line": first[column, value]}
            problems.append(RosterProblem(line, key, params))
        else:
            first[column, value] = line
    return problems
