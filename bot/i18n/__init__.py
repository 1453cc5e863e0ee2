"""Message catalogs: every user-facing string, per language. The catalogs are
TOML files under `zh-CN/` and `en/`, one per area, merged at first use; the
language is always passed explicitly.

A text whose wording depends on a number is a table of plural forms:

    sent = { one = "Sent to {count} person.", other = "Sent to {count} people." }

`t()` picks the form for the number in the `count` parameter (or the one the
table names with `by = "days"`); a language without plurals (Chinese) keeps
a plain string. The forms are CLDR's categories: English has `one` and
`other`."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from bot.model import LANGUAGES

DEFAULT_LANGUAGE = "zh-CN"
PLURAL_FORMS = ("one", "other")
# The keys of a plural table besides its forms: which parameter is the number.
PLURAL_BY = "by"

# Which plural form a number takes, per language (CLDR; only what we ship).
_PLURAL_RULES: dict[str, Callable[[Any], str]] = {
    "en": lambda n: "one" if str(n) == "1" else "other",
    "zh-CN": lambda n: "other",
}


@cache
def catalog(language: str) -> dict[str, str]:
    """All keys of one language, flattened: `[check] title = ...` is `check.title`;
    a plural table `sent = {one, other}` is `sent.one` and `sent.other`."""
    merged: dict[str, str] = {}
    folder = resources.files("bot.i18n").joinpath(language)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            _flatten(tomllib.loads(entry.read_text(encoding="utf-8")), "", merged)
    return merged


def load_catalogs() -> None:
    """Every language's catalog, parsed now: a start loads them, so that a broken
    one stops it, and the first people after a start (a failover's burst among
    them) do not wait while each worker thread parses the same files."""
    for language in LANGUAGES:
        catalog(language)


def _flatten(table: dict[str, Any], prefix: str, into: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", into)
        else:
            if name in into:
                raise ValueError(f"catalog key {name} defined twice")
            into[name] = str(value)


def is_plural(entries: dict[str, str], key: str) -> bool:
    return f"{key}.other" in entries


def _lookup(language: str, key: str, params: dict[str, Any]) -> str | None:
    entries = catalog(language)
    text = entries.get(key)
    if text is not None or not is_plural(entries, key):
        return text
    by = entries.get(f"{key}.{PLURAL_BY}", "count")
    form = _PLURAL_RULES[language](params[by])
    return entries.get(f"{key}.{form}", entries[f"{key}.other"])


def t(language: str, key: str, **params: Any) -> str:
    """The text for `key` in `language` (falling back to zh-CN), formatted;
    for a plural text, the form its number takes."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    text = _lookup(lang, key, params)
    if text is None:
        text = _lookup(DEFAULT_LANGUAGE, key, params)
    if text is None:
        raise KeyError(key)
    return text.format(**params)


# Pictographs, dingbats and the marks that make a character an emoji (‼️ ⚙️ 1️⃣).
_EMOJI = re.compile(
    ".\ufe0f|[\U0001f000-\U0001faff\u2600-\u27bf\u203c\u2049\u231a\u231b\u23e9-\u23fa"
    "\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55"
    "\U000e0020-\U000e007f\u200d\u20e3\ufe0e\ufe0f]"
)
_SPACES = re.compile(r"[ \t]{2,}")


def plain(text: str) -> str:
    """`text` without emoji, for paper and spreadsheets: a printer's font
    has no pictures, and shows ‼️ as "!!" and a gap."""
    if text.isascii():
        return text
    return "\n".join(_SPACES.sub(" ", _EMOJI.sub("", line)).strip() for line in text.split("\n"))
