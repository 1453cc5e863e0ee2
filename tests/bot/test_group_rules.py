"""Who may bind a group chat as a unit's alert group, without a database."""

from __future__ import annotations

import pytest

from bot.group_rules import may_bind_group
from bot.model import Role, Staff

# Units: 1 the centre, 2 a department under it, 3 a team in 2, 4 another department.
TEAM, DEPARTMENT, OTHER = [3, 2, 1], [2, 1], [4, 1]


def someone(unit: int, *roles: Role, active: bool = True) -> Staff:
    return Staff(unit * 10, "p", None, None, unit, frozenset(roles), "zh-CN", active)


@pytest.mark.parametrize("roles", [(Role.STAFF,), (Role.SAFETY_OFFICER,), (Role.CARE_WORKER,)])
def test_only_supervisors_and_admins_bind(roles: tuple[Role, ...]) -> None:
    assert not may_bind_group(someone(2, *roles), None)
    assert not may_bind_group(someone(2, *roles), DEPARTMENT)


def test_a_free_group_or_one_of_ones_own_unit() -> None:
    head = someone(2, Role.SUPERVISOR)
    assert may_bind_group(head, None)
    assert may_bind_group(head, DEPARTMENT)
    assert not may_bind_group(someone(2, Role.SUPERVISOR, active=False), None)


def test_a_group_of_another_unit_only_from_above_it_or_by_an_admin() -> None:
    assert not may_bind_group(someone(4, Role.SUPERVISOR), DEPARTMENT)  # a sibling department
    assert not may_bind_group(someone(3, Role.SUPERVISOR), DEPARTMENT)  # a team below it
    assert may_bind_group(someone(2, Role.SUPERVISOR), TEAM)  # the department above the team
    assert may_bind_group(someone(1, Role.SUPERVISOR), OTHER)  # the centre above both
    assert may_bind_group(someone(4, Role.ADMIN), DEPARTMENT)
