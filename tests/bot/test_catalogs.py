"""The message catalogs: English is as complete as Chinese, every text takes
the same parameters in both languages, and every key the code asks for is
there, so no person ever sees a KeyError instead of a message."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from bot.i18n import catalog, t
from bot.model import LANGUAGES, Role
from handlers.checklist import ANSWERS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("bot", "handlers", "schedules")


def placeholders(text: str) -> set[str]:
    """The names a str.format text needs (`{a.b}` and `{a[0]}` need `a`)."""
    names = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(text):
        if field is not None:
            names.add(re.split(r"[.\[]", field, maxsplit=1)[0])
    return names


def dummy_params(text: str) -> dict[str, str]:
    return {name: f"<{name}>" for name in placeholders(text)}


def test_both_languages_have_the_same_keys() -> None:
    chinese, english = set(catalog("zh-CN")), set(catalog("en"))
    assert sorted(chinese - english) == [], "keys missing in en"
    assert sorted(english - chinese) == [], "keys missing in zh-CN"


def test_every_text_takes_the_same_parameters_in_both_languages() -> None:
    chinese, english = catalog("zh-CN"), catalog("en")
    differing = {
        key: (sorted(placeholders(chinese[key])), sorted(placeholders(english[key])))
        for key in chinese.keys() & english.keys()
        if placeholders(chinese[key]) != placeholders(english[key])
    }
    assert differing == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_formats_with_its_parameters(language: str) -> None:
    for key, text in catalog(language).items():
        params = dummy_params(text)
        shown = t(language, key, **params)
        assert shown.strip(), f"{language} {key} is empty"
        for value in params.values():
            assert value in shown, f"{language} {key} drops {value}"


def test_english_texts_are_english() -> None:
    """A key copied across untranslated would show Chinese to English speakers."""
    chinese, english = catalog("zh-CN"), catalog("en")
    untranslated = [
        key
        for key, text in english.items()
        if text == chinese[key] and re.search(r"[\u4e00-\u9fff]", text)
    ]
    assert untranslated == []


def keys_named_in_code() -> tuple[set[str], set[str]]:
    """String constants that look like catalog keys (`check.item`) and the
    literal prefixes of f-string keys (`check.answer_`), from the source."""
    sections = {key.split(".", 1)[0] for key in catalog("zh-CN")}
    alternatives = "|".join(map(re.escape, sorted(sections)))
    exact = re.compile(rf"^({alternatives})\.[a-z][a-z0-9_]*$")
    prefix = re.compile(rf"^({alternatives})\.[a-z0-9_]*$")
    keys: set[str] = set()
    prefixes: set[str] = set()
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            in_fstrings = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr) and node.values:
                    in_fstrings.update(id(part) for part in node.values)
                    head = node.values[0]
                    if isinstance(head, ast.Constant) and prefix.match(str(head.value)):
                        prefixes.add(str(head.value))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in in_fstrings
                    and exact.match(node.value)
                ):
                    keys.add(node.value)
    return keys, prefixes


def test_every_key_named_in_code_exists() -> None:
    keys, prefixes = keys_named_in_code()
    assert len(keys) > 30  # the scan found the code's keys at all
    for language in LANGUAGES:
        known = catalog(language)
        assert sorted(keys - known.keys()) == [], language
        for head in prefixes:
            assert any(key.startswith(head) for key in known), f"{language}: no {head}*"


@pytest.mark.parametrize("language", LANGUAGES)
def test_keys_built_at_run_time_exist(language: str) -> None:
    built = [f"roles.{role.value}" for role in Role]
    built += [f"check.answer_{answer}" for answer in ANSWERS]
    built += [f"cli.status_{status}" for status in ("pending", "failed")]
    for key in built:
        assert t(language, key).strip(), key
