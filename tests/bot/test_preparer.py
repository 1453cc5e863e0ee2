"""Files made off the writer (bot/preparer.py): an /export or a PDF is built
after the step commits, on a read connection, so nobody's button press
waits for it; a crash before the build still sends it exactly once; a
build that fails is told in the person's language; a person's later
messages wait behind the file; the scope decided when it was asked for holds."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import CHANNEL, START, Person, import_demo
from openpyxl import load_workbook
from pypdf import PdfReader

from bot import export, preparer
from bot.app import App
from bot.clock import FakeClock, iso
from bot.engine import Outcome
from bot.model import InboundKind, Outbound
from bot.store import hazards, outbox, people
from bot.store.reader import open_reader

# How long a test waits for something that happens at once unless the writer is held.
PROMPTLY = 5.0


class Recorder:
    """A channel that records what it is handed."""

    name = CHANNEL
    per_second = 0.0

    def __init__(self) -> None:
        self.delivered: list[Outbound] = []

    def limit(self, address: str | None) -> tuple[float, float]:
        return 0.0, 0.0

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None:
        self.delivered.append(message)
        return f"msg-{message.id}"


async def seed_hazards(app: App, org: dict[str, int]) -> None:
    def insert(conn: sqlite3.Connection) -> None:
        units = {r["path"]: r["id"] for r in conn.execute("SELECT id, path FROM units")}
        for number, unit, who in (
            ("YH-2026-001", "物业服务中心/保安部/一班", "张伟"),
            ("YH-2026-002", "物业服务中心/餐饮部/厨房", "吴刚"),
        ):
            conn.execute(
                "INSERT INTO hazards (unit_id, reported_by, source, description, severity,"
                " status, deadline_at, created_at, number) VALUES (?, ?, 'report', '通道堵塞',"
                " 'general', 'open', ?, ?, ?)",
                (units[unit], org[who], iso(START), iso(START), number),
            )

    await app.db.transaction(insert)


async def ask_for_export(app: App, someone: Person) -> Outcome:
    """/export, the hazard register, this month: the last press straight to the
    engine, so that no documents worker runs unless the test starts one."""
    await someone.send("/export")
    await someone.press("隐患台账")
    [action] = [a for label, a in someone.last_buttons if "本月" in label]
    return await app.engine.handle(someone.inbound(InboundKind.ACTION, action))


async def rows_for(app: App, someone: Person) -> list[sqlite3.Row]:
    return await app.db.read(
        lambda conn: conn.execute(
            "SELECT id, status, text, attachments, document FROM outbox"
            " WHERE channel = ? AND address = ? ORDER BY id",
            (CHANNEL, someone.user_id),
        ).fetchall()
    )


def numbers_in(path: Path) -> list[str]:
    rows = list(load_workbook(path).worksheets[0].iter_rows(values_only=True))
    return [str(r[0]) for r in rows[1:]]


async def test_a_slow_export_build_does_not_delay_another_persons_button_press(
    app: App, org: dict[str, int], person, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_hazards(app, org)
    liu, zhang = await person("刘强"), await person("张伟")
    building, release = threading.Event(), threading.Event()
    real = export.export

    def slow_export(*args: Any, **kwargs: Any) -> int:
        building.set()
        release.wait(30)  # a 1M-row register: the build takes its time
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "export", slow_export)
    worker = asyncio.create_task(app.preparer.run(idle_seconds=0.01))
    try:
        # Someone else holds a long read transaction meanwhile, as a desk page does.
        reader = await open_reader(app.db, size=1)
        holding = reader.connection()
        reading = await holding.__aenter__()
        await (await reading.execute("SELECT COUNT(*) FROM outbox")).fetchone()
        assert await asyncio.wait_for(ask_for_export(app, liu), PROMPTLY) is Outcome.HANDLED
        assert await asyncio.to_thread(building.wait, PROMPTLY)
        # The export is being written: another person's press goes through at once.
        started = zhang.inbound(InboundKind.COMMAND, "/help")
        assert await asyncio.wait_for(app.engine.handle(started), PROMPTLY) is Outcome.HANDLED
        assert await zhang.replies()
        await holding.__aexit__(None, None, None)
        await reader.close()
        told = await rows_for(app, liu)
        assert "正在生成隐患台账" in told[-2]["text"] and told[-2]["status"] == "pending"
        assert told[-1]["status"] == "preparing"
    finally:
        release.set()
    await app.preparer.drain()
    worker.cancel()
    ready = (await rows_for(app, liu))[-1]
    assert ready["status"] == "pending" and "共 1 行" in ready["text"]
    (relative,) = json.loads(ready["attachments"])
    assert numbers_in(app.preparer.media_dir / relative) == ["YH-2026-001"]


async def test_a_persons_later_messages_wait_behind_their_file(
    app: App, org: dict[str, int], person
) -> None:
    await seed_hazards(app, org)
    liu, zhang = await person("刘强"), await person("张伟")
    await ask_for_export(app, liu)
    [file_row] = [r["id"] for r in await rows_for(app, liu) if r["status"] == "preparing"]
    await app.engine.handle(liu.inbound(InboundKind.COMMAND, "/help"))
    await app.engine.handle(zhang.inbound(InboundKind.COMMAND, "/help"))
    later = [r["id"] for r in await rows_for(app, liu) if r["id"] > file_row]
    assert later
    now = iso(START)

    def next_ids(conn: sqlite3.Connection, address: str) -> list[int]:
        return [m.id for m in outbox.next_for(conn, CHANNEL, address, now, 50)]

    waiting = await app.db.read(lambda conn: next_ids(conn, liu.user_id))
    assert waiting and max(waiting) < file_row  # what came before goes; nothing after
    assert await app.db.read(lambda conn: next_ids(conn, zhang.user_id))  # others are not held
    await app.preparer.drain()
    after = await app.db.read(lambda conn: next_ids(conn, liu.user_id))
    assert after.index(file_row) < after.index(later[0])


async def test_a_crash_between_the_commit_and_the_build_still_sends_the_file_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "frontline.db"
    first = await App.open(path, {}, clock=clock)
    org = await import_demo(first)
    await seed_hazards(first, org)
    liu = Person(first, org["刘强"], "刘强")
    await first.db.transaction(
        lambda conn: people.bind_identity(conn, CHANNEL, liu.user_id, liu.staff_id, iso(START))
    )
    assert await ask_for_export(first, liu) is Outcome.HANDLED
    # The build had written its file when the process died, before the row was finished.
    [row] = await first.reader.run(outbox.preparing)
    media_dir = first.preparer.media_dir
    await first.reader.run(lambda conn: preparer.build_export(conn, row, media_dir))
    await first.close()  # the worker never finished it

    recorder = Recorder()
    second = await App.open(path, {CHANNEL: recorder}, clock=clock)
    try:
        assert await second.preparer.drain() == 1
        await second.sender.drain(CHANNEL)
        assert await second.preparer.drain() == 0
        await second.sender.drain(CHANNEL)
    finally:
        await second.close()
    files = [m for m in recorder.delivered if m.attachments]
    assert len(files) == 1 and "共 1 行" in files[0].text
    assert len(list((tmp_path / "media" / "exports").iterdir())) == 1  # overwritten, not doubled
    texts = [m.text for m in recorder.delivered]
    assert texts.index(files[0].text) > max(i for i, t in enumerate(texts) if "正在生成" in t)


async def test_a_failed_build_is_told_in_the_persons_language_and_nothing_is_lost(
    app: App, org: dict[str, int], person, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_hazards(app, org)
    liu = await person("刘强")
    await liu.send("/lang en")

    def broken(conn: sqlite3.Connection, row: outbox.Preparing, media_dir: Path) -> preparer.Built:
        raise OSError("disk full")

    app.preparer.builders[preparer.EXPORT] = broken
    await liu.send("/export")
    await liu.press("Hazard")
    with caplog.at_level(logging.ERROR, logger="bot.preparer"):
        replies = await liu.press("This month")
    assert replies[-1] == "⚠️ The file could not be prepared. Please try again."
    last = (await rows_for(app, liu))[-1]
    assert last["status"] == "pending" and last["attachments"] is None
    assert f"outbox={last['id']}" in caplog.text and f"staff={liu.staff_id}" in caplog.text
    # The person asks again once the cause is gone, and gets the file.
    app.preparer.builders[preparer.EXPORT] = preparer.build_export
    await liu.send("/export")
    await liu.press("Hazard")
    assert "1 row" in (await liu.press("This month"))[-1]


async def test_a_supervisors_export_keeps_their_subtree_even_if_built_later(
    app: App, org: dict[str, int], person
) -> None:
    await seed_hazards(app, org)
    liu = await person("刘强")
    await ask_for_export(app, liu)
    # Before the file is made, he becomes the safety officer of the whole centre.
    await app.db.transaction(
        lambda conn: conn.execute(
            "UPDATE staff SET roles = 'safety_officer', unit_id = (SELECT id FROM units"
            " WHERE parent_id IS NULL) WHERE id = ?",
            (liu.staff_id,),
        )
    )
    await app.preparer.drain()
    (relative,) = json.loads((await rows_for(app, liu))[-1]["attachments"])
    assert numbers_in(app.preparer.media_dir / relative) == ["YH-2026-001"]


async def test_the_order_pdf_reaches_each_person_in_their_own_language(
    app: App, org: dict[str, int], person, tmp_path: Path
) -> None:
    def seed(conn: sqlite3.Connection) -> None:
        hazards.create(
            conn,
            unit_id=conn.execute(
                "SELECT unit_id FROM staff WHERE id = ?", (org["张伟"],)
            ).fetchone()[0],
            reported_by=org["张伟"],
            source="report",
            description="配电箱门锁损坏",
            photo=None,
            severity="general",
            deadline_at="2026-11-28T15:59:59+00:00",
            now="2026-11-27T01:00:00+00:00",
        )
        conn.execute(
            "UPDATE hazards SET status = 'in_progress', responsible_id = ?, measure = '换锁'",
            (org["陈磊"],),
        )
        conn.execute("UPDATE staff SET language = 'en' WHERE id = ?", (org["陈磊"],))

    await app.db.transaction(seed)
    chen, liu = await person("陈磊"), await person("刘强")
    await liu.send("/hz 1 order")
    await liu.press("3 天内")
    await liu.press("沿用整改措施")
    files = {}
    for someone in (liu, chen):
        [row] = [r for r in await rows_for(app, someone) if r["attachments"]]
        assert row["status"] == "pending"
        (relative,) = json.loads(row["attachments"])
        pages = PdfReader(tmp_path / "media" / relative).pages
        files[someone.name] = "\n".join(page.extract_text() for page in pages)
    assert "隐患整改通知书" in files["刘强"]
    assert "Rectification order" in files["陈磊"] and "ZG-2026-001" in files["陈磊"]


async def test_the_sender_passes_over_an_address_whose_next_message_is_being_prepared(
    app: App,
) -> None:
    request = preparer.order_request(
        "ZG-2026-001", "zh-CN", default_timezone="Asia/Shanghai", now=START
    )

    def queue(conn: sqlite3.Connection) -> None:
        for key, address, document in (
            ("file", "held", request),
            ("after", "held", None),
            ("other", "free", None),
        ):
            outbox.enqueue(
                conn,
                outbox.NewMessage(None, CHANNEL, address, key, key, document=document),
                iso(START),
            )

    await app.db.transaction(queue)
    now = iso(START)
    assert await app.db.read(lambda c: outbox.due_addresses(c, CHANNEL, now, 10)) == ["free"]
    assert await app.db.read(lambda c: outbox.next_for(c, CHANNEL, "held", now, 10)) == []
