"""The console channel: what a typed line means, and the real `frontline`
command driven through a pipe, as someone trying the bot in a terminal (or a
script feeding it) would use it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.channels.console import parse_line
from bot.i18n import t
from bot.model import Button, InboundKind

ANSWERS = [
    Button("✅ 正常", "v3:ok"),
    Button("⚠️ 有问题", "v3:problem"),
    Button("➖ 不适用", "v3:na"),
]
SUPERVISOR = "13800000004"  # 刘强, head of 保安部, with no channel but the console
# /check; item 1 ✅, item 2 ✅, item 3 ⚠️ + description + skip photo; ➖, ✅, ✅.
DESCRIPTION = "配电箱门锁损坏"
CHECK_WITH_ONE_PROBLEM = f"/check\n1\n1\n2\n{DESCRIPTION}\n1\n3\n1\n1\n"


# -- what a typed line means ---------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "action"), [("1\n", "v3:ok"), ("2", "v3:problem"), ("3 ", "v3:na")]
)
def test_number_presses_the_button_shown_with_it(line: str, action: str) -> None:
    typed = parse_line(line, ANSWERS)
    assert typed is not None and typed.kind is InboundKind.ACTION and typed.text == action


@pytest.mark.parametrize("line", ["0", "4", "12"])
def test_number_without_such_button_is_plain_text(line: str) -> None:
    typed = parse_line(line, ANSWERS)
    assert typed is not None and typed.kind is InboundKind.TEXT and typed.text == line


def test_number_with_no_buttons_shown_is_plain_text() -> None:
    typed = parse_line("1\n", [])
    assert typed is not None and typed.kind is InboundKind.TEXT and typed.text == "1"


def test_typing_a_button_label_presses_it() -> None:
    typed = parse_line("⚠️ 有问题\n", ANSWERS)
    assert typed is not None and typed.kind is InboundKind.ACTION and typed.text == "v3:problem"


def test_photo_with_a_path_sends_that_file() -> None:
    typed = parse_line("/photo /tmp/my pictures/箱门.jpg\n", ANSWERS)
    assert typed is not None and typed.kind is InboundKind.PHOTO
    assert typed.text == "/tmp/my pictures/箱门.jpg" and typed.problem is None


@pytest.mark.parametrize("line", ["/photo", "/photo   \n"])
def test_photo_without_a_path_explains_the_usage(line: str) -> None:
    typed = parse_line(line, ANSWERS)
    assert typed is not None and typed.problem == "console.photo_usage"


def test_location_with_two_numbers_sends_them() -> None:
    typed = parse_line("/location 31.23 121.47\n", [])
    assert typed is not None and typed.kind is InboundKind.LOCATION and typed.problem is None
    assert typed.data == {"lat": 31.23, "lon": 121.47}


@pytest.mark.parametrize(
    "rest",
    ["", "31.23", "31.23 121.47 5", "north east", "nan nan", "nan 121", "inf 0", "91 0", "0 181"],
)
def test_unusable_location_explains_the_usage(rest: str) -> None:
    typed = parse_line(f"/location {rest}", [])
    assert typed is not None and typed.problem == "console.location_usage" and typed.data is None


@pytest.mark.parametrize("line", ["/quit", "/quit\n", "  /quit  "])
def test_quit_ends_the_chat(line: str) -> None:
    assert parse_line(line, ANSWERS) is None


def test_plain_text_is_sent_as_typed() -> None:
    typed = parse_line("消防通道被堵 1\r\n", ANSWERS)
    assert typed is not None and typed.kind is InboundKind.TEXT and typed.text == "消防通道被堵 1"


@pytest.mark.parametrize(("line", "command"), [("/check\n", "/check"), ("/lang en", "/lang en")])
def test_slash_word_is_a_command(line: str, command: str) -> None:
    typed = parse_line(line, ANSWERS)
    assert typed is not None and typed.kind is InboundKind.COMMAND and typed.text == command


def test_lone_slash_is_text() -> None:
    typed = parse_line("/", [])
    assert typed is not None and typed.kind is InboundKind.TEXT


# -- the real command through a pipe -------------------------------------------------
def frontline(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the installed `frontline` command with no terminal and a clean
    environment; a hang fails the test instead of blocking it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def blocks(output: str) -> list[str]:
    """The console's messages, one per blank-line-separated block."""
    return [block.strip() for block in output.split("\n\n") if block.strip()]


