"""Message catalogs: every user-facing string, per language. The catalogs are
TOML files under `zh-CN/` and `en/`, one per area, merged at first use; the
language is always passed explicitly."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from bot.model import LANGUAGES

DEFAULT_LANGUAGE = "zh-CN"


@cache
def catalog(language: str) -> dict[str, str]:
    """All keys of one language, flattened: `[check] title = ...` is `check.title`."""
    merged: dict[str, str] = {}
    folder = resources.files("bot.i18n").joinpath(language)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            _flatten(tomllib.loads(entry.read_text(encoding="utf-8")), "", merged)
    return merged


def _flatten(table: dict[str, Any], prefix: str, into: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", into)
        else:
            if name in into:
                raise ValueError(f"catalog key {name} defined twice")
            into[name] = str(value)


def t(language: str, key: str, **params: Any) -> str:
    """The text for `key` in `language` (falling back to zh-CN), formatted."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE)[key]
    return text.format(**params)
