"""A checklist on a channel that says which message was pressed (as Telegram
does): each tap turns the pressed question into the next one, the answers so
far above it, so that a tap costs one message edit; where the pressed message
is unknown or cannot be rewritten, the answer is shown and the next question
comes as a new message."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from typing import Any

import pytest
from conftest import CHANNEL, Person, count_sent, executes
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.model import InboundKind
from handlers.text import shorten

PRESS = "pg_try_advisory_xact_lock("  # in an event's first round trip: its person's lock


async def deliver_all(app: App, person: Person) -> None:
    """What the sender records once the person's messages are out: a message id
    for each (an edited one keeps the id of the message it edits)."""

    def record(conn: sqlite3.Connection) -> None:
        for row in conn.execute(
            "SELECT id, replaces_id FROM outbox WHERE channel = ? AND address = ?"
            " AND channel_message_id IS NULL ORDER BY id",
            (CHANNEL, person.user_id),
        ).fetchall():
            message_id = f"m{row['id']}"
            if row["replaces_id"] is not None:
                message_id = conn.execute(
                    "SELECT channel_message_id FROM outbox WHERE id = ?", (row["replaces_id"],)
                ).fetchone()[0]
            conn.execute(
                "UPDATE outbox SET status = 'sent', channel_message_id = ? WHERE id = ?",
                (message_id, row["id"]),
            )

    await app.db.transaction(record)


async def on_screen(app: App, person: Person) -> dict[str, Any]:
    """The newest message with buttons as it stands now (after edits): its id, text, buttons."""
    row = await app.db.read(
        lambda conn: conn.execute(
            "SELECT channel_message_id, text, buttons FROM outbox WHERE channel = ?"
            " AND address = ? AND buttons IS NOT NULL ORDER BY id DESC LIMIT 1",
            (CHANNEL, person.user_id),
        ).fetchone()
    )
    buttons = [(label, action) for r in json.loads(row["buttons"]) for label, action in r]
    return {"id": row["channel_message_id"], "text": row["text"], "buttons": buttons}


async def tap(app: App, person: Person, label: str, **data: Any) -> list[sqlite3.Row]:
    """Press `label` on the question on screen; return the rows the press queued."""
    await deliver_all(app, person)
    shown = await on_screen(app, person)
    action = next(action for text, action in shown["buttons"] if label in text)
    await person.deliver(InboundKind.ACTION, action, data={"message_id": shown["id"], **data})
    await person.replies()  # what the conftest Person reads is read
    return await app.db.read(
        lambda conn: conn.execute(
            "SELECT id, text, buttons, replaces_id FROM outbox WHERE channel = ? AND address = ?"
            " AND channel_message_id IS NULL ORDER BY id",
            (CHANNEL, person.user_id),
        ).fetchall()
    )


async def question_row(app: App, person: Person) -> int:
    row = await app.db.read(
        lambda conn: conn.execute(
            "SELECT id FROM outbox WHERE channel = ? AND address = ? AND buttons IS NOT NULL"
            " ORDER BY id DESC LIMIT 1",
            (CHANNEL, person.user_id),
        ).fetchone()
    )
    return int(row["id"])


async def test_a_tap_turns_the_pressed_question_into_the_next(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await deliver_all(app, worker)
    pressed = await question_row(app, worker)
    [row] = await tap(app, worker, "正常")
    assert row["replaces_id"] == pressed
    assert row["text"] == (
        "✅ 1. 设备安全状态良好，安全防护装置有效\n\n第 2/6 项\n规定的安全措施已落实"
    )
    # The new buttons carry the conversation's new version; the old ones are stale.
    actions = [action for r in json.loads(row["buttons"]) for _, action in r]
    assert actions == ["v2:ok", "v2:problem", "v2:na"]
    [row] = await tap(app, worker, "不适用")
    assert row["text"].splitlines()[:3] == [
        "✅ 1. 设备安全状态良好，安全防护装置有效",
        "➖ 2. 规定的安全措施已落实",
        "",
    ]


async def test_a_problem_asks_for_its_description_in_the_same_message(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    [row] = await tap(app, worker, "有问题")
    assert row["replaces_id"] is not None and row["buttons"] is None
    assert row["text"].startswith("⚠️ 1. 设备安全状态良好，安全防护装置有效\n\n")
    assert "有什么问题" in row["text"]
    # Typed text cannot be edited: the photo question is a new message.
    replies = await worker.send("护栏松动")
    assert len(replies) == 1 and "照片" in replies[0]
    [row] = await tap(app, worker, "跳过")
    assert row["replaces_id"] is not None
    lines = row["text"].split("\n\n")
    assert lines[0] == "⚠️ 1. 设备安全状态良好，安全防护装置有效"
    assert "已登记隐患 YH-2026-0001" in lines[1] and lines[2].startswith("第 2/6 项")


async def test_the_last_answer_is_shown_and_the_summary_is_a_new_message(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    for _ in range(5):
        await tap(app, worker, "正常")
    last = await question_row(app, worker)
    edit, summary = await tap(app, worker, "正常")
    assert edit["replaces_id"] == last and edit["buttons"] is None
    assert edit["text"].endswith("第 6/6 项\n清楚本岗位操作要领、操作规程\n→ ✅ 正常")
    assert summary["replaces_id"] is None and "已完成：✅ 6 项" in summary["text"]


async def test_an_unknown_pressed_message_gets_a_new_question(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    action = next(action for label, action in worker.last_buttons if "正常" in label)
    replies = await worker.deliver(InboundKind.ACTION, action, data={"message_id": "m404"})
    assert len(replies) == 1 and replies[0] == "第 2/6 项\n规定的安全措施已落实"
    assert not await app.db.read(
        lambda conn: conn.execute("SELECT id FROM outbox WHERE replaces_id IS NOT NULL").fetchall()
    )


async def test_a_channel_that_cannot_rewrite_shows_the_answer_and_asks_anew(
    person, app: App
) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await deliver_all(app, worker)
    pressed = await question_row(app, worker)
    edit, question = await tap(app, worker, "正常", rewritable=False)
    assert edit["replaces_id"] == pressed
    assert edit["text"] == "第 1/6 项\n设备安全状态良好，安全防护装置有效\n→ ✅ 正常"
    assert edit["buttons"] is None
    assert question["replaces_id"] is None
    assert question["text"] == "第 2/6 项\n规定的安全措施已落实"  # no recap on a new message


async def test_answers_so_far_are_in_the_persons_language(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/lang en")
    await worker.send("/check")
    [row] = await tap(app, worker, "OK")
    assert row["text"].startswith("✅ 1. Equipment is in a safe state and it…\n\nItem 2/6\n")


async def test_a_redo_turns_its_question_into_the_first_item(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    for _ in range(6):
        await tap(app, worker, "正常")
    await worker.send("/check")  # done today: the result and "do it again?"
    [row] = await tap(app, worker, "重新检查")
    assert row["replaces_id"] is not None
    intro, item = row["text"].split("\n\n")
    assert "开始「岗前安全自查」" in intro and item.startswith("第 1/6 项")


@given(st.text(), st.integers(min_value=1, max_value=80))
def test_a_shortened_line_fits_its_width_and_keeps_its_start(text: str, width: int) -> None:
    short = shorten(text, width)
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in short)
    assert short == text or (columns <= width and short.endswith("…"))
    assert text.startswith(short.removesuffix("…").rstrip()) or short == text


def _event_trips(sent: list[str]) -> list[str]:
    """Among what a test step sent, the event's transaction: from its first
    round trip (its person's lock) to its COMMIT."""
    begun = next(n for n, text in enumerate(sent) if PRESS in text or executes(text, PRESS))
    return sent[begun : next(n for n in range(begun, len(sent)) if "COMMIT" in sent[n]) + 1]


async def test_the_answers_so_far_are_the_runs_without_reading_them_back(
    person, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conversation keeps the run's answers as they are recorded, so a
    step does not read the register back for them (on PostgreSQL a round trip
    of its own in every step)."""
    worker = await person("张伟")
    await worker.send("/check")
    await tap(app, worker, "正常")
    [row] = await tap(app, worker, "有问题")
    assert row["text"].startswith("✅ 1. ")
    await worker.send("护栏松动")
    await tap(app, worker, "跳过")
    sent = count_sent(monkeypatch)
    [row] = await tap(app, worker, "不适用")
    monkeypatch.undo()
    recap = [line.split(". ")[0] for line in row["text"].splitlines()[:3]]
    assert recap == ["✅ 1", "⚠️ 2", "➖ 3"] and "第 4/6 项" in row["text"]
    if app.db.engine == "postgresql":
        trips = _event_trips(sent)  # among tap's own reads and deliveries
        assert "SELECT pg_try_advisory_xact_lock(" not in trips[0]  # prepared, not planned
        assert not any(executes(text, "FROM checklist_answers WHERE run_id") for text in trips)
        assert len(trips) == 2, "\n".join(t[:300] for t in trips)


async def test_a_run_begun_before_the_conversation_kept_its_answers_reads_them(
    person, app: App
) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await tap(app, worker, "正常")

    def forget(conn: sqlite3.Connection) -> None:  # as the previous release saved it
        row = conn.execute(
            "SELECT data FROM conversations WHERE staff_id = ?", (worker.staff_id,)
        ).fetchone()
        data = json.loads(row["data"])
        del data["given"]
        conn.execute(
            "UPDATE conversations SET data = ? WHERE staff_id = ?",
            (json.dumps(data), worker.staff_id),
        )

    await app.db.transaction(forget)
    [row] = await tap(app, worker, "不适用")
    assert [line.split(". ")[0] for line in row["text"].splitlines()[:2]] == ["✅ 1", "➖ 2"]


async def test_a_description_typed_in_a_check_needs_no_read_of_its_own(
    person, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text in a flow may be a reply keyboard's label: the newest question's
    buttons are read with the event's arrival (on PostgreSQL in its round trip)."""
    worker = await person("张伟")
    await worker.send("/check")
    await tap(app, worker, "有问题")
    sent = count_sent(monkeypatch)
    replies = await worker.send("护栏松动")
    monkeypatch.undo()
    assert "照片" in replies[-1]
    if app.db.engine == "postgresql":
        trips = _event_trips(sent)
        assert len(trips) == 2, "\n".join(text[:300] for text in trips)


async def test_the_summary_reads_the_runs_answers_with_their_hazards_numbers(
    person, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await tap(app, worker, "有问题")
    await worker.send("护栏松动")
    await tap(app, worker, "跳过")
    for _ in range(4):
        await tap(app, worker, "正常")
    sent = count_sent(monkeypatch)
    _, summary = await tap(app, worker, "不适用")
    monkeypatch.undo()
    assert "已完成：✅ 4 项，⚠️ 1 项，➖ 1 项" in summary["text"]
    assert "YH-2026-0001" in summary["text"] and "护栏松动" in summary["text"]
    if app.db.engine == "postgresql":
        trips = _event_trips(sent)  # arrival, the run's answers, the commit
        assert len(trips) == 3, "\n".join(text[:300] for text in trips)
