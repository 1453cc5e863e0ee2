"""Checklist definitions: one TOML file per checklist beside this module,
validated at start. A new checklist is a new file, not new code."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.hazard_rules import HazardCategory
from bot.model import Role


class Text(BaseModel):
    """One piece of text in every language we ship."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    zh_cn: str = Field(alias="zh-CN", min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return self.en if language == "en" else self.zh_cn


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text: Text
    section: Text | None = None
    # The hazard category a ⚠️ answer files under; the checklist's if not given.
    category: HazardCategory | None = None


class Checklist(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")
    command: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    # 'day': one run a local day; 'quarter': one a quarter; a second start offers a redo.
    period: Literal["day", "quarter"]
    # Who may run it; empty means every active member of staff.
    roles: list[Role] = []
    # Where it stands in /help (lower first).
    order: int = 100
    title: Text
    # The hazard category of its ⚠️ answers, unless an item says otherwise.
    category: HazardCategory = "other"
    items: list[Item] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique_keys(cls, items: list[Item]) -> list[Item]:
        keys = [item.key for item in items]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"duplicate item keys: {', '.join(duplicates)}")
        return items

    def may_run(self, roles: frozenset[Role]) -> bool:
        return not self.roles or any(role in roles for role in self.roles)


class ChecklistError(Exception):
    """A shipped or added checklist file is invalid; names the file and the problem."""


@cache
def load_all() -> dict[str, Checklist]:
    """Every shipped checklist, by id, in /help order."""
    return load_folder(resources.files(__name__))


def load_folder(folder: Traversable) -> dict[str, Checklist]:
    """The checklists of one folder; raises ChecklistError naming the first bad file."""
    found: dict[str, Checklist] = {}
    commands: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            checklist = Checklist.model_validate(tomllib.loads(entry.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ChecklistError(f"checklist {entry.name}: {exc}") from None
        if entry.name != f"{checklist.id}.toml":
            raise ChecklistError(f"checklist {entry.name}: id {checklist.id!r} must match the file")
        if checklist.command in commands:
            raise ChecklistError(
                f"checklist {entry.name}: command /{checklist.command} already used by"
                f" {commands[checklist.command]}"
            )
        commands[checklist.command] = checklist.id
        found[checklist.id] = checklist
    return dict(sorted(found.items(), key=lambda pair: (pair[1].order, pair[0])))


def by_command() -> dict[str, Checklist]:
    return {checklist.command: checklist for checklist in load_all().values()}
