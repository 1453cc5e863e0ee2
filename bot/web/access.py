"""Who sees what on the desk, from the stored role and unit of the person
signed in and the chat's own rules (bot/hazard_rules.py): a supervisor reads
their unit's subtree, safety officers and admins every unit, everyone what
they reported or must fix. A hazard someone may not see does not exist for
them (404), so its number never tells them anything."""

from __future__ import annotations

from dataclasses import dataclass

from bot import hazard_rules
from bot.hazard_rules import TRANSITIONS, Action, HazardFacts, Status
from bot.model import Role, Staff
from bot.store.hazard_reads import HazardLine, HazardQuery
from bot.web.units import UnitTree

OVERSIGHT_ROLES = (Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Access:
    staff: Staff
    tree: UnitTree

    @property
    def every_unit(self) -> bool:
        return self.staff.has(Role.SAFETY_OFFICER, Role.ADMIN)

    @property
    def oversees_any(self) -> bool:
        return self.staff.has(*OVERSIGHT_ROLES)

    def units(self) -> list[int]:
        """The units whose registers this person reads, in tree order."""
        if self.every_unit:
            return [uid for root in self.tree.roots() for uid in self.tree.subtree(root)]
        if self.staff.has(Role.SUPERVISOR):
            return self.tree.subtree(self.staff.unit_id)
        return []

    def top_units(self) -> list[int]:
        """Where this person's part of the tree starts."""
        if self.every_unit:
            return self.tree.roots()
        return [self.staff.unit_id] if self.staff.has(Role.SUPERVISOR) else []

    def oversees(self, unit_id: int) -> bool:
        """A supervisor of the unit or of a unit above it (people.supervises)."""
        return self.staff.has(Role.SUPERVISOR) and self.staff.unit_id in self.tree.chain(unit_id)

    def may_see(self, hazard: HazardLine) -> bool:
        return hazard_rules.may_see(
            self.staff, hazard.reported_by, hazard.responsible_id, self.oversees(hazard.unit_id)
        )

    def actions(self, hazard: HazardLine) -> list[Action]:
        """What this person may do to the hazard now, by the chat's rules."""
        status = Status(hazard.status)
        facts = HazardFacts(status, hazard.responsible_id)
        over = self.oversees(hazard.unit_id)
        return [
            action
            for action in Action
            if (status, action) in TRANSITIONS and hazard_rules.may(action, self.staff, facts, over)
        ]

    def hazard_scope(self) -> HazardQuery:
        """The register rows this person may read, before any filter."""
        if self.every_unit:
            return HazardQuery(person_id=self.staff.id)
        if self.staff.has(Role.SUPERVISOR):
            return HazardQuery(
                scope_units=tuple(self.tree.subtree(self.staff.unit_id)),
                person_id=self.staff.id,
            )
        return HazardQuery(person_id=self.staff.id, own_only=True)
