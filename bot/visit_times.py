"""Regular visit times as a care plan writes them ('周一 09:00，周四 14:30-15:30',
'Mon, Thu 09:00', '每天 10:00'): read into weekdays, a start and a length. The
client import checks them; the planner (schedules/visit_plan.py) plans from them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
