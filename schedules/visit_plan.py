"""Regular home visits (REGULATIONS §5): a client's care plan names visit
times ('周一 09:00，周四 14:30-15:30'); the planner turns them into planned
visits for today and tomorrow, in the client's local time, for the client's
first active assigned worker, and keeps those plans in line with the care
plan. It reads and writes through the store only."""

from __future__ import annotations

import logging
import re
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.store import clients, people
from schedules.clock import iso, local_date
from schedules.visits import plan_request

log = logging.getLogger(__name__)

PLAN_DAYS = 2  # today and tomorrow, in each client's local time
DEFAULT_LENGTH = timedelta(hours=1)

_EVERY_DAY = frozenset(range(7))
_NUMERALS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_ENGLISH = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_NAMES: dict[str, frozenset[int]] = {
    **{
        f"{prefix}{numeral}": frozenset({day})
        for prefix in ("周", "星期", "礼拜")
        for numeral, day in _NUMERALS.items()
    },
    **{name: frozenset({day}) for day, name in enumerate(_ENGLISH)},
    **{name[:3]: frozenset({day}) for day, name in enumerate(_ENGLISH)},
    "tues": frozenset({1}),
    "thur": frozenset({3}),
    "thurs": frozenset({3}),
    **dict.fromkeys(("每天", "每日", "daily", "every day", "everyday"), _EVERY_DAY),
    **dict.fromkeys(("工作日", "weekday", "weekdays"), frozenset(range(5))),
    **dict.fromkeys(("周末", "weekend", "weekends"), frozenset({5, 6})),
}
# Between entries; '、' also lists days that share a time ('周一、周四 09:00').
ENTRY_SEPARATORS = re.compile(r"[,，、;；]")
_DASH = r"(?:-|~|–|—|至|到|to)"
_CLOCK = r"\d{1,2}:\d{2}"
_ENTRY = re.compile(rf"^(?P<days>.*?)\s*(?P<start>{_CLOCK})(?:\s*{_DASH}\s*(?P<end>{_CLOCK}))?$")
_DAY_RANGE = re.compile(rf"^(?P<first>.+?)\s*{_DASH}\s*(?P<last>.+)$")


@dataclass(frozen=True, slots=True)
class VisitTime:
    """One regular visit of the care plan: on these weekdays (0 = Monday), at
    `start` local time, for `length`."""

    days: frozenset[int]
    start: time
    length: timedelta = DEFAULT_LENGTH

    def starts_on(self, day: date, timezone: str) -> datetime | None:
        if day.weekday() not in self.days:
            return None
        return datetime.combine(day, self.start, tzinfo=ZoneInfo(timezone))


