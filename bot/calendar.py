"""Work calendars: which local days a unit works (weekends, mainland China's
public holidays and adjusted working days 调休, from the `holidays` library),
when its shifts start, and turning a local date and time someone typed into
one exact UTC moment. Pure functions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.model import UserError


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """How one unit works. `every_day` units (security, elder care) ignore
    weekends and holidays; the others follow China's official calendar."""

    timezone: str  # the unit's, from people.unit_timezone
    shift_starts: tuple[time, ...] = (time(8, 30),)
    every_day: bool = False
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))  # Mon=0


@lru_cache(maxsize=16)
def _china(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


def is_working_day(calendar: WorkCalendar, day: date) -> bool:
    if calendar.every_day:
        return True
    official = _china(day.year)
    if day in official:
        return False
    # 调休: a weekend day the State Council made a working day.
    if day in getattr(official, "weekend_workdays", set()):
        return True
    return day.weekday() in calendar.weekdays


def shift_starts_on(calendar: WorkCalendar, day: date) -> list[datetime]:
    """The UTC moments the unit's shifts start on a local day (none on a day off)."""
    if not is_working_day(calendar, day):
        return []
    return [exact_moment(day, start, calendar.timezone) for start in calendar.shift_starts]


def exact_moment(day: date, at: time, timezone: str) -> datetime:
    """A local wall-clock time as one UTC moment. A time that does not exist
    (skipped by a daylight-saving change) or happens twice (repeated by one)
    is refused: a reminder must not fire at a guessed moment."""
    zone = ZoneInfo(timezone)
    when = f"{day.isoformat()} {at.strftime('%H:%M')}"
    first = datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    round_trip = first.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != first.replace(tzinfo=None):
        raise UserError("time.nonexistent", when=when)
    if first.utcoffset() != first.replace(fold=1).utcoffset():
        raise UserError("time.ambiguous", when=when)
    return first.astimezone(UTC)


def parse_local(
    text: str,
    timezone: str,
    now: datetime,
    *,
    past: bool = False,
    date_only: time | None = None,
) -> datetime:
    """A date and time someone typed (`2026-12-03 14:30`, `2026/12/3 9:00`,
    `12-03 14:30` for this year) as a UTC moment in the future (with `past`,
    one that has come). With `date_only`, a date alone means that time of it
    (a deadline: the end of the day). A refusal quotes the text as typed."""
    typed = text.strip()[:40]
    cleaned = " ".join(text.replace("/", "-").replace("：", ":").split())
    day_text, _, time_text = cleaned.partition(" ")
    parts = day_text.split("-")
    try:
        if len(parts) == 2:
            parts.insert(0, str(now.astimezone(ZoneInfo(timezone)).year))
        year, month, day = (int(p) for p in parts)
        if date_only is not None and not time_text:
            hour, minute, second = date_only.hour, date_only.minute, date_only.second
        else:
            hour, minute = (int(p) for p in time_text.split(":"))
            second = 0
    except ValueError:
        raise UserError("time.format", text=typed) from None
    try:
        local_day = date(year, month, day)
        at = time(hour, minute, second)
    except (ValueError, OverflowError):  # 31 February, 25:00, hour 10**20
        raise UserError("time.no_such_date", text=typed) from None
    moment = exact_moment(local_day, at, timezone)
    if past and moment > now:
        raise UserError("time.not_yet", text=typed)
    if not past and moment <= now:
        raise UserError("time.in_the_past", text=typed)
    return moment


def next_working_days(calendar: WorkCalendar, start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        if is_working_day(calendar, day):
            days.append(day)
        day += timedelta(days=1)
    return days
