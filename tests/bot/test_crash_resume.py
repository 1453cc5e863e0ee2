"""The process killed (SIGKILL) in the middle of a checklist: when the worker
opens the chat again it asks the question it stood at, and the register ends
up with every answer and every hazard exactly once."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

WORKER = "13800000003"  # 张伟, of 保安部/一班
WAIT_SECONDS = 30.0


class Chat:
    """`frontline chat` as a child process on pipes. Output is read by a
    thread into a queue, so waiting for a prompt is bounded, never a sleep."""

    def __init__(self, db: Path, who: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.errors = (db.parent / "stderr.txt").open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "chat", "--as", who, "--db", str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            cwd=db.parent,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, text: str) -> str:
        """Read until `text` has been shown; return everything shown meanwhile."""
        deadline = time.monotonic() + WAIT_SECONDS
        got: list[str] = []
        while text not in "".join(got):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{text!r} not shown; got {''.join(got)!r}") from None
            if line is None:
                raise AssertionError(f"chat ended before {text!r}; got {''.join(got)!r}")
            got.append(line)
            self.output.append(line)
        return "".join(got)

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def answer(self, line: str, then: str) -> str:
        self.type(line)
        return self.expect(then)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=WAIT_SECONDS) == -signal.SIGKILL

    def quit(self) -> str:
        """End the input like a closed pipe; return the rest of the output."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=WAIT_SECONDS) == 0
        rest = []
        while (line := self.lines.get(timeout=WAIT_SECONDS)) is not None:
            rest.append(line)
        self.output.extend(rest)
        return "".join(rest)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_SECONDS)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self.errors.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database holding the demo roster, imported by the real command."""
    path = tmp_path / "x.db"
    demo = resources.files("bot.data").joinpath("demo_roster.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")}
    with resources.as_file(demo) as csv:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "roster", "import", str(csv), "--db", str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def chat(db: Path) -> Iterator[list[Chat]]:
    """Start chats with `open_chat`; whatever is still running is killed at the end."""
    started: list[Chat] = []
    yield started
    for one in started:
        one.close()


def open_chat(started: list[Chat], db: Path) -> Chat:
    one = Chat(db, WORKER)
    started.append(one)
    return one


def query(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def assert_one_complete_run(db: Path) -> None:
    runs = query(db, "SELECT id, completed_at, cancelled_at FROM checklist_runs")
    assert len(runs) == 1
    assert runs[0]["completed_at"] is not None and runs[0]["cancelled_at"] is None
    answers = query(db, "SELECT run_id, item FROM checklist_answers")
    assert len(answers) == 6
    assert len({row["item"] for row in answers}) == 6
    assert {row["run_id"] for row in answers} == {runs[0]["id"]}


def test_killed_mid_checklist_resumes_at_the_open_item(chat: list[Chat], db: Path) -> None:
    first = open_chat(chat, db)
    first.answer("/check", "第 1/6 项")
    first.answer("1", "第 2/6 项")
    first.answer("1", "第 3/6 项")
    first.kill()

    again = open_chat(chat, db)
    reopened = again.expect("第 3/6 项")
    assert "第 1/6 项" not in reopened and "第 2/6 项" not in reopened
    for number in (4, 5, 6):
        again.answer("1", f"第 {number}/6 项")
    summary = again.answer("1", "已完成")
    assert "已完成：✅ 6 项，⚠️ 0 项，➖ 0 项" in summary
    again.quit()

    assert_one_complete_run(db)
    assert query(db, "SELECT COUNT(*) FROM hazards")[0][0] == 0


def test_killed_at_the_photo_step_asks_for_the_photo_and_records_one_hazard(
    chat: list[Chat], db: Path
) -> None:
    first = open_chat(chat, db)
    first.answer("/check", "第 1/6 项")
    first.answer("2", "有什么问题")
    first.answer("灭火器压力表指针在红区", "如有照片")
    first.kill()

    again = open_chat(chat, db)
    reopened = again.expect("如有照片")
    assert "第 1/6 项" not in reopened and "有什么问题" not in reopened
    recorded = again.answer("1", "第 2/6 项")  # [1] is the skip button shown again
    assert "已登记隐患 YH-2026-0001" in recorded
    for number in (3, 4, 5, 6):
        again.answer("1", f"第 {number}/6 项")
    summary = again.answer("1", "已完成")
    assert "已完成：✅ 5 项，⚠️ 1 项，➖ 0 项" in summary
    again.quit()

    assert_one_complete_run(db)
    hazards = query(db, "SELECT id, description, photo FROM hazards")
    assert len(hazards) == 1
    assert hazards[0]["description"] == "灭火器压力表指针在红区" and hazards[0]["photo"] is None
    alerts = query(
        db,
        "SELECT s.name FROM outbox o JOIN staff s ON s.id = o.staff_id"
        " WHERE o.text LIKE '%隐患报告%'",
    )
    assert [row["name"] for row in alerts] == ["刘强"]