class VisitTimeError(ValueError):
    """A visit time that cannot be read; `text` is the piece at fault."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def parse_visit_times(text: str) -> tuple[VisitTime, ...]:
    """The regular visits written as '周一 09:00，周四 14:30-15:30', 'Mon, Thu
    09:00', '每天 10:00' or 'daily 10:00-11:30' (an hour when no end is given).
    Raises VisitTimeError naming the first piece that cannot be read."""
    found: list[VisitTime] = []
    waiting: set[int] = set()  # days listed before the time they share
    pending = ""
    for raw in ENTRY_SEPARATORS.split(text):
        piece = " ".join(unicodedata.normalize("NFKC", raw).split()).lower()
        if not piece:
            continue
        match = _ENTRY.match(piece)
        if match is None:
            days = _days(piece)
            if days is None:
                raise VisitTimeError(raw.strip())
            waiting |= days
            pending = pending or raw.strip()
            continue
        days = _days(match["days"]) if match["days"] else None
        if days is None:
            raise VisitTimeError(raw.strip())
        start = _clock(match["start"])
        end = _clock(match["end"]) if match["end"] else None
        if start is None or (match["end"] and end is None):
            raise VisitTimeError(raw.strip())
        length = DEFAULT_LENGTH
        if end is not None:
            length = _minutes(end) - _minutes(start)
            if length <= timedelta(0):
                raise VisitTimeError(raw.strip())
        found.append(VisitTime(frozenset(days | waiting), start, length))
        waiting, pending = set(), ""
    if waiting:
        raise VisitTimeError(pending)  # days with no time after them
    return tuple(found)


def _days(text: str) -> frozenset[int] | None:
    days = DAY_NAMES.get(text.strip())
    if days is not None:
        return days
    span = _DAY_RANGE.match(text.strip())
    if span is None:
        return None
    first, last = DAY_NAMES.get(span["first"]), DAY_NAMES.get(span["last"])
    if first is None or last is None or len(first) != 1 or len(last) != 1:
        return None
    start, end = min(first), min(last)
    return frozenset((start + n) % 7 for n in range((end - start) % 7 + 1))


def _clock(text: str) -> time | None:
    hour, minute = (int(part) for part in text.split(":"))
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def _minutes(moment: time) -> timedelta:
    return timedelta(hours=moment.hour, minutes=moment.minute)


def regular_visits(
    times: tuple[VisitTime, ...], timezone: str, now: datetime, days: int = PLAN_DAYS
) -> list[tuple[datetime, datetime]]:
    """(start, end) of the visits still ahead on the next `days` local days, in order."""
    today = local_date(now, timezone)
    planned: set[tuple[datetime, datetime]] = set()
    for day in (today + timedelta(days=n) for n in range(days)):
        for visit in times:
            starts = visit.starts_on(day, timezone)
            if starts is not None and starts > now:
                planned.add((starts, starts + visit.length))
    return sorted(planned)


def make_planner(default_timezone: str) -> Callable[..., int]:
    def plan(conn: sqlite3.Connection, *, now: datetime) -> int:
        """Planned visits (and their reminders) for every active client's regular
        visit times today and tomorrow; plans a changed care plan no longer
        holds are cancelled. Returns how many visits were planned."""
        planned = 0
        ahead = clients.regular_ahead(conn, iso(now))
        timezones: dict[int, str] = {}
        for client in clients.with_visit_times(conn):
            client_id = int(client["id"])
            unit_id = int(client["unit_id"])
            if unit_id not in timezones:
                timezones[unit_id] = people.unit_timezone(conn, unit_id, default_timezone)
            wanted = _wanted(conn, client, timezones[unit_id], now)
            services = clients.plan(client)
            keep: set[tuple[int, str]] = set()
            for worker_id, starts, ends in wanted:
                keep.add((worker_id, iso(starts)))
                request_id = clients.plan_regular(
                    conn,
                    client_id=client_id,
                    worker_id=worker_id,
                    services=services,
                    starts_at=iso(starts),
                    ends_at=iso(ends),
                    now=iso(now),
                )
                if request_id is not None:
                    plan_request(conn, request_id, starts, now)
                    planned += 1
            stale = [
                int(row["id"])
                for row in ahead.pop(client_id, [])
                if (int(row["worker_id"] or 0), row["starts_at"]) not in keep
            ]
            clients.cancel_regular(conn, stale)
        # Whatever is left belongs to clients no longer active or visited regularly.
        clients.cancel_regular(conn, [int(row["id"]) for rows in ahead.values() for row in rows])
        return planned

    return plan


def _wanted(
    conn: sqlite3.Connection, client: sqlite3.Row, timezone: str, now: datetime
) -> list[tuple[int, datetime, datetime]]:
    """The client's regular visits ahead: (worker id, start, end)."""
    try:
        times = parse_visit_times(str(client["visit_times"]))
    except VisitTimeError:
        # The import refuses such text; a row written some other way is skipped.
        log.warning("unreadable visit times client=%s", client["id"])
        return []
    worker_id = clients.first_worker(conn, int(client["id"]))
    if worker_id is None:
        return []
    return [(worker_id, starts, ends) for starts, ends in regular_visits(times, timezone, now)]


__all__ = [
    "DAY_NAMES",
    "VisitTime",
    "VisitTimeError",
    "make_planner",
    "parse_visit_times",
    "regular_visits",
]
