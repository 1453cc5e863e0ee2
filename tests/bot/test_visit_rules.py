"""Visit rules: readings a worker types, and where a check-in may be."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.model import UserError
from bot.visit_rules import (
    RANGES,
    check_coordinates,
    checkout_doubts,
    judge,
    noteworthy,
    parse_readings,
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("血压 130/85", {"systolic": 130, "diastolic": 85}),
        ("BP 130 / 85 pulse 72", {"systolic": 130, "diastolic": 85, "pulse": 72}),
        ("心率：66 体温36.8 血糖 5.6", {"pulse": 66, "temperature": 36.8, "glucose": 5.6}),
        ("１２０／８０", {"systolic": 120, "diastolic": 80}),  # full-width digits
    ],
)
def test_readings_as_workers_type_them(typed: str, expected: dict[str, float]) -> None:
    assert parse_readings(typed) == expected


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("400/20", "visit.reading_systolic"),
        ("140/20", "visit.reading_diastolic"),
        ("90/120", "visit.pressure_order"),
        ("pulse 10", "visit.reading_pulse"),
        ("体温 30", "visit.reading_temperature"),
        ("血糖 50", "visit.reading_glucose"),
        ("fine", "visit.readings_format"),
    ],
)
def test_insane_readings_are_refused_by_name(typed: str, key: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_readings(typed)
    assert refused.value.key == key


@given(st.text(max_size=60))
def test_any_text_gives_sane_readings_or_a_refusal(text: str) -> None:
    try:
        readings = parse_readings(text)
    except UserError:
        return
    for name, value in readings.items():
        assert RANGES[name].low <= value <= RANGES[name].high


def test_coordinates_and_distances() -> None:
    with pytest.raises(UserError):
        check_coordinates(91, 0)
    with pytest.raises(UserError):
        check_coordinates("x", 0)
    assert judge(31.2304, 121.4737, None, None, 200).distance is None
    near = judge(31.2304, 121.4737, 31.2310, 121.4737, 200)
    assert near.distance is not None and 60 < near.distance < 70 and not near.far
    assert judge(31.2304, 121.4737, 31.2404, 121.4737, 200).far
    with pytest.raises(UserError) as refused:
        judge(39.9042, 116.4074, 31.2304, 121.4737, 200)  # Beijing to Shanghai
    assert refused.value.key == "visit.location_implausible"


@pytest.mark.parametrize(
    ("services", "minutes", "doubts"),
    [
        (0, 0.0, ("no_services", "too_short")),
        (0, 45.0, ("no_services",)),
        (2, 4.9, ("too_short",)),
        (1, 5.0, ()),
    ],
)
def test_a_check_out_is_doubtful_with_no_service_or_hardly_any_time(
    services: int, minutes: float, doubts: tuple[str, ...]
) -> None:
    assert checkout_doubts(services, minutes) == doubts


@pytest.mark.parametrize(
    ("typed", "flagged"),
    [
        ("血压 165/100", ("systolic", "diastolic")),
        ("血压 140/85", ("systolic",)),
        ("血压 139/89 心率 72 体温 36.6 血糖 6.1", ()),
        ("血压 120/90", ("diastolic",)),
        ("血压 85/55", ("systolic", "diastolic")),
        ("体温 37.3 心率 110", ("pulse", "temperature")),
        ("血糖 3.5", ("glucose",)),
    ],
)
def test_readings_outside_the_normal_range_are_noteworthy(
    typed: str, flagged: tuple[str, ...]
) -> None:
    assert noteworthy(parse_readings(typed)) == flagged
