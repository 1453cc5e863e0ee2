"""Settings as an operator meets them: sensible defaults, `frontline.toml` in
the working directory, environment variables over the file, and any mistake
reported in one line naming the setting, with exit status 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot import cli
from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and no FRONTLINE_* variables."""
    for name in list(os.environ):
        if name.startswith("FRONTLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_outbox(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    status = cli.main(["outbox", *args])
    out, err = capsys.readouterr()
    return status, out, err.strip().splitlines()


def test_defaults() -> None:
    settings = load_settings()
    assert settings.db == Path("frontline.db")
    assert settings.timezone == "Asia/Shanghai"
    assert settings.language == "zh-CN"
    assert settings.media_path == Path("media")  # beside the database


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FRONTLINE_TIMEZONE", "Mars/Olympus"),
        ("FRONTLINE_TIMEZONE", "../../etc/passwd"),
        ("FRONTLINE_TIMEZONE", ""),
        ("FRONTLINE_LANGUAGE", "fr"),
        ("FRONTLINE_LOG_LEVEL", "chatty"),
        ("FRONTLINE_DB", ""),
        ("FRONTLINE_WECOM_JOIN_URL", "work.weixin.qq.com/join/abc"),
        ("FRONTLINE_WECOM_JOIN_URL", "javascript:alert(1)"),
    ],
)
def test_bad_variable_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys, workdir: Path, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    status, out, err = run_outbox(capsys)
    assert status == 2
    assert len(err) == 1 and variable in err[0], err
    assert "Traceback" not in err[0] and out == ""
    assert list(workdir.iterdir()) == []  # no database was created


def test_database_path_that_is_a_folder_is_refused(capsys, workdir: Path) -> None:
    (workdir / "data").mkdir()
    status, _, err = run_outbox(capsys, "--db", "data")
    assert status == 2 and len(err) == 1 and "data" in err[0]


def test_settings_come_from_frontline_toml_in_the_working_directory(capsys, workdir: Path) -> None:
    (workdir / "frontline.toml").write_text(
        'db = "var/site.db"\ntimezone = "Europe/Berlin"\nlanguage = "en"\n', encoding="utf-8"
    )
    settings = load_settings()
    assert settings.db == Path("var/site.db")
    assert settings.timezone == "Europe/Berlin" and settings.language == "en"
    assert settings.media_path == Path("var/media")

    status, out, _ = run_outbox(capsys)
    assert status == 0 and out.strip() == "No pending or failed messages."
    assert (workdir / "var" / "site.db").exists()


def test_environment_overrides_the_file_and_the_command_line_overrides_both(
    monkeypatch: pytest.MonkeyPatch, capsys, workdir: Path
) -> None:
    (workdir / "frontline.toml").write_text(
        'db = "file.db"\nlanguage = "en"\ntimezone = "Europe/Berlin"\n', encoding="utf-8"
    )
    monkeypatch.setenv("FRONTLINE_LANGUAGE", "zh-CN")
    monkeypatch.setenv("FRONTLINE_DB", "env.db")
    settings = load_settings()
    assert settings.language == "zh-CN" and settings.db == Path("env.db")
    assert settings.timezone == "Europe/Berlin"  # not overridden: still from the file

    status, out, _ = run_outbox(capsys, "--db", "flag.db")
    assert status == 0 and out.strip() == "没有待发送或发送失败的消息。"
    assert sorted(p.name for p in workdir.glob("*.db")) == ["flag.db"]


def test_frontline_config_names_another_file(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    (workdir / "site.toml").write_text('language = "en"\n', encoding="utf-8")
    monkeypatch.setenv("FRONTLINE_CONFIG", str(workdir / "site.toml"))
    assert load_settings().language == "en"


def test_named_config_file_that_is_missing_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys, workdir: Path
) -> None:
    monkeypatch.setenv("FRONTLINE_CONFIG", "/etc/frontline/typo.toml")
    status, _, err = run_outbox(capsys)
    assert status == 2 and len(err) == 1 and "typo.toml" in err[0]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("timezone = \n", "frontline.toml"),  # not TOML
        ('timezone = "Asia/Shanghai"\ntimezone = "UTC"\n', "frontline.toml"),
        ("[[[\n", "frontline.toml"),
        ('language = "fr"\n', "LANGUAGE"),
        ("timezone = 8\n", "TIMEZONE"),
        ('colour = "red"\n', "'colour' in frontline.toml"),  # a misspelt setting is refused
    ],
)
def test_bad_frontline_toml_stops_with_one_line(
    capsys, workdir: Path, content: str, named: str
) -> None:
    (workdir / "frontline.toml").write_text(content, encoding="utf-8")
    status, out, err = run_outbox(capsys)
    assert status == 2
    assert len(err) == 1 and named in err[0], err
    assert out == "" and not (workdir / "frontline.db").exists()


def test_unreadable_frontline_toml_stops_with_one_line(capsys, workdir: Path) -> None:
    (workdir / "frontline.toml").write_bytes(b"\xff\xfe\x00l\x00a")
    status, _, err = run_outbox(capsys)
    assert status == 2 and len(err) == 1 and "frontline.toml" in err[0]


def test_database_that_cannot_be_created_stops_with_one_line(capsys, workdir: Path) -> None:
    status, _, err = run_outbox(capsys, "--db", "/proc/no-such-dir/frontline.db")
    assert status == 2 and len(err) == 1 and "/proc/no-such-dir/frontline.db" in err[0]


def test_wecom_needs_all_its_settings(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="FRONTLINE_WECOM_SECRET"):
        load_settings(
            wecom_corp_id="ww1",
            wecom_agent_id=1000002,
            wecom_token="t",
            wecom_aes_key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        )
    with pytest.raises(ConfigError, match="43-character"):
        load_settings(wecom_aes_key="short")
    assert not load_settings().wecom_enabled
