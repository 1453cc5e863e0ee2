"""The message catalogs: English is as complete as Chinese, every text takes
the same parameters in both languages, every key the code asks for is there,
so no person ever sees a KeyError instead of a message, and English reads as
English: a count agrees with its noun, and what someone typed is set apart
from the sentence around it."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from bot.app import App
from bot.i18n import PLURAL_BY, PLURAL_FORMS, catalog, is_plural, t
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


def messages(language: str) -> dict[str, dict[str, str]]:
    """Every message key with its texts: {'': text}, or a plural one's forms."""
    entries = catalog(language)
    found: dict[str, dict[str, str]] = {}
    for key, text in entries.items():
        head, _, last = key.rpartition(".")
        if last in (*PLURAL_FORMS, PLURAL_BY) and is_plural(entries, head):
            if last != PLURAL_BY:
                found.setdefault(head, {})[last] = text
        else:
            found.setdefault(key, {})[""] = text
    return found


def needs(forms: dict[str, str]) -> set[str]:
    return set().union(*(placeholders(text) for text in forms.values()))


def test_both_languages_have_the_same_keys() -> None:
    chinese, english = set(messages("zh-CN")), set(messages("en"))
    assert sorted(chinese - english) == [], "keys missing in en"
    assert sorted(english - chinese) == [], "keys missing in zh-CN"


def test_every_text_takes_the_same_parameters_in_both_languages() -> None:
    chinese, english = messages("zh-CN"), messages("en")
    differing = {
        key: (sorted(needs(chinese[key])), sorted(needs(english[key])))
        for key in chinese.keys() & english.keys()
        if needs(chinese[key]) != needs(english[key])
    }
    assert differing == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_plural_text_has_every_form_and_its_number(language: str) -> None:
    entries = catalog(language)
    for key, forms in messages(language).items():
        if "" in forms:
            continue
        assert set(forms) == set(PLURAL_FORMS), key
        by = entries.get(f"{key}.{PLURAL_BY}", "count")
        assert by in placeholders(forms["other"]), f"{key}: the number is {by}"


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
        if text == chinese.get(key) and re.search(r"[\u4e00-\u9fff]", text)
    ]
    assert untranslated == []


def keys_named_in_code() -> tuple[set[str], set[str]]:
    """String constants that look like catalog keys (`check.item`) and the
    literal prefixes of f-string keys (`check.answer_`), from the source."""
    sections = {key.split(".", 1)[0] for key in messages("zh-CN")}
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
        known = messages(language)
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


# -- English as a native reader reads it -----------------------------------------------
# Nouns a count is put before in our texts, in the plural.
PLURAL_NOUNS = (
    "people|persons|items|photos|files|days|hours|minutes|weeks|months|rows|notices"
    "|messages|problems|entries|units|drills|leaders|services|characters|reports"
    "|exceptions|visits|incidents|hazards|clients|workers|checks|times|names"
)
COUNT_BEFORE_NOUN = re.compile(rf"\{{(\w+)\}}\s+(?:[a-z-]+\s+)?(?:{PLURAL_NOUNS})\b")
ONE_BEFORE_PLURAL = re.compile(rf"\b1\s+(?:[a-z-]+\s+)?(?:{PLURAL_NOUNS})\b")
# Bounds of what is accepted, and lengths of what was refused: never 1.
NEVER_ONE = {"limit", "max", "min", "length"}
# What people typed: it must stand apart from the sentence around it.
TYPED = {"text", "note", "description", "reason", "requirement", "measures", "findings"}
SET_APART = ("\n", ": ", "“", '"', "(", ". ", "  ")  # two spaces: a table's columns


def set_apart(text: str, name: str) -> bool:
    """Whether every `{name}` in `text` starts the text or a line, or follows
    a colon, a quote, a bracket, the end of a sentence or a column gap."""
    return all(
        match.start() == 0 or text[: match.start()].endswith(SET_APART)
        for match in re.finditer(rf"\{{{name}\}}", text)
    )


def english_texts() -> list[tuple[str, str]]:
    """Every English text that is not one form of a plural table."""
    return [(key, forms[""]) for key, forms in messages("en").items() if "" in forms]


def test_no_english_count_disagrees_with_its_noun() -> None:
    """'1 people', '{count} photo(s)': a count before a plural noun is a plural text."""
    risky = [
        (key, text)
        for key, text in english_texts()
        if "(s)" in text
        or ONE_BEFORE_PLURAL.search(text)
        or any(m[1] not in NEVER_ONE for m in COUNT_BEFORE_NOUN.finditer(text))
    ]
    assert risky == []


def test_typed_text_is_set_apart_in_english() -> None:
    """Not 'submitted the rectification Floor mopped': a colon or quotes first."""
    run_on = [
        (key, text)
        for key, forms in messages("en").items()
        for text in forms.values()
        if not all(set_apart(text, name) for name in TYPED & placeholders(text))
    ]
    assert run_on == []


def test_the_scans_catch_what_they_are_for() -> None:
    assert COUNT_BEFORE_NOUN.search("sent to {count} people")
    assert COUNT_BEFORE_NOUN.search("({count} earlier entries not shown)")
    assert ONE_BEFORE_PLURAL.search("sent to 1 people")
    assert not COUNT_BEFORE_NOUN.search("{name} has done the check")
    assert not set_apart("{at} {who} submitted the rectification {note}", "note")
    assert set_apart("{text}", "text") and set_apart("Reason: “{reason}”", "reason")


def test_english_plurals_read_right() -> None:
    assert t("en", "notice.sent", notice=3, count=1).startswith("Notice #3 sent to 1 person.")
    assert t("en", "notice.sent", notice=3, count=2).startswith("Notice #3 sent to 2 people.")
    assert t("en", "console.held", count=1) == "📬 1 message was held for you:"
    reminder = t("en", "incident.reminder", number="SG-2026-001", unit="一班", deadline="x", days=1)
    assert "1 day left" in reminder
    assert t("zh-CN", "notice.sent", notice=3, count=1) == t(
        "zh-CN", "notice.sent", notice=3, count=2
    ).replace("2", "1")


async def test_a_start_parses_every_catalog_before_the_first_message(tmp_path: Path) -> None:
    """The first replies after a start (a failover's burst: every worker thread at
    once) must not each wait while the same TOML files are parsed, and a broken
    catalog must stop the start, not the first reply."""
    catalog.cache_clear()
    app = await App.open(tmp_path / "frontline.db", {})
    try:
        assert catalog.cache_info().currsize == len(LANGUAGES)
    finally:
        await app.close()
