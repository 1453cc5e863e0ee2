"""The hazard register's filters as they arrive in a URL, checked and turned
into the store's HazardQuery. Anything unknown or malformed is dropped, not
an error: a hand-edited URL shows the register unfiltered. Pure functions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bot.clock import iso
from bot.hazard_rules import CATEGORIES, SEVERITIES, Status
from bot.store.hazard_reads import HazardQuery
from bot.store.hazards import OPEN_STATES
from bot.web.units import UnitTree

PAGE_SIZE = 25
SORTS = ("new", "old", "deadline", "severity")
STATUSES = ("active", *(status.value for status in Status))
MAX_SEARCH = 100


@dataclass(frozen=True, slots=True)
class Filters:
    unit: int | None = None
    status: str = ""
    severity: str = ""
    category: str = ""
    first: date | None = None
    last: date | None = None
    overdue: bool = False
    mine: bool = False  # only what I reported or must fix
    responsible: str = ""
    q: str = ""
    sort: str = "new"
    page: int = 1

    def link(self, **changes: object) -> str:
        """This view's query string with some filters changed (page back to 1
        unless a page is given)."""
        changed = dataclasses.replace(self, **({"page": 1} | changes))  # type: ignore[arg-type]
        pairs = {
            "unit": changed.unit or "",
            "status": changed.status,
            "severity": changed.severity,
            "category": changed.category,
            "from": changed.first.isoformat() if changed.first else "",
            "to": changed.last.isoformat() if changed.last else "",
            "overdue": "1" if changed.overdue else "",
            "mine": "1" if changed.mine else "",
            "responsible": changed.responsible,
            "q": changed.q,
            "sort": "" if changed.sort == "new" else changed.sort,
            "page": changed.page if changed.page > 1 else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v not in ("", None)})

    @property
    def any(self) -> bool:
        return self.link() != ""


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdecimal() and len(text) < 10 else None


def parse(params: Mapping[str, str]) -> Filters:
    first, last = _date(params.get("from", "")), _date(params.get("to", ""))
    if first and last and last < first:
        first, last = last, first
    return Filters(
        unit=_int(params.get("unit", "")),
        status=params.get("status", "") if params.get("status", "") in STATUSES else "",
        severity=params.get("severity", "") if params.get("severity", "") in SEVERITIES else "",
        category=params.get("category", "") if params.get("category", "") in CATEGORIES else "",
        first=first,
        last=last,
        overdue=params.get("overdue", "") in ("1", "on", "true"),
        mine=params.get("mine", "") in ("1", "on", "true"),
        responsible=params.get("responsible", "").strip()[:40],
        q=" ".join(params.get("q", "").split())[:MAX_SEARCH],
        sort=params.get("sort", "new") if params.get("sort", "new") in SORTS else "new",
        page=max(1, min(_int(params.get("page", "")) or 1, 100_000)),
    )


def query(
    filters: Filters,
    scope: HazardQuery,
    tree: UnitTree,
    *,
    timezone: str,
    now: datetime,
    responsible_ids: tuple[int, ...] | None,
) -> HazardQuery:
    """The scope (what this person may read) narrowed by the filters; dates
    are local days of `timezone`."""
    zone = ZoneInfo(timezone)
    statuses: tuple[str, ...] | None = None
    if filters.status == "active":
        statuses = OPEN_STATES
    elif filters.status:
        statuses = (filters.status,)
    if filters.mine and scope.person_id is not None:
        scope = dataclasses.replace(scope, own_only=True)
    return dataclasses.replace(
        scope,
        units=tuple(tree.subtree(filters.unit)) if filters.unit is not None else None,
        statuses=statuses,
        severity=filters.severity or None,
        category=filters.category or None,
        created_from=iso(datetime.combine(filters.first, time(), zone)) if filters.first else None,
        created_before=iso(datetime.combine(filters.last + timedelta(days=1), time(), zone))
        if filters.last
        else None,
        overdue_at=iso(now) if filters.overdue else None,
        responsible_ids=responsible_ids,
        search=tuple(filters.q.split()),
        sort=filters.sort,
    )
