"""The desk's settings and `frontline web`: one line for a bad value, the
desk not set up said plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli
from bot.config import ConfigError, load_settings


def test_the_desk_url_is_a_base_without_its_trailing_slash() -> None:
    settings = load_settings(web_url="https://desk.example.cn/", db=Path("x.db"))
    assert settings.web_url == "https://desk.example.cn"
    assert settings.web_listen == "127.0.0.1:8445"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("web_url", "desk.example.cn"),
        ("web_url", "ftp://desk"),
        ("web_listen", "8445"),
        ("map_tiles", "tiles.example.org/{z}/{x}/{y}.png"),
        ("map_tiles", "https://tiles.example.org/{z}/{x}.png"),
        ("map_tiles", "https://{s}.tiles.example.org/{z}/{x}/{y}.png"),
    ],
)
def test_a_bad_desk_setting_is_one_line_naming_it(setting: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"FRONTLINE_{setting.upper()}"):
        load_settings(**{setting: value})


def test_frontline_web_without_a_url_says_the_desk_is_not_set_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRONTLINE_WEB_URL", raising=False)
    assert cli.main(["web", "--db", str(tmp_path / "f.db")]) == 2
    assert "FRONTLINE_WEB_URL" in capsys.readouterr().err


def test_the_map_tiles_are_a_url_template_and_none_by_default() -> None:
    assert load_settings(db=Path("x.db")).map_tiles is None
    template = "https://tiles.example.org/{z}/{x}/{y}.png?key=k"
    assert load_settings(map_tiles=template, db=Path("x.db")).map_tiles == template
