"""/export in chat: a supervisor gets their own units' register as an XLSX
file; safety officers see every unit; other roles are refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import START, Person
from openpyxl import load_workbook

from bot.app import App
from bot.clock import iso


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


async def export_file(app: App, someone: Person, register: str, period: str) -> Path:
    await someone.send("/export")
    await someone.press(register)
    replies = await someone.press(period)
    assert "行" in replies[-1]
    row = await app.db.read(
        lambda conn: conn.execute(
            "SELECT attachments FROM outbox WHERE address = ? ORDER BY id DESC LIMIT 1",
            (someone.user_id,),
        ).fetchone()
    )
    (relative,) = json.loads(row["attachments"])
    assert relative.endswith(".xlsx")
    assert app.engine.media_dir is not None
    return app.engine.media_dir / relative


async def test_a_supervisor_exports_only_their_units_hazards(
    app: App, org: dict[str, int], person
) -> None:
    await seed_hazards(app, org)
    liu = await person("刘强")
    path = await export_file(app, liu, "隐患台账", "本月")
    rows = list(load_workbook(path).worksheets[0].iter_rows(values_only=True))
    assert rows[0][0] == "编号"
    assert [r[0] for r in rows[1:]] == ["YH-2026-001"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


async def test_a_safety_officer_exports_every_unit(app: App, org: dict[str, int], person) -> None:
    await seed_hazards(app, org)
    officer = await person("李静")
    path = await export_file(app, officer, "隐患台账", "本年")
    rows = list(load_workbook(path).worksheets[0].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["YH-2026-001", "YH-2026-002"]


async def test_staff_are_refused(person) -> None:
    zhang = await person("张伟")
    replies = await zhang.send("/export")
    assert replies == ["只有主管、安全员和管理员可以导出台账。"]
