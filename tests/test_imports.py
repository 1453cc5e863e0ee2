"""Imports run one way (DESIGN): `bot/app.py` and `bot/cli.py` wire
everything; below them `handlers` and `schedules` lean on the `bot` core; the
core never imports `handlers` or `schedules`, `schedules` never imports
`handlers`, handlers never import a channel, and the desk never imports a
handler. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WIRING = {"bot/app.py", "bot/cli.py"}


def imported(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from bot import channels` names a module too
                yield node.lineno, f"{node.module}.{alias.name}"


def forbidden(module: str) -> tuple[str, ...]:
    """What a module at this path may not import."""
    if module in WIRING:
        return ()
    if module.startswith("bot/"):
        return ("handlers", "schedules")
    if module.startswith("schedules/"):
        return ("handlers",)
    if module.startswith("handlers/"):
        return ("bot.channels", "bot.app", "bot.cli")
    return ()


def violations() -> list[str]:
    found = []
    for package in ("bot", "handlers", "schedules"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            banned = forbidden(module)
            for line, name in imported(path):
                if any(name == top or name.startswith(f"{top}.") for top in banned):
                    found.append(f"{module}:{line} imports {name}")
    return found


def test_imports_run_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("bot/engine.py", "from schedules.clock import iso", True),
        ("bot/web/card.py", "def f():\n    import handlers.hazard_card", True),
        ("schedules/weekly.py", "from handlers import stats", True),
        ("handlers/hazard_card.py", "from bot.channels import telegram", True),
        ("handlers/hazard_card.py", "from bot import channels", True),
        ("bot/app.py", "from handlers import router", False),
        ("schedules/weekly.py", "from bot.clock import iso", False),
    ],
)
def test_the_rule_sees_every_kind_of_import(
    tmp_path: Path, module: str, source: str, expected: bool
) -> None:
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    banned = forbidden(module)
    hit = any(
        name == top or name.startswith(f"{top}.") for _, name in imported(path) for top in banned
    )
    assert hit is expected
