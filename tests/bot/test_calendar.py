"""Work calendars and typed times, as a planner would meet them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from bot.calendar import (
    WorkCalendar,
    exact_moment,
    is_working_day,
    parse_local,
    shift_starts_on,
)
from bot.model import UserError

OFFICE = WorkCalendar("Asia/Shanghai")
SECURITY = WorkCalendar("Asia/Shanghai", every_day=True, shift_starts=(time(8), time(20)))
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def test_weekends_and_public_holidays_are_off_for_an_office() -> None:
    assert is_working_day(OFFICE, date(2026, 11, 27))  # a Friday
    assert not is_working_day(OFFICE, date(2026, 11, 28))  # Saturday
    assert not is_working_day(OFFICE, date(2026, 10, 1))  # National Day
    assert not is_working_day(OFFICE, date(2026, 2, 17))  # Spring Festival


def test_adjusted_weekend_working_days_are_worked() -> None:
    assert date(2026, 2, 14).weekday() == 5
    assert is_working_day(OFFICE, date(2026, 2, 14))  # 调休: Saturday made a working day


def test_round_the_clock_units_work_every_day_with_several_shifts() -> None:
    assert is_working_day(SECURITY, date(2026, 10, 1))
    starts = shift_starts_on(SECURITY, date(2026, 10, 1))
    assert [s.isoformat() for s in starts] == [
        "2026-10-01T00:00:00+00:00",
        "2026-10-01T12:00:00+00:00",
    ]
    assert shift_starts_on(OFFICE, date(2026, 10, 1)) == []


def test_typed_times_become_utc_moments() -> None:
    assert parse_local("2026-12-03 14:30", "Asia/Shanghai", NOW).isoformat() == (
        "2026-12-03T06:30:00+00:00"
    )
    assert parse_local("2026/12/3 9:05", "Asia/Shanghai", NOW).hour == 1
    assert parse_local("12-03 14:30", "Asia/Shanghai", NOW).year == 2026


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("2027-02-31 10:00", "time.no_such_date"),
        ("2026-12-03 25:00", "time.no_such_date"),
        ("2026-12-03 99999999999999999999:00", "time.no_such_date"),
        ("99999999999999999999-12-03 10:00", "time.no_such_date"),
        ("2026-11-01 10:00", "time.in_the_past"),
        ("next tuesday", "time.format"),
        ("", "time.format"),
    ],
)
def test_bad_times_are_refused_with_a_reason(text: str, key: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_local(text, "Asia/Shanghai", NOW)
    assert refused.value.key == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("2026/11/01", "time.in_the_past"),
        ("12/05 下午三点", "time.format"),
        ("2/30", "time.no_such_date"),
    ],
)
def test_a_refused_deadline_is_quoted_as_typed(text: str, key: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_local(f" {text}\n", "Asia/Shanghai", NOW, date_only=time(23, 59, 59))
    assert (refused.value.key, refused.value.params) == (key, {"text": text})


def test_a_date_alone_is_the_time_it_stands_for() -> None:
    deadline = parse_local("12-05", "Asia/Shanghai", NOW, date_only=time(23, 59, 59))
    assert deadline.isoformat() == "2026-12-05T15:59:59+00:00"
    with pytest.raises(UserError):  # without date_only a time is needed
        parse_local("12-05", "Asia/Shanghai", NOW)


def test_daylight_saving_gaps_and_repeats_are_refused() -> None:
    with pytest.raises(UserError) as gap:
        exact_moment(date(2027, 3, 14), time(2, 30), "America/New_York")
    assert gap.value.key == "time.nonexistent"
    with pytest.raises(UserError) as repeat:
        exact_moment(date(2026, 11, 1), time(1, 30), "America/New_York")
    assert repeat.value.key == "time.ambiguous"
    assert exact_moment(date(2026, 11, 1), time(3, 0), "America/New_York").hour == 8
