"""The incident rules as pure functions: the time someone types, the count of
people hurt, the report deadline and its reminder days, who oversees."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import incident_rules as rules
from bot.model import Role, Staff, UserError

ZONE = "Asia/Shanghai"
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def refusal(call: object, *args: object) -> str:
    with pytest.raises(UserError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.key


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-11-27 08:30", datetime(2026, 11, 27, 0, 30, tzinfo=UTC)),
        ("2026/11/26 23:15", datetime(2026, 11, 26, 15, 15, tzinfo=UTC)),
        ("11-20 7:05", datetime(2026, 11, 19, 23, 5, tzinfo=UTC)),
        ("08：30", datetime(2026, 11, 27, 0, 30, tzinfo=UTC)),  # a full-width colon
        ("2026-10-28 09:00", datetime(2026, 10, 28, 1, 0, tzinfo=UTC)),  # 30 days ago exactly
    ],
)
def test_incident_times_are_read_in_local_time(typed: str, expected: datetime) -> None:
    assert rules.parse_when(typed, ZONE, NOW) == expected


def test_a_month_and_day_typed_in_january_means_last_december() -> None:
    january = datetime(2027, 1, 3, 1, 0, tzinfo=UTC)
    assert rules.parse_when("12-30 10:00", ZONE, january) == datetime(
        2026, 12, 30, 2, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("09:01", "incident.when_future"),
        ("2026-12-01 10:00", "incident.when_future"),
        ("2026-10-28 08:59", "incident.when_too_old"),
        ("昨天", "time.format"),
        ("2026-11", "time.format"),
        ("1-2-3-4 10:00", "time.format"),
        ("2026-02-30 10:00", "time.no_such_date"),
        ("25:00", "time.no_such_date"),
        ("99999999999999999999:00", "time.no_such_date"),
        ("11-27 08:99999999999999999999", "time.no_such_date"),
    ],
)
def test_bad_incident_times_are_refused(typed: str, key: str) -> None:
    assert refusal(rules.parse_when, typed, ZONE, NOW) == key


@given(st.text(max_size=30))
def test_any_typed_time_is_a_moment_in_the_window_or_a_refusal(typed: str) -> None:
    try:
        moment = rules.parse_when(typed, ZONE, NOW)
    except UserError:
        return
    assert NOW - rules.MAX_AGE <= moment <= NOW


@pytest.mark.parametrize(("typed", "count"), [("0", 0), (" 3 ", 3), ("１２", 12), ("1000", 1000)])
def test_hurt_counts(typed: str, count: int) -> None:
    assert rules.parse_count(typed, "near_miss") == count


@pytest.mark.parametrize("typed", ["", "-1", "1001", "2.5", "三", "1e3", "1 2"])
def test_bad_hurt_counts_are_refused(typed: str) -> None:
    assert refusal(rules.parse_count, typed, "near_miss") == "incident.bad_count"


@pytest.mark.parametrize("kind", sorted(rules.CASUALTY))
def test_a_casualty_with_nobody_hurt_is_refused(kind: str) -> None:
    assert refusal(rules.parse_count, "0", kind) == "incident.hurt_needed"
    assert rules.parse_count("1", kind) == 1


@pytest.mark.parametrize("kind", sorted(set(rules.KINDS) - rules.CASUALTY))
def test_other_incidents_may_have_nobody_hurt(kind: str) -> None:
    assert rules.parse_count("0", kind) == 0


def test_the_report_is_due_at_the_end_of_the_fifteenth_local_day() -> None:
    late_evening = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert rules.report_deadline(late_evening, ZONE) == datetime(
        2026, 12, 12, 15, 59, 59, tzinfo=UTC
    )
    moments = rules.reminder_moments(late_evening, ZONE)
    assert sorted(moments) == [7, 12, 14, 15]
    assert moments[7] == datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # 09:00 local, day 7
    assert moments[15] < rules.report_deadline(late_evening, ZONE)


def test_corrective_action_deadlines() -> None:
    assert rules.parse_action_deadline("2026-11-27", ZONE, NOW) == datetime(
        2026, 11, 27, 15, 59, 59, tzinfo=UTC
    )
    assert refusal(rules.parse_action_deadline, "2026-11-26", ZONE, NOW) == (
        "incident.date_out_of_range"
    )
    assert refusal(rules.parse_action_deadline, "2028-01-01", ZONE, NOW) == (
        "incident.date_out_of_range"
    )
    assert refusal(rules.parse_action_deadline, "next week", ZONE, NOW) == "incident.bad_date"


def staff(roles: set[Role], unit_id: int, active: bool = True) -> Staff:
    return Staff(1, "x", "+86", None, unit_id, frozenset(roles), "zh-CN", active)


def test_who_oversees_an_incident() -> None:
    chain = [3, 2, 1]  # the incident's unit, its parent, the company
    assert rules.oversees(staff({Role.SUPERVISOR}, 2), chain)
    assert not rules.oversees(staff({Role.SUPERVISOR}, 4), chain)  # a sibling unit's head
    assert not rules.oversees(staff({Role.STAFF}, 3), chain)
    assert rules.oversees(staff({Role.SAFETY_OFFICER}, 9), chain)
    assert rules.oversees(staff({Role.ADMIN}, 9), chain)
    assert not rules.oversees(staff({Role.ADMIN}, 9, active=False), chain)


def test_who_may_see_an_incident() -> None:
    chain = [3, 2, 1]
    reporter = staff({Role.STAFF}, 3)  # id 1
    colleague = Staff(2, "y", "+86", None, 3, frozenset({Role.STAFF}), "zh-CN", True)
    assert rules.may_see(reporter, chain, reported_by=1)
    assert not rules.may_see(colleague, chain, reported_by=1)
    assert not rules.may_see(staff({Role.SUPERVISOR}, 4), chain, reported_by=2)
    assert rules.may_see(staff({Role.SUPERVISOR}, 2), chain, reported_by=2)
    assert rules.may_see(staff({Role.SAFETY_OFFICER}, 9), chain, reported_by=2)
    assert not rules.may_see(staff({Role.STAFF}, 3, active=False), chain, reported_by=1)


def test_casualties_and_fires_alert_the_whole_chain() -> None:
    wide = {kind for kind in rules.KINDS if rules.alerts_whole_chain(kind)}
    assert wide == {"injury", "serious_injury", "death", "fire"}
