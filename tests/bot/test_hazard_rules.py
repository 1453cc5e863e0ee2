"""The hazard closed loop's rules, as an auditor would check them: every
action by every kind of actor, in every state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.hazard_rules import (
    OVERSIGHT,
    TRANSITIONS,
    Action,
    HazardFacts,
    Report,
    Status,
    assignable_units,
    check,
    deciders,
    distance_m,
    hazard_number,
    incident_number,
    is_repeat,
    may,
    may_be_responsible,
    next_status,
    parse_amount,
    quick_deadlines,
    similarity,
)
from bot.model import Role, Staff, UserError


def person(pid: int, *roles: Role, active: bool = True) -> Staff:
    return Staff(pid, f"p{pid}", f"+86138{pid:08d}", None, 1, frozenset(roles), "zh-CN", active)


WORKER = person(1, Role.STAFF)
RESPONSIBLE = person(2, Role.STAFF)
SUPERVISOR = person(3, Role.SUPERVISOR)
OFFICER = person(4, Role.SAFETY_OFFICER)
ADMIN = person(5, Role.ADMIN)
RESPONSIBLE_SUPERVISOR = person(6, Role.SUPERVISOR)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(
    ("actor", "oversees"),
    [
        (WORKER, False),
        (RESPONSIBLE, False),
        (SUPERVISOR, True),
        (SUPERVISOR, False),  # a supervisor of another unit
        (OFFICER, False),
        (ADMIN, False),
        (person(7, Role.SUPERVISOR, active=False), True),
    ],
)
def test_only_allowed_actions_in_the_right_state_succeed(
    status: Status, action: Action, actor: Staff, oversees: bool
) -> None:
    hazard = HazardFacts(status, responsible_id=RESPONSIBLE.id)
    allowed = may(action, actor, hazard, oversees)
    applies = (status, action) in TRANSITIONS
    if allowed and applies:
        assert check(action, actor, hazard, oversees) == TRANSITIONS[(status, action)]
    else:
        with pytest.raises(UserError):
            check(action, actor, hazard, oversees)
    # The rules in words:
    if action in (Action.START, Action.SUBMIT, Action.REQUEST_EXTENSION):
        assert allowed == (actor is RESPONSIBLE)
    elif not actor.active or actor in (WORKER, RESPONSIBLE, ADMIN):
        assert not allowed
    elif actor is SUPERVISOR:
        assert allowed == oversees
    elif actor is OFFICER:
        assert allowed


def test_nobody_accepts_their_own_rectification() -> None:
    hazard = HazardFacts(Status.SUBMITTED, responsible_id=RESPONSIBLE_SUPERVISOR.id)
    assert not may(Action.ACCEPT, RESPONSIBLE_SUPERVISOR, hazard, oversees_unit=True)
    assert may(Action.ACCEPT, SUPERVISOR, hazard, oversees_unit=True)


@pytest.mark.parametrize("action", sorted(OVERSIGHT))
@pytest.mark.parametrize("responsible", [RESPONSIBLE_SUPERVISOR, person(8, Role.SAFETY_OFFICER)])
def test_nobody_oversees_their_own_work(action: Action, responsible: Staff) -> None:
    """Approving one's own extension, sending back, reassigning or ordering
    one's own work is refused as acceptance is; someone else may."""
    hazard = HazardFacts(Status.SUBMITTED, responsible_id=responsible.id)
    assert not may(action, responsible, hazard, oversees_unit=True)
    assert may(action, SUPERVISOR, hazard, oversees_unit=True)
    assert may(action, OFFICER, hazard, oversees_unit=False)


def head(pid: int, unit: int, *, active: bool = True) -> Staff:
    return Staff(pid, f"p{pid}", None, None, unit, frozenset({Role.SUPERVISOR}), "zh-CN", active)


def test_deciders_are_the_nearest_supervisors_up_the_tree() -> None:
    team, department, centre = head(11, 3), head(12, 2), head(13, 1)
    second = head(14, 2)
    chain = [team, department, second, centre]
    assert deciders(chain, [OFFICER], responsible_id=RESPONSIBLE.id) == [team]
    # The team's head is the responsible person: the department's heads decide.
    assert deciders(chain, [OFFICER], responsible_id=team.id) == [department, second]
    # Of two heads of one unit, the other one decides.
    assert deciders([department, second, centre], [OFFICER], department.id) == [second]


def test_without_another_supervisor_the_safety_officers_decide() -> None:
    only = head(11, 3)
    assert deciders([only], [OFFICER], responsible_id=only.id) == [OFFICER]
    assert deciders([], [OFFICER], responsible_id=None) == [OFFICER]
    # A responsible safety officer is not asked about their own work either.
    assert deciders([only], [OFFICER], responsible_id=OFFICER.id) == [only]
    assert deciders([], [OFFICER], responsible_id=OFFICER.id) == []


