"""The clock every room asks for the time, and the local-time rules built on
it. Production reads the system clock; tests move a `FakeClock` by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """How the store writes a timestamp: UTC, ISO-8601, microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local_date(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def end_of_local_day(moment: datetime, timezone: str) -> datetime:
    """The last moment of `moment`'s local day, in UTC: a same-day deadline."""
    return end_of_day(local_date(moment, timezone), timezone)


def end_of_day(day: date, timezone: str) -> datetime:
    """The last moment (23:59:59) of a local day, in UTC."""
    end = datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(timezone))
    return end.astimezone(UTC)


def local_time_text(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


__all__ = [
    "Clock",
    "FakeClock",
    "SystemClock",
    "end_of_day",
    "end_of_local_day",
    "iso",
    "local_date",
    "local_time_text",
    "parse_iso",
]


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set (True) or `seconds` pass (False). A cancel
    always cancels it: Python 3.11's asyncio.wait_for, cancelled in the turn of
    the loop that set the event, returned and dropped the cancel."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
