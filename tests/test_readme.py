"""The README stands alone in a clone: it links to nothing outside the
repository, its demo people are the demo roster's, and its first try runs."""

from __future__ import annotations

import csv
import re
from importlib import resources
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_links_stay_inside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith(("http://", "https://")):
            assert (README.parent / target).exists(), target


def test_the_demo_people_table_is_the_demo_roster() -> None:
    text = README.read_text(encoding="utf-8")
    shown = dict(re.findall(r"^\| ([^|]+?) \| (1380000\d{4}) \|", text, flags=re.M))
    with resources.as_file(resources.files("bot.data").joinpath("demo_roster.csv")) as path:
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert shown == {row["name"]: row["phone"] for row in rows}