def query(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A demo run in which 张伟 reports one problem and skips the photo."""
    db = tmp_path / "demo.db"
    return db, frontline(tmp_path, "demo", "--db", str(db), stdin=CHECK_WITH_ONE_PROBLEM)


def test_piped_demo_runs_a_check_to_its_summary(demo) -> None:
    db, done = demo
    assert done.returncode == 0, done.stderr
    shown = blocks(done.stdout)
    assert "已完成：✅ 4 项，⚠️ 1 项，➖ 1 项" in shown[-1]
    assert "YH-2026-0001" in shown[-1] and "使用的设备、工具符合安全规定" in shown[-1]
    assert not any(line.startswith(">") for line in done.stdout.splitlines())  # no prompt
    assert "Traceback" not in done.stderr
    [hazard] = query(db, "SELECT description, photo FROM hazards")
    assert hazard["description"] == DESCRIPTION and hazard["photo"] is None


def test_supervisor_opening_the_console_sees_the_held_alert_once(demo, tmp_path: Path) -> None:
    db, _ = demo
    first = frontline(tmp_path, "chat", "--as", SUPERVISOR, "--db", str(db))
    assert first.returncode == 0, first.stderr
    shown = blocks(first.stdout)
    assert shown[0] == "📬 有 1 条留给您的消息："
    assert "隐患报告 YH-2026-0001" in shown[1] and "张伟" in shown[1] and DESCRIPTION in shown[1]
    [alert] = query(db, "SELECT status FROM outbox WHERE text LIKE '%隐患报告%'")
    assert alert["status"] == "sent"

    again = frontline(tmp_path, "chat", "--as", SUPERVISOR, "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert "📬" not in again.stdout and "隐患报告" not in again.stdout


def test_chat_as_someone_not_on_the_roster_exits_2(demo, tmp_path: Path) -> None:
    db, _ = demo
    refused = frontline(tmp_path, "chat", "--as", "nobody", "--db", str(db))
    assert refused.returncode == 2
    assert refused.stderr.strip() == t("zh-CN", "cli.no_such_person", who="nobody")
    assert refused.stdout == ""


def test_a_text_file_given_as_a_photo_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture\n", encoding="utf-8")
    db = tmp_path / "data" / "demo.db"
    lines = ["/check", "2", DESCRIPTION, f"/photo {notes}"]
    done = frontline(tmp_path, "demo", "--db", str(db), stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    shown = blocks(done.stdout)
    at = shown.index(t("zh-CN", "errors.not_a_photo"))
    assert "照片" in shown[at + 1]  # asked for the photo again
    assert query(db, "SELECT * FROM hazards") == []


def test_photo_during_a_problem_is_kept_in_the_media_folder(tmp_path: Path) -> None:
    picture = tmp_path / "箱门.JPG"
    picture.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
    db = tmp_path / "data" / "demo.db"
    lines = [
        "/check",
        "2",
        DESCRIPTION,
        "/photo /no/such/file.jpg",  # a typo: still at the photo step
        f"/photo {picture}",
        *["1"] * 5,
    ]
    done = frontline(tmp_path, "demo", "--db", str(db), stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr

    shown = blocks(done.stdout)
    missing = t("zh-CN", "console.photo_missing", path="/no/such/file.jpg")
    at = shown.index(missing)
    assert "照片" in shown[at - 1]  # asked for the photo
    told = "主管 刘强"  # 张伟's supervisor, head of 保安部
    assert shown[at + 1] == t("zh-CN", "check.hazard_recorded", hazard="YH-2026-0001", told=told)
    assert "已完成：✅ 5 项，⚠️ 1 项，➖ 0 项" in shown[-1]

    [hazard] = query(db, "SELECT photo FROM hazards")
    digest = hashlib.sha256(picture.read_bytes()).hexdigest()
    assert hazard["photo"] == f"{digest[:2]}/{digest}.jpg"
    stored = db.parent / "media" / hazard["photo"]
    assert stored.read_bytes() == picture.read_bytes()
    assert stored.stat().st_mode & 0o077 == 0  # readable by the service's user only


def test_a_number_typed_to_a_question_that_wants_words_is_the_answer() -> None:
    import io

    from bot.channels.console import ConsoleTransport
    from bot.model import Outbound

    transport = ConsoleTransport(io.StringIO())
    transport.show(Outbound(1, None, "console", "1", "有人受伤吗？", ((ANSWERS[0],),)))
    transport.show(Outbound(2, None, "console", "1", "已记录。", replaces_id=1))  # an edit
    assert parse_line("1", transport.choices).kind is InboundKind.ACTION  # type: ignore[union-attr]
    transport.show(Outbound(3, None, "console", "1", "受伤几人？请输入人数。"))
    typed = parse_line("1", transport.choices)
    assert typed is not None and typed.kind is InboundKind.TEXT and typed.text == "1"


@pytest.mark.parametrize("line", ["²", "¹", "１", "9" * 40])
def test_odd_digits_are_text_not_a_crash(line: str) -> None:
    typed = parse_line(line, ANSWERS)
    assert typed is not None and typed.kind is InboundKind.TEXT


def test_a_reader_that_goes_away_ends_the_chat_and_leaves_the_reply_pending(
    demo, tmp_path: Path
) -> None:
    """`frontline chat … | head -1`: the reader takes one line and closes the pipe."""
    db, _ = demo
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")}
    chat = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "chat", "--as", "13800000003", "--db", str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        text=True,
    )
    assert chat.stdin is not None and chat.stdout is not None and chat.stderr is not None
    chat.stdin.write("/help\n")
    chat.stdin.flush()
    assert chat.stdout.readline().strip()  # the first line of the answer to /help
    chat.stdout.close()  # what `head -1` does next
    chat.stdin.write("/start\n/help\n")
    chat.stdin.close()
    assert chat.wait(timeout=60) == 0
    assert chat.stderr.read() == ""  # no traceback, no warning: the reader just left
    [reply] = query(db, "SELECT status, text FROM outbox WHERE text LIKE '%您好%'")
    assert reply["status"] == "pending", "kept for the next chat, not failed"
    assert query(db, "SELECT id FROM outbox WHERE status = 'failed'") == []

    again = frontline(tmp_path, "chat", "--as", "13800000003", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert reply["text"] in blocks(again.stdout)
    assert query(db, "SELECT status FROM outbox WHERE text LIKE '%您好%'")[0]["status"] == "sent"
