"""The incident card on the desk: the report, the 15-day clock by the chat's
rules (days left, then overdue, stopped once the report is recorded), the
investigation, the corrective actions as hazards, the whole history and the
record's PDF for overseers; for anyone the chat would not show it to, the
incident does not exist."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from conftest import START

from bot.app import App
from bot.clock import FakeClock
from tests.web.deskkit import Browser, browser_fixture, desk_fixture  # noqa: F401
from tests.web.incidentkit import file_incident, investigate, record_report

TEAM = "物业服务中心/保安部/一班"


async def test_the_card_shows_the_report_its_clock_the_investigation_and_history(
    app: App, org: dict[str, int], browser: Callable[[], Any], clock: FakeClock
) -> None:
    # 27 Nov 09:00 in Shanghai: due at the end of 12 Dec, 15 days and 15 hours away.
    number = await file_incident(app, unit_path=TEAM, reporter=org["张伟"], occurred=START)
    hazard = await investigate(
        app, number, actor=org["刘强"], now=START + timedelta(hours=2), action="地面加防滑垫"
    )
    liu: Browser = await browser()
    await liu.sign_in(org["刘强"])
    response = await liu.get(f"/incidents/{number}")
    assert response.status == 200
    page = await response.text()
    assert "搬运时扭伤脚踝" in page and "地下车库" in page and "物业服务中心/保安部/一班" in page
    assert "剩 16 天" in page and "2026-12-12 23:59" in page
    assert "地面有油污，未设警示" in page and "班长" in page and "调查中" in page
    assert f'href="/hazards/{hazard}"' in page and "地面加防滑垫" in page
    for step in ("报告事故", "记录调查", "添加整改措施"):
        assert step in page, step
    assert f'href="/incidents/{number}/record.pdf"' in page
    assert f"/incident {number}" in page  # what to do in chat

    clock.advance(timedelta(days=16))  # 13 Dec 09:00: the report is a day late
    await liu.sign_in(org["刘强"])  # the session idled out meanwhile
    page = await (await liu.get(f"/incidents/{number}")).text()
    assert "已超期 1 天" in page

    await record_report(
        app, number, actor=org["李静"], reference="人社工伤〔2026〕12号", now=clock.now()
    )
    page = await (await liu.get(f"/incidents/{number}")).text()
    assert "已超期" not in page and "剩 " not in page
    assert "人社工伤〔2026〕12号" in page and "李静" in page and "登记15日报告已提交" in page


async def test_the_register_rows_open_their_cards(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await file_incident(app, unit_path=TEAM, reporter=org["张伟"], occurred=START)
    officer: Browser = await browser()
    await officer.sign_in(org["李静"])
    register = await (await officer.get("/incidents")).text()
    assert f'href="/incidents/{number}"' in register


async def test_the_record_pdf_is_for_overseers_and_the_card_for_the_reporter_too(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await file_incident(app, unit_path=TEAM, reporter=org["张伟"], occurred=START)
    liu: Browser = await browser()
    await liu.sign_in(org["刘强"])
    pdf = await liu.get(f"/incidents/{number}/record.pdf")
    assert pdf.status == 200 and pdf.content_type == "application/pdf"
    assert (await pdf.read()).startswith(b"%PDF")
    zhang: Browser = await browser()
    await zhang.sign_in(org["张伟"])
    page = await (await zhang.get(f"/incidents/{number}")).text()
    assert "搬运时扭伤脚踝" in page and "record.pdf" not in page
    assert (await zhang.get(f"/incidents/{number}/record.pdf")).status == 403
    yang: Browser = await browser()  # same team, did not report it, oversees nothing
    await yang.sign_in(org["杨洋"])
    assert (await yang.get(f"/incidents/{number}")).status == 404
    assert (await yang.get(f"/incidents/{number}/record.pdf")).status == 404


async def test_an_english_reader_sees_the_card_in_english(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await file_incident(app, unit_path=TEAM, reporter=org["张伟"], occurred=START)
    admin: Browser = await browser()
    await admin.sign_in(org["王建国"])
    await admin.post("/language", csrf=admin.csrf, language="en", back="/")
    page = await (await admin.get(f"/incidents/{number}")).text()
    assert "15-day report" in page and "days left: 16" in page and "Corrective actions" in page
