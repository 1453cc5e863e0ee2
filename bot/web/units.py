"""The unit tree as the desk holds it for one request: read in one query,
then subtrees, chains and time zones are walks in memory (the same answers
as bot/store/people.py's recursive queries, without a query per question)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.store.desk_reads import Unit


class UnitTree:
    def __init__(self, units: Iterable[Unit]) -> None:
        self.by_id = {unit.id: unit for unit in units}
        self._children: dict[int, list[int]] = {}
        for unit in sorted(self.by_id.values(), key=lambda u: u.path):
            if unit.parent_id is not None:
                self._children.setdefault(unit.parent_id, []).append(unit.id)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.by_id

    def subtree(self, unit_id: int) -> list[int]:
        """The unit and every unit below it, depth first in path order."""
        if unit_id not in self.by_id:
            return []
        found, stack = [], [unit_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self._children.get(current, [])))
        return found

    def children(self, unit_id: int) -> list[int]:
        return self._children.get(unit_id, [])

    def chain(self, unit_id: int) -> list[int]:
        """The unit and its ancestors, nearest first."""
        found: list[int] = []
        current = self.by_id.get(unit_id)
        while current is not None and current.id not in found:
            found.append(current.id)
            current = self.by_id.get(current.parent_id) if current.parent_id else None
        return found

    def roots(self) -> list[int]:
        return sorted(
            (u.id for u in self.by_id.values() if u.parent_id not in self.by_id),
            key=lambda uid: self.by_id[uid].path,
        )

    def depth(self, unit_id: int) -> int:
        return len(self.chain(unit_id)) - 1

    def path(self, unit_id: int) -> str:
        unit = self.by_id.get(unit_id)
        return unit.path if unit else "—"

    def timezone(self, unit_id: int, default: str) -> str:
        for uid in self.chain(unit_id):
            zone = self.by_id[uid].timezone
            if zone:
                return zone
        return default
