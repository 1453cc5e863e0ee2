"""The weekly picture's numbers: which days a period covers, and what the
registers say about a set of units in it. Pure rules plus one gathering
function that reads through the store; no text, no drawing."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot import charts
from bot.clock import iso
from bot.i18n import t
from bot.store import stats

PRESHIFT = "preshift"


class Choice(StrEnum):
    """The periods /stats offers."""

    THIS_WEEK = "week"
    LAST_WEEK = "lastweek"
    THIS_MONTH = "month"
    LAST_MONTH = "lastmonth"


@dataclass(frozen=True, slots=True)
class Period:
    """Local calendar days, `first` to `last` inclusive."""

    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """Local midnight of the first day to local midnight after the last, in UTC."""
        zone = ZoneInfo(timezone)
        start = datetime.combine(self.first, time(0), tzinfo=zone)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


def week_of(day: date) -> Period:
    monday = day - timedelta(days=day.weekday())
    return Period(monday, monday + timedelta(days=6))


def month_of(day: date) -> Period:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following - timedelta(days=1))


def period_for(choice: Choice, today: date) -> Period:
    if choice is Choice.THIS_WEEK:
        return week_of(today)
    if choice is Choice.LAST_WEEK:
        return week_of(today - timedelta(days=7))
    if choice is Choice.THIS_MONTH:
        return month_of(today)
    return month_of(today.replace(day=1) - timedelta(days=1))


@dataclass(frozen=True, slots=True)
class DayChecks:
    day: date
    done: int  # people who completed the pre-shift check
    staff: int  # active staff of the units


@dataclass(frozen=True, slots=True)
class Picture:
    period: Period
    today: date  # days after it have not happened yet
    checks: tuple[DayChecks, ...]
    hazards_opened: int
    hazards_closed: int
    hazards_overdue: int
    incidents: int
    drills: int
    visits: int
    visit_exceptions: int
    serves_clients: bool = False  # home visits are a register of these units

    @property
    def checks_done(self) -> int:
        return sum(day.done for day in self.checks if day.day <= self.today)

    @property
    def checks_expected(self) -> int:
        return sum(day.staff for day in self.checks if day.day <= self.today)

    @property
    def completion(self) -> int | None:
        """Pre-shift completion over the days so far, in whole percent."""
        expected = self.checks_expected
        return round(100 * self.checks_done / expected) if expected else None


def completion_of(day: DayChecks) -> float:
    return min(100.0, 100 * day.done / day.staff) if day.staff else 0.0


def gather(
    conn: sqlite3.Connection, unit_ids: list[int], period: Period, timezone: str, now: datetime
) -> Picture:
    """What the registers say about `unit_ids` (already the whole subtree)
    during `period`, as of `now`."""
    start, end = period.bounds(timezone)
    since, until, as_of = iso(start), iso(end), iso(min(end, now))
    staff = stats.active_staff(conn, unit_ids)
    done = stats.checks_by_day(
        conn, unit_ids, PRESHIFT, period.first.isoformat(), period.last.isoformat()
    )
    visits, exceptions = stats.visits(conn, unit_ids, since, until)
    return Picture(
        period=period,
        today=now.astimezone(ZoneInfo(timezone)).date(),
        checks=tuple(DayChecks(d, done.get(d.isoformat(), 0), staff) for d in period.days),
        hazards_opened=stats.hazards_opened(conn, unit_ids, since, until),
        hazards_closed=stats.hazards_closed(conn, unit_ids, since, until),
        hazards_overdue=stats.hazards_overdue(conn, unit_ids, as_of),
        incidents=stats.incidents(conn, unit_ids, since, until),
        drills=stats.drills_held(conn, unit_ids, since, until),
        visits=visits,
        visit_exceptions=exceptions,
        serves_clients=stats.has_clients(conn, unit_ids) or visits > 0,
    )


def compose(
    conn: sqlite3.Connection,
    *,
    language: str,
    unit_ids: list[int],
    scope: str,
    period: Period,
    timezone: str,
    now: datetime,
) -> tuple[str, str]:
    """The summary text and the chart (a media path) for these units and period."""
    picture = gather(conn, unit_ids, period, timezone, now)
    title = t(
        language,
        "stats.title",
        scope=scope,
        first=period.first.isoformat(),
        last=period.last.isoformat(),
    )
    rate = picture.completion
    text = t(
        language,
        "stats.summary",
        title=title,
        rate=t(language, "stats.no_rate") if rate is None else f"{rate}%",
        done=picture.checks_done,
        expected=picture.checks_expected,
        opened=picture.hazards_opened,
        closed=picture.hazards_closed,
        overdue=picture.hazards_overdue,
        incidents=picture.incidents,
        drills=picture.drills,
    )
    if picture.serves_clients:  # zero home visits says nothing to a kitchen
        text += "\n" + t(
            language,
            "stats.summary_visits",
            visits=picture.visits,
            exceptions=picture.visit_exceptions,
        )
    return text, charts.attachment(picture, language, title)
