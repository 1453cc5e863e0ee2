"""Printable documents through the engine: an issued rectification order
reaches the responsible person as a PDF to print and sign, the hazard card
gives it again to whoever may see the hazard, and overseers print an
incident's record; nobody else gets either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import CHANNEL, Person
from pypdf import PdfReader

from bot.app import App
from bot.store import hazards


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


async def attachments(app: App, someone: Person) -> list[str]:
    """Every attachment queued for this person on the test channel, oldest first."""
    rows = await app.db.read(
        lambda conn: conn.execute(
            "SELECT attachments FROM outbox WHERE channel = ? AND address = ? ORDER BY id",
            (CHANNEL, someone.user_id),
        ).fetchall()
    )
    return [path for row in rows if row["attachments"] for path in json.loads(row["attachments"])]


async def hazard_in_progress(app: App, org: dict[str, int]) -> None:
    """YH-2026-0001 in 一班, rectified by 陈磊 (measure: 换锁), as in the hazard loop tests."""

    def seed(conn: Any) -> None:
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

    await app.db.transaction(seed)


async def issue_order(supervisor: Person) -> list[str]:
    await supervisor.send("/hz 1 order")
    await supervisor.press("3 天内")
    return await supervisor.press("沿用整改措施")


async def test_an_issued_order_reaches_the_responsible_person_as_a_pdf(
    person, app: App, org, tmp_path: Path
) -> None:
    await hazard_in_progress(app, org)
    chen, liu = await person("陈磊"), await person("刘强")
    replies = await issue_order(liu)
    assert "整改通知书 ZG-2026-001" in replies[-1]
    [issued] = await attachments(app, liu)
    [received] = await attachments(app, chen)
    assert received == issued and received.endswith("/ZG-2026-001.pdf")
    text = pdf_text(tmp_path / "media" / received)
    for expected in ("隐患整改通知书", "ZG-2026-001", "YH-2026-0001", "配电箱门锁损坏", "陈磊"):
        assert expected in text, expected
    assert "换锁" in text and "刘强" in text and "整改责任人（签字）" in text


async def test_the_hazard_card_gives_the_order_again_to_those_who_may_see_it(
    person, app: App, org, tmp_path: Path
) -> None:
    await hazard_in_progress(app, org)
    zhang, liu, zhao = await person("张伟"), await person("刘强"), await person("赵敏")
    await issue_order(liu)
    await zhang.send("/hz 1")  # the reporter
    assert ("📄 ZG-2026-001 PDF", "/hz 1 pdf ZG-2026-001") in zhang.last_buttons
    replies = await zhang.press("ZG-2026-001")
    assert "整改通知书 ZG-2026-001" in replies[-1]
    [path] = await attachments(app, zhang)
    assert "ZG-2026-001" in pdf_text(tmp_path / "media" / path)
    # 赵敏 heads another department: the same answer as for a hazard that does not exist.
    assert "找不到这个隐患" in (await zhao.send("/hz 1 pdf ZG-2026-001"))[-1]
    assert await attachments(app, zhao) == []


async def test_a_hazard_without_an_order_has_nothing_to_print(person, app: App, org) -> None:
    await hazard_in_progress(app, org)
    liu = await person("刘强")
    assert "还没有整改通知书" in (await liu.send("/hz 1 pdf"))[-1]


async def test_overseers_print_the_incident_record_and_the_reporter_may_not(
    person, app: App, tmp_path: Path
) -> None:
    zhang, liu = await person("张伟"), await person("刘强")
    await zhang.send("/incident")
    await zhang.send("一班巡逻时在楼梯间滑倒，扭伤脚踝")
    await zhang.press("刚刚")
    await zhang.send("3号楼B座楼梯间")
    await zhang.press("受伤")
    await zhang.send("1")
    await zhang.send("陈磊")
    await zhang.send("已送医，现场已拉警戒线")
    await zhang.press("跳过")

    await liu.send("/incident SG-2026-001")
    replies = await liu.press("SG-2026-001 PDF")
    assert "事故 SG-2026-001" in replies[-1]
    [path] = await attachments(app, liu)
    text = pdf_text(tmp_path / "media" / path)
    for expected in ("事故登记表", "SG-2026-001", "3号楼B座楼梯间", "已送医", "未报送"):
        assert expected in text, expected

    assert "只有事故单位" in (await zhang.send("/incident SG-2026-001 pdf"))[-1]
    assert await attachments(app, zhang) == []
