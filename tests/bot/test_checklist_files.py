"""Checklist files: the shipped ones hold the regulations' items in both
languages, and a bad file is refused at start with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.checklists import ChecklistError, load_all, load_folder

GOOD = """
id = "{id}"
command = "{command}"
period = "day"
title = {{ zh-CN = "测试", en = "Test" }}

[[items]]
key = "one"
text = {{ zh-CN = "第一项", en = "First" }}
"""


ITEM = """
[[items]]
key = "one"
text = { zh-CN = "又一项", en = "Again" }
"""


def test_shipped_checklists_cover_the_regulations() -> None:
    checklists = load_all()
    assert list(checklists) == ["preshift", "daily", "fire_patrol", "specialist"]
    assert len(checklists["preshift"].items) == 6  # REGULATIONS §1.1, six items
    assert checklists["daily"].roles == ["supervisor"]
    sections = {item.section.zh_cn for item in checklists["specialist"].items if item.section}
    assert sections == {"电气设备", "消防设施", "运输车辆", "厨房", "宿舍"}  # §1.3
    for checklist in checklists.values():
        for item in checklist.items:
            assert item.text.get("zh-CN") and item.text.get("en")


def test_a_new_file_is_a_new_checklist(tmp_path: Path) -> None:
    (tmp_path / "ladder.toml").write_text(GOOD.format(id="ladder", command="ladder"), "utf-8")
    assert list(load_folder(tmp_path)) == ["ladder"]


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        ("broken.toml", "id = ", "broken.toml"),
        ("nolang.toml", GOOD.format(id="nolang", command="x").replace(', en = "First"', ""), "en"),
        ("other.toml", GOOD.format(id="mismatch", command="x"), "must match"),
        (
            "dup.toml",
            GOOD.format(id="dup", command="x") + ITEM,
            "duplicate",
        ),
        (
            "badperiod.toml",
            GOOD.format(id="badperiod", command="x").replace("day", "week"),
            "period",
        ),
        ("norole.toml", 'roles = ["boss"]\n' + GOOD.format(id="norole", command="x"), "boss"),
    ],
)
def test_bad_checklist_file_is_refused_by_name(
    tmp_path: Path, name: str, text: str, complaint: str
) -> None:
    (tmp_path / name).write_text(text, "utf-8")
    with pytest.raises(ChecklistError, match=complaint):
        load_folder(tmp_path)


def test_two_checklists_cannot_share_a_command(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD.format(id="a", command="same"), "utf-8")
    (tmp_path / "b.toml").write_text(GOOD.format(id="b", command="same"), "utf-8")
    with pytest.raises(ChecklistError, match="/same"):
        load_folder(tmp_path)
