"""Who may make a group chat a unit's alert group, as a pure function: a
group bound to one unit is not taken over by another unit's supervisor. No I/O."""

from __future__ import annotations

from collections.abc import Sequence

from bot.model import Role, Staff


def may_bind_group(actor: Staff, bound_chain: Sequence[int] | None) -> bool:
    """Whether `actor` may make the group their own unit's alert group.
    `bound_chain`: the unit the group is bound to now and each unit above it,
    or None if it is bound to none. A supervisor or an admin binds a free
    group or one of their own unit; a group bound to another unit, only an
    admin or a supervisor of that unit or a unit above it (who then heads both)."""
    if not actor.active or not actor.has(Role.SUPERVISOR, Role.ADMIN):
        return False
    if bound_chain is None or actor.has(Role.ADMIN):
        return True
    return actor.unit_id in bound_chain
