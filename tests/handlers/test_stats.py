"""/stats: the weekly picture on demand, for supervisors (their units),
safety officers and admins (every unit); refused to everyone else."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from PIL import Image

from bot.app import App
from bot.store import people


async def seed_today(app: App, org: dict[str, int]) -> None:
    """Friday 2026-11-27: 张伟 has done his pre-shift check; 黄海 (工程部) too."""

    def run(conn: sqlite3.Connection) -> None:
        for name, path in (("张伟", "物业服务中心/保安部/一班"), ("黄海", "物业服务中心/工程部")):
            conn.execute(
                "INSERT INTO checklist_runs (checklist, staff_id, unit_id, local_date,"
                " started_at, completed_at) VALUES ('preshift', ?, ?, '2026-11-27',"
                " '2026-11-27T00:30:00+00:00', '2026-11-27T00:35:00+00:00')",
                (org[name], people.unit_id(conn, path)),
            )

    await app.db.transaction(run)


async def last_chart(app: App, staff_id: int) -> str:
    row = await app.db.read(
        lambda conn: conn.execute(
            "SELECT attachments FROM outbox WHERE staff_id = ? ORDER BY id DESC LIMIT 1",
            (staff_id,),
        ).fetchone()
    )
    (chart,) = json.loads(row["attachments"])
    return str(chart)


async def test_supervisor_picks_this_week_and_gets_text_and_chart(
    person, org: dict[str, int], app: App, tmp_path: Path
) -> None:
    await seed_today(app, org)
    liu = await person("刘强")
    replies = await liu.send("/stats")
    assert "查看哪个时段" in replies[0]
    assert [label for label, _ in liu.last_buttons] == ["本周", "上周", "本月", "上月"]
    (text,) = await liu.press("本周")
    assert "物业服务中心/保安部 2026-11-23 至 2026-11-29" in text
    # Monday to Friday so far, 4 people a day: 1 of 20 done; the weekend has not come.
    assert "岗前自查完成率：5%（1/20 人次）" in text
    assert "隐患：新增 0，销号 0，逾期 0" in text
    with Image.open(tmp_path / "media" / await last_chart(app, org["刘强"])) as image:
        assert image.format == "PNG"


async def test_last_month_covers_the_whole_month_before(person, org: dict[str, int]) -> None:
    liu = await person("刘强")
    await liu.send("/stats")
    (text,) = await liu.press("上月")
    assert "2026-10-01 至 2026-10-31" in text
    assert "0%（0/124 人次）" in text


async def test_safety_officer_sees_every_unit(person, org: dict[str, int]) -> None:
    officer = await person("李静")
    (text,) = await officer.send("/stats week")
    assert "全部单位 2026-11-23 至 2026-11-29" in text


async def test_staff_are_refused_in_their_language(person, app: App, org: dict[str, int]) -> None:
    zhang = await person("张伟")
    (text,) = await zhang.send("/stats week")
    assert "只有主管、安全员或管理员可以查看统计" in text
    james = await person("James Wilson")
    (text,) = await james.send("/stats")
    assert "Only a supervisor, a safety officer or an admin" in text
    assert not james.last_buttons
