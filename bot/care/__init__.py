"""The home-care service catalogue, shipped as data (`services.toml` beside
this module) and validated at first use: care plans and visits name services
by key."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.checklists import Text
from bot.i18n import t


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")
    title: Text


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[Service] = Field(min_length=1)

    @field_validator("services")
    @classmethod
    def _unique(cls, services: list[Service]) -> list[Service]:
        keys = [s.key for s in services]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate service keys")
        return services


@cache
def services() -> dict[str, Service]:
    """Every service of the catalogue, by key, in catalogue order."""
    text = resources.files(__name__).joinpath("services.toml").read_text(encoding="utf-8")
    catalogue = Catalogue.model_validate(tomllib.loads(text))
    return {s.key: s for s in catalogue.services}


def title(key: str, language: str) -> str:
    service = services().get(key)
    return service.title.get(language) if service else key


def titles(keys: Iterable[str], language: str) -> str:
    """The services named in a list, in the reader's language ('助餐、保洁',
    'Meal help, Cleaning')."""
    return t(language, "common.list_separator").join(title(key, language) for key in keys)
