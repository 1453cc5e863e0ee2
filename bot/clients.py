"""The elder-care client list import (REGULATIONS §5): read a CSV or XLSX list of
clients with their care plans, visit times and assigned workers, validate every
row, and apply the whole list through the store in one transaction. Like the
roster import it reports every problem at once and imports nothing unless every
row is good; no SQL here."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot import phones
from bot.care import services as service_catalogue
from bot.clock import iso
from bot.model import LANGUAGES
from bot.roster import RosterError, RosterProblem, describe, read_table
from bot.store import clients as store
from bot.store import people
from bot.store.clients import ClientEntry, ClientsResult
from bot.store.db import Database
from bot.visit_times import VisitTimeError, parse_visit_times

__all__ = [
    "MAX_TOLERANCE_M",
    "MIN_TOLERANCE_M",
    "ClientProblem",
    "ClientRow",
    "ClientsError",
    "ClientsResult",
    "describe",
    "import_clients_file",
    "load_clients",
    "normalize_client_phone",
]

log = logging.getLogger(__name__)

# A problem with the file: the roster's shape, so `describe` reads it the same way.
ClientProblem = RosterProblem

REQUIRED_COLUMNS = ("number", "name", "address", "unit", "services")
OPTIONAL_COLUMNS = ("lat", "lon", "phone", "emergency_contact", "visit_times", "workers")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Header spellings we accept, after lower-casing and turning spaces/dashes into '_'.
HEADER_ALIASES: dict[str, str] = {
    **{column: column for column in COLUMNS},
    "client_number": "number",
    "client_no": "number",
    "客户编号": "number",
    "编号": "number",
    "姓名": "name",
    "客户姓名": "name",
    "地址": "address",
    "住址": "address",
    "latitude": "lat",
    "纬度": "lat",
    "longitude": "lon",
    "lng": "lon",
    "经度": "lon",
    "电话": "phone",
    "联系电话": "phone",
    "手机": "phone",
    "紧急联系人": "emergency_contact",
    "service_centre": "unit",
    "service_center": "unit",
    "服务中心": "unit",
    "单位": "unit",
    "care_plan": "services",
    "服务项目": "services",
    "护理计划": "services",
    "visit_time": "visit_times",
    "上门时间": "visit_times",
    "worker": "workers",
    "护理员": "workers",
}

MAX_NUMBER = 32
MAX_NAME = 64
MAX_ADDRESS = 200
MAX_CONTACT = 200
# How far from a client's home a check-in may be, as `frontline visits tolerance` takes it.
MIN_TOLERANCE_M = 10
MAX_TOLERANCE_M = 5000

LIST_SEPARATORS = re.compile(r"[,，、;；]")


class ClientsError(Exception):
    """The client list was not imported; `problems` says why, every one of them."""

    def __init__(self, problems: list[ClientProblem]) -> None:
        super().__init__(f"client list not imported: {len(problems)} problem(s)")
        self.problems = problems


def normalize_client_phone(raw: str) -> str | None:
    """A phone in E.164 form: a mobile, or a fixed line with its area code
    (elders often have only that). None if it is neither."""
    return phones.any_line(raw)


def _fail(key: str, **params: Any) -> PydanticCustomError:
    # The error type is the catalog key, so a ValidationError maps straight to problems.
    return PydanticCustomError(key, key, params)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def _folded(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@cache
def _service_names() -> dict[str, str]:
    """Every way a care plan may name a service (key, or title in any language,
    with or without its note in brackets), folded, to its key."""
    names: dict[str, str] = {}
    for key, service in service_catalogue().items():
        names[key] = key
        for language in LANGUAGES:
            title = _folded(service.title.get(language))
            names[title] = key
            names[_folded(re.sub(r"\(.*\)$", "", title))] = key
    return names


def _split(value: str) -> list[str]:
    return list(
        dict.fromkeys(part.strip() for part in LIST_SEPARATORS.split(value) if part.strip())
    )


class ClientRow(BaseModel):
    """One data row of the client list, validated and normalised; its unit and
    workers are still names, checked against the database on import."""

    model_config = ConfigDict(frozen=True)

    line: int
    number: str
    name: str
    address: str
    lat: float | None = None
    lon: float | None = None
    phone: str | None = None  # E.164
    phone_display: str | None = None  # as the file wrote it, for showing
    emergency_contact: str | None = None
    unit: str
    services: tuple[str, ...]
    visit_times: str | None = None
    workers: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _keep_phone_as_written(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("phone"):
            data = {**data, "phone_display": phones.written(str(data["phone"]))}
        return data

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, value: str) -> str:
        if not value:
            raise _fail("clients.number_missing")
        if len(value) > MAX_NUMBER or _has_control(value):
            raise _fail("clients.number_invalid", value=value[:MAX_NUMBER])
        return value

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise _fail("clients.name_missing")
        if len(value) > MAX_NAME or _has_control(value):
            raise _fail("clients.name_invalid", max=MAX_NAME)
        return value

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value:
            raise _fail("clients.address_missing")
        if len(value) > MAX_ADDRESS or _has_control(value):
            raise _fail("clients.address_invalid", max=MAX_ADDRESS)
        return value

    @field_validator("lat", mode="before")
    @classmethod
    def _lat(cls, value: str) -> float | None:
        return _coordinate(value, 90.0, "clients.lat_invalid")

    @field_validator("lon", mode="before")
    @classmethod
    def _lon(cls, value: str) -> float | None:
        return _coordinate(value, 180.0, "clients.lon_invalid")

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: str) -> str | None:
        if not value:
            return None
        phone = normalize_client_phone(value)
        if phone is None:
            raise _fail("clients.phone_invalid", value=value)
        return phone

    @field_validator("emergency_contact", mode="before")
    @classmethod
    def _emergency_contact(cls, value: str) -> str | None:
        if len(value) > MAX_CONTACT or _has_control(value):
            raise _fail("clients.emergency_contact_invalid", max=MAX_CONTACT)
        return value or None

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: str) -> str:
        if not value:
            raise _fail("clients.unit_missing")
        segments = [segment.strip() for segment in value.strip("/").split("/")]
        if not all(segments) or _has_control(value):
            raise _fail("clients.unit_invalid", value=value)
        return "/".join(segments)

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: str) -> tuple[str, ...]:
        names = _service_names()
        keys: list[str] = []
        for part in _split(value):
            key = names.get(_folded(part))
            if key is None:
                raise _fail("clients.service_unknown", value=part)
            keys.append(key)
        if not keys:
            raise _fail("clients.services_missing")
        return tuple(dict.fromkeys(keys))

    @field_validator("visit_times", mode="before")
    @classmethod
    def _visit_times(cls, value: str) -> str | None:
        try:
            parse_visit_times(value)
        except VisitTimeError as exc:
            raise _fail("clients.visit_time_invalid", value=exc.text) from None
        return value or None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: str) -> tuple[str, ...]:
        if _has_control(value):
            raise _fail("clients.value_invalid", column="workers")
        return tuple(_split(value))

    @model_validator(mode="after")
    def _both_coordinates(self) -> ClientRow:
        if (self.lat is None) != (self.lon is None):
            raise _fail("clients.coordinates_incomplete")
        return self


def _coordinate(value: str, limit: float, key: str) -> float | None:
    if not value:
        return None
    try:
        number = float(unicodedata.normalize("NFKC", value))
    except ValueError:
        raise _fail(key, value=value) from None
    if not math.isfinite(number) or abs(number) > limit:
        raise _fail(key, value=value)
    return number


def load_clients(path: Path) -> list[ClientRow]:
    """Read and validate a client list; raise ClientsError listing every problem
    (units and workers are checked against the database on import)."""
    rows, problems = _validate(path)
    if problems:
        raise ClientsError(problems)
    return rows


def _validate(path: Path) -> tuple[list[ClientRow], list[ClientProblem]]:
    """The good rows and the problems of the others; ClientsError if the file
    itself cannot be used."""
    problems: list[ClientProblem] = []
    rows: list[ClientRow] = []
    first: dict[str, int] = {}
    records = 0
    # One pass as the file is read: only the validated rows are kept.
    try:
        for line, record in _records(read_table(path)):
            records += 1
            problems.extend(_duplicates(line, record, first))
            try:
                rows.append(ClientRow.model_validate({"line": line, **record}))
            except ValidationError as exc:
                problems.extend(_problems(line, exc))
    except RosterError as exc:  # the file itself: missing, unreadable, too large, no header
        raise ClientsError(exc.problems) from None
    if not records:
        raise ClientsError([ClientProblem(None, "clients.no_rows")])
    return rows, _in_order(problems)


def _in_order(problems: list[ClientProblem]) -> list[ClientProblem]:
    return sorted(problems, key=lambda problem: problem.line or 0)


async def import_clients_file(
    db: Database,
    path: Path,
    *,
    deactivate_missing: bool,
    now: datetime,
    actor_id: int | None = None,
) -> ClientsResult:
    """Import a client list: all of it in one transaction, or nothing and a
    ClientsError. `actor_id`: who uploaded it, for the audit rows."""
    rows, problems = await asyncio.to_thread(_validate, path)
    stamp = iso(now)

    def apply(conn: sqlite3.Connection) -> ClientsResult:
        # Rows already refused are left out here; every other row's unit and
        # workers are still checked, so that one attempt shows every problem.
        entries, unresolved = _resolve(conn, rows)
        if problems or unresolved:
            raise ClientsError(_in_order(problems + unresolved))
        return store.apply_clients(
            conn, entries, deactivate_missing=deactivate_missing, now=stamp, actor_id=actor_id
        )

    result = await db.transaction(apply)
    log.info(
        "clients imported rows=%d created=%d updated=%d deactivated=%d",
        len(rows),
        result.created,
        result.updated,
        result.deactivated,
    )
    return result


def _resolve(
    conn: sqlite3.Connection, rows: Iterable[ClientRow]
) -> tuple[list[ClientEntry], list[ClientProblem]]:
    """Each row with its unit and workers found among the stored ones, or the
    problems: units are never created here, and workers must be active."""
    entries: list[ClientEntry] = []
    problems: list[ClientProblem] = []
    for row in rows:
        row_problems: list[ClientProblem] = []
        unit_id = people.unit_id(conn, row.unit)
        if unit_id is None:
            row_problems.append(
                ClientProblem(row.line, "clients.unit_unknown", {"value": row.unit})
            )
        worker_ids: list[int] = []
        for who in row.workers:
            found = people.find_staff(conn, who)
            present = [person for person in found if person.active]
            if len(present) == 1:
                worker_ids.append(present[0].id)
                continue
            if len(present) > 1:
                names = "、".join(
                    f"{p.name}（{p.employee_no or phones.display(p.phone, p.phone_display)}）"
                    for p in present
                )
                key, params = "clients.worker_ambiguous", {"value": who, "names": names}
            elif found:
                key, params = "clients.worker_inactive", {"value": who}
            else:
                key, params = "clients.worker_unknown", {"value": who}
            row_problems.append(ClientProblem(row.line, key, params))
        if row_problems or unit_id is None:
            problems.extend(row_problems)
            continue
        entries.append(
            ClientEntry(
                line=row.line,
                number=row.number,
                name=row.name,
                address=row.address,
                lat=row.lat,
                lon=row.lon,
                phone=row.phone,
                phone_display=row.phone_display,
                emergency_contact=row.emergency_contact,
                unit_id=unit_id,
                services=row.services,
                visit_times=row.visit_times,
                worker_ids=tuple(dict.fromkeys(worker_ids)),
            )
        )
    return entries, problems


def _problems(line: int, exc: ValidationError) -> list[ClientProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        key = error["type"]
        params = dict(error.get("ctx") or {})
        if not key.startswith("clients."):
            column = str(error["loc"][0]) if error["loc"] else ""
            key, params = "clients.value_invalid", {"column": column}
        problems.append(ClientProblem(line, key, params))
    return problems


def _records(table: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, dict[str, str]]]:
    """The data rows as {column: cell}, every known column present; blank rows skipped."""
    rows = ((line, cells) for line, cells in table if any(cells))
    found = next(rows, None)
    if found is None:
        raise ClientsError([ClientProblem(None, "roster.file_empty")])
    header_line, header = found
    positions: dict[str, int] = {}
    problems: list[ClientProblem] = []
    for index, title in enumerate(header):
        column = HEADER_ALIASES.get(title.lower().replace(" ", "_").replace("-", "_"))
        if column is None:
            continue  # extra columns (notes, ...) are the centre's business
        if column in positions:
            problems.append(
                ClientProblem(header_line, "roster.column_duplicate", {"column": column})
            )
        positions[column] = index
    for column in REQUIRED_COLUMNS:
        if column not in positions:
            problems.append(ClientProblem(None, "roster.column_missing", {"column": column}))
    if problems:
        raise ClientsError(problems)
    for line, cells in rows:
        yield line, {column: _cell(cells, positions.get(column)) for column in COLUMNS}


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _duplicates(line: int, record: dict[str, str], first: dict[str, int]) -> list[ClientProblem]:
    """Whether this row repeats an earlier row's client number; `first`
    remembers each number's first line, across the rows."""
    number = record["number"]
    if not number:
        return []
    if number in first:
        params = {"value": number, "first_line": first[number]}
        return [ClientProblem(line, "clients.duplicate_number", params)]
    first[number] = line
    return []