@given(
    st.lists(st.tuples(st.integers(1, 8), st.integers(1, 4), st.booleans()), max_size=8),
    st.integers(1, 8),
)
def test_the_responsible_person_is_never_asked_to_decide(
    heads: list[tuple[int, int, bool]], responsible: int
) -> None:
    chain = [head(pid, unit, active=active) for pid, unit, active in heads]
    officers = [person(pid, Role.SAFETY_OFFICER) for pid in (1, 9)]
    chosen = deciders(chain, officers, responsible)
    assert chosen
    assert all(s.active and s.id != responsible for s in chosen)


def member(pid: int, unit: int, *roles: Role) -> Staff:
    return Staff(pid, f"p{pid}", None, None, unit, frozenset(roles), "zh-CN", True)


def test_the_responsible_person_comes_from_the_hazards_subtree_or_the_assigners() -> None:
    # Units: 1 the centre, 2 a department under it, 3 a team in 2, 4 another department.
    hazard_units, department = [3], [2, 3]
    head = member(10, 2, Role.SUPERVISOR)
    officer = member(11, 1, Role.SAFETY_OFFICER)
    assert assignable_units(hazard_units, head, department) == [3, 2]
    assert assignable_units(hazard_units, officer, [1, 2, 3, 4]) == [3]
    scope = assignable_units(hazard_units, head, department)
    assert may_be_responsible(member(1, 3, Role.STAFF), scope)
    assert may_be_responsible(head, scope)  # he may take it on himself
    assert not may_be_responsible(member(2, 4, Role.SUPERVISOR), scope)  # another department
    assert not may_be_responsible(member(3, 1, Role.ADMIN), scope)  # the centre above
    assert not may_be_responsible(member(4, 1, Role.STAFF), [3])


def test_closed_hazard_takes_no_more_actions() -> None:
    for action in Action:
        with pytest.raises(UserError) as refused:
            next_status(Status.CLOSED, action)
        assert refused.value.key == "hazard.not_now"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("0", "0"),
        ("无", "0"),
        ("1200", "1200"),
        ("1,200.50", "1200.50"),
        ("¥300", "300"),
        ("３００元", "300"),
        ("1000000000", "1000000000"),
    ],
)
def test_amounts_people_type(text: str, amount: str) -> None:
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("一万", "hazard.amount_format"),
        ("1e9", "hazard.amount_format"),
        ("-5", "hazard.amount_format"),
        ("12.345", "hazard.amount_format"),
        ("", "hazard.amount_format"),
        ("NaN", "hazard.amount_format"),
        ("1000000000.01", "hazard.amount_too_large"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(text: str, key: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_amount(text)
    assert refused.value.key == key


@given(st.text(max_size=40))
def test_any_typed_amount_is_a_valid_amount_or_a_refusal(text: str) -> None:
    try:
        amount = parse_amount(text)
    except UserError:
        return
    assert Decimal(0) <= amount <= Decimal(1_000_000_000)
    assert amount == amount.quantize(Decimal("0.01"))


def test_register_numbers() -> None:
    assert hazard_number(2026, 1) == "YH-2026-0001"
    assert incident_number(2026, 12) == "SG-2026-012"


def test_quick_deadlines_are_ends_of_local_days() -> None:
    end = datetime(2026, 11, 27, 15, 59, 59, tzinfo=UTC)
    choices = quick_deadlines(end - timedelta(hours=6), end)
    assert choices["tomorrow"] - choices["today"] == timedelta(days=1)
    assert choices["7d"] - choices["today"] == timedelta(days=7)


def test_repeat_detection_same_place_category_and_words() -> None:
    first = Report("evacuation", "二楼消防通道被纸箱堵住", place="二楼东侧")
    again = Report("evacuation", "二楼东侧消防通道又被纸箱堵了", place="二楼东侧")
    elsewhere = Report("evacuation", "二楼消防通道被纸箱堵住", place="一楼大厅")
    other_kind = Report("fire", "二楼消防通道被纸箱堵住", place="二楼东侧")
    assert is_repeat(again, first)
    assert not is_repeat(elsewhere, first)
    assert not is_repeat(other_kind, first)
    near = Report("electrical", "配电箱门损坏", lat=31.2304, lon=121.4737)
    near_again = Report("electrical", "配电箱的门坏了", lat=31.23055, lon=121.4737)
    far = Report("electrical", "配电箱门损坏", lat=31.2310, lon=121.4737)
    assert distance_m(31.2304, 121.4737, 31.23055, 121.4737) < 30
    assert is_repeat(near_again, near) and not is_repeat(far, near)
    assert similarity("", "abc") == 0.0
