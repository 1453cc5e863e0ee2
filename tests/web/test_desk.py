"""The desk over HTTP, without a browser: who may open which page (every
route × every role), the sign-in link's rules, CSRF, security headers, and
that another unit's hazard and its photo do not exist for you."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import START
from openpyxl import load_workbook

from bot.app import App
from bot.clock import FakeClock
from bot.i18n import catalog
from bot.store import hazards as hazard_store
from bot.web.context import Desk
from tests.web.deskkit import Browser, browser_fixture, desk_fixture, report  # noqa: F401
from tests.web.incidentkit import file_incident

SECURITY = "物业服务中心/保安部/一班"
ENGINEERING = "物业服务中心/工程部"
PHOTO = b"\xff\xd8 a photo \xff\xd9"


@pytest.fixture
async def hazards(app: App, org: dict[str, int], desk: Desk) -> dict[str, str]:
    """One hazard in 保安部/一班 (张伟's), one in 工程部 (黄海's), each with a photo."""
    desk.media_dir.mkdir(parents=True, exist_ok=True)
    (desk.media_dir / "a.jpg").write_bytes(PHOTO)
    (desk.media_dir / "b.jpg").write_bytes(PHOTO)
    ours = await report(
        app, unit_path=SECURITY, reporter=org["张伟"], description="灭火器压力不足", photo="a.jpg"
    )
    theirs = await report(
        app,
        unit_path=ENGINEERING,
        reporter=org["黄海"],
        description="配电箱门锁坏了",
        photo="b.jpg",
    )
    return {"ours": ours, "theirs": theirs}


@pytest.fixture
async def incidents(app: App, org: dict[str, int]) -> dict[str, str]:
    """One incident in 保安部/一班 that 张伟 reported, one in 工程部 (黄海's)."""
    ours = await file_incident(app, unit_path=SECURITY, reporter=org["张伟"], occurred=START)
    theirs = await file_incident(app, unit_path=ENGINEERING, reporter=org["黄海"], occurred=START)
    return {"our_incident": ours, "their_incident": theirs}


ROLES = ("张伟", "刘强", "赵敏", "李静", "王建国", None)  # worker, two supervisors, officer, admin
# What each person gets from each route: 张伟 is a worker in 保安部/一班, 刘强
# heads 保安部, 赵敏 heads 工程部; 李静 and 王建国 see every unit.
TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "/": (200, 200, 200, 200, 200, 401),
    "/hazards": (200, 200, 200, 200, 200, 401),
    "/hazards?q=灭火器&status=active&sort=deadline": (200, 200, 200, 200, 200, 401),
    "/hazards.xlsx": (200, 200, 200, 200, 200, 401),
    "/hazards/{ours}": (200, 200, 404, 200, 200, 401),
    "/hazards/{theirs}": (404, 404, 200, 200, 200, 401),
    "/hazards/YH-2099-9999": (404, 404, 404, 404, 404, 401),
    "/media/{ours}/0": (200, 200, 404, 200, 200, 401),
    "/media/{theirs}/0": (404, 404, 200, 200, 200, 401),
    "/media/{ours}/7": (404, 404, 404, 404, 404, 401),
    "/incidents": (200, 200, 200, 200, 200, 401),
    "/incidents?running=1&unit=1&page=2": (200, 200, 200, 200, 200, 401),
    "/incidents/{our_incident}": (200, 200, 404, 200, 200, 401),
    "/incidents/{their_incident}": (404, 404, 200, 200, 200, 401),
    "/incidents/SG-2099-999": (404, 404, 404, 404, 404, 401),
    "/incidents/{our_incident}/record.pdf": (403, 200, 404, 200, 200, 401),
    "/incidents/{their_incident}/record.pdf": (404, 404, 200, 200, 200, 401),
    "/visits": (403, 200, 200, 200, 200, 401),
    "/drills": (403, 200, 200, 200, 200, 401),
    "/notices": (200, 200, 200, 200, 200, 401),
    "/people": (403, 200, 200, 403, 200, 401),
    "/audit": (403, 403, 403, 403, 200, 401),
    "/people/{chen}/deactivate": (403, 403, 403, 403, 200, 401),
    "/checks": (403, 200, 200, 200, 200, 401),
    "/wall": (403, 200, 200, 200, 200, 401),
    "/nowhere": (404, 404, 404, 404, 404, 401),
    "/static/desk.css": (200, 200, 200, 200, 200, 200),
}


async def test_every_route_for_every_role(
    org: dict[str, int],
    hazards: dict[str, str],
    incidents: dict[str, str],
    browser: Callable[[], Any],
) -> None:
    seen: dict[str, list[int]] = {}
    for column, name in enumerate(ROLES):
        person: Browser = await browser()
        if name is not None:
            await person.sign_in(org[name])
        for route, expected in TABLE.items():
            response = await person.get(route.format(**hazards, **incidents, chen=org["陈磊"]))
            seen.setdefault(route, []).append(response.status)
            assert response.status == expected[column], (route, name, response.status)
    assert seen  # the table ran


# What each person gets from each action of the card (a POST with the CSRF
# token): 刘强 and 李静 may assign 保安部's hazard (again: a reassignment),
# 张伟 and 王建国 see it but may not, 赵敏 does not see it at all.
ACTIONS_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "/hazards/{ours}/assign": (403, 303, 404, 303, 403, 401),
    "/hazards/{ours}/accept": (403, 409, 404, 409, 403, 401),  # not submitted yet
    "/hazards/{theirs}/assign": (404, 404, 400, 400, 403, 401),  # 陈磊 is not 工程部's
    "/hazards/{ours}/destroy": (400, 400, 404, 400, 400, 401),
    "/hazards/YH-2099-9999/accept": (404, 404, 404, 404, 404, 401),
}


async def test_every_action_for_every_role(
    org: dict[str, int], hazards: dict[str, str], browser: Callable[[], Any]
) -> None:
    form = {
        "responsible": str(org["陈磊"]),
        "measure": "更换灭火器",
        "deadline": "2026-11-28T18:00",
        "funding": "0",
    }
    for column, name in enumerate(ROLES):
        person: Browser = await browser()
        if name is not None:
            await person.sign_in(org[name])
        for route, expected in ACTIONS_TABLE.items():
            path = route.format(**hazards)
            response = await person.post(path, csrf=person.csrf, **form)
            assert response.status == expected[column], (route, name, response.status)


async def test_the_register_shows_a_worker_only_their_own_hazards(
    org: dict[str, int], hazards: dict[str, str], browser: Callable[[], Any]
) -> None:
    zhang = await browser()
    await zhang.sign_in(org["张伟"])
    page = await (await zhang.get("/hazards")).text()
    assert hazards["ours"] in page and hazards["theirs"] not in page
    officer = await browser()
    await officer.sign_in(org["李静"])
    page = await (await officer.get("/hazards")).text()
    assert hazards["ours"] in page and hazards["theirs"] in page


async def test_search_finds_chinese_substrings_long_and_short(
    org: dict[str, int], hazards: dict[str, str], browser: Callable[[], Any]
) -> None:
    officer = await browser()
    await officer.sign_in(org["李静"])
    for words, found, missing in (
        ("灭火器压力", "ours", "theirs"),  # the trigram index
        ("门锁", "theirs", "ours"),  # two characters: LIKE
        ("三楼走廊 压力", "ours", "theirs"),  # place and description, both words
    ):
        page = await (await officer.get(f"/hazards?q={words}")).text()
        assert hazards[found] in page and hazards[missing] not in page, words


async def test_search_ignores_latin_case_and_takes_wildcards_literally(
    app: App, org: dict[str, int], hazards: dict[str, str], browser: Callable[[], Any]
) -> None:
    led = await report(
        app, unit_path=SECURITY, reporter=org["张伟"], description="LED应急灯不亮，电量100%耗尽"
    )
    officer = await browser()
    await officer.sign_in(org["李静"])
    for words, found in (
        ("led应急", True),  # letters in another case
        ("应急灯", True),  # no letter with a case: plain LIKE on PostgreSQL
        ("100%耗", True),  # % as itself
        ("10_%耗", False),  # _ and % as themselves, not wildcards
    ):
        page = await (await officer.get(f"/hazards?q={quote(words)}")).text()
        assert (led in page) is found, words
        assert hazards["theirs"] not in page, words


async def test_the_export_holds_exactly_the_rows_of_the_view(
    org: dict[str, int], hazards: dict[str, str], browser: Callable[[], Any]
) -> None:
    officer = await browser()
    await officer.sign_in(org["李静"])
    response = await officer.get("/hazards.xlsx?q=门锁")
    assert response.status == 200
    sheet = load_workbook(io.BytesIO(await response.read())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and len(rows) == 2
    assert rows[1][0] == hazards["theirs"] and rows[1][6] == "配电箱门锁坏了"


async def test_a_used_link_is_refused_and_starts_nothing(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    first = await browser()
    token = await first.link(org["刘强"])
    assert (await first.open_link(token)).status == 303
    second = await browser()
    again = await second.open_link(token)
    assert again.status == 410 and "已经用过" in await again.text()
    assert (await second.get("/")).status == 401
    assert (await second.get(f"/login/{token}")).status == 410


async def test_an_expired_link_is_refused(
    org: dict[str, int], browser: Callable[[], Any], clock: FakeClock
) -> None:
    person = await browser()
    token = await person.link(org["刘强"])
    clock.advance(timedelta(minutes=10, seconds=1))
    response = await person.open_link(token)
    assert response.status == 410 and "已过期" in await response.text()
    assert (await person.get("/")).status == 401


async def test_a_forged_link_is_refused(browser: Callable[[], Any]) -> None:
    person = await browser()
    response = await person.open_link("not-a-token-we-made")
    assert response.status == 404 and "没有这个登录链接" in await response.text()
    assert "frontline_desk" not in response.cookies


async def test_the_session_cookie_and_what_the_database_keeps(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    person = await browser()
    token = await person.link(org["刘强"])
    response = await person.open_link(token)
    cookie = response.cookies["frontline_desk"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    stored = await app.db.read(lambda conn: conn.execute("SELECT * FROM desk_sessions").fetchall())
    assert len(stored) == 1 and cookie.value not in dict(stored[0]).values()
    links = await app.db.read(lambda conn: conn.execute("SELECT * FROM desk_links").fetchall())
    assert token not in dict(links[0]).values() and links[0]["used_at"] is not None


async def test_twelve_idle_hours_end_a_session(
    org: dict[str, int], browser: Callable[[], Any], clock: FakeClock
) -> None:
    person = await browser()
    await person.sign_in(org["刘强"])
    clock.advance(timedelta(hours=11))
    assert (await person.get("/")).status == 200  # seen: the idle clock starts again
    clock.advance(timedelta(hours=11, minutes=59))
    assert (await person.get("/")).status == 200
    clock.advance(timedelta(hours=12, minutes=1))
    assert (await person.get("/")).status == 401


async def test_a_post_without_the_csrf_token_is_403(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    person = await browser()
    await person.sign_in(org["刘强"])
    assert (await person.post("/logout")).status == 403
    assert (await person.post("/logout", csrf="guessed")).status == 403
    assert (await person.post("/language", csrf=person.csrf, language="en")).status == 303
    assert (await person.get("/")).status == 200
    assert (await person.post("/logout", csrf=person.csrf)).status == 200
    assert (await person.get("/")).status == 401


async def test_a_post_from_another_origin_is_403(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    person = await browser()
    await person.sign_in(org["刘强"])
    response = await person.client.post(
        "/logout", data={"csrf": person.csrf}, headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403


async def test_every_page_carries_the_security_headers(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    person = await browser()
    await person.sign_in(org["王建国"])
    for path in ("/", "/hazards", "/nowhere", "/login/forged"):
        headers = (await person.get(path)).headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self'"), path
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"


async def test_the_page_language_follows_the_person_and_the_switch(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    james = await browser()
    await james.sign_in(org["James Wilson"])
    assert "Hazard register" in await (await james.get("/hazards")).text()
    await james.post("/language", csrf=james.csrf, language="zh-CN", back="/hazards")
    assert "隐患台账" in await (await james.get("/hazards")).text()


def test_the_templates_ask_only_for_keys_both_catalogs_have() -> None:
    folder = Path(__file__).resolve().parents[2] / "bot" / "web" / "templates"
    keys = {
        key
        for path in folder.glob("*.html")
        for key in re.findall(r"t\('(web\.[a-z_]+)'\s*[,)]", path.read_text(encoding="utf-8"))
    }
    assert len(keys) > 50
    for language in ("zh-CN", "en"):
        assert sorted(keys - catalog(language).keys()) == [], language


def test_the_desk_never_imports_handlers() -> None:
    code = (
        "import sys, bot.web.app, bot.web.today, bot.web.register, bot.web.card;"
        "print(sorted(m for m in sys.modules if m == 'handlers' or m.startswith('handlers.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_a_rectification_orders_pdf_is_served_with_its_hazard(
    app: App, org: dict[str, int], hazards: dict[str, str], browser: Callable[[], Any]
) -> None:
    def issue(conn: Any) -> str:
        hazard_id = conn.execute(
            "SELECT id FROM hazards WHERE number = ?", (hazards["ours"],)
        ).fetchone()[0]
        return hazard_store.issue_order(
            conn,
            hazard_id=hazard_id,
            issued_by=org["李静"],
            deadline_at="2026-12-01T09:00:00.000000+00:00",
            requirement="更换灭火器",
            now="2026-11-27T02:00:00.000000+00:00",
            year=2026,
        )

    order = await app.db.transaction(issue)
    liu = await browser()
    await liu.sign_in(org["刘强"])
    card = await (await liu.get(f"/hazards/{hazards['ours']}")).text()
    assert f"/hazards/{hazards['ours']}/orders/{order}.pdf" in card
    pdf = await liu.get(f"/hazards/{hazards['ours']}/orders/{order}.pdf")
    assert pdf.status == 200 and pdf.content_type == "application/pdf"
    assert (await pdf.read()).startswith(b"%PDF")
    assert (await liu.get(f"/hazards/{hazards['theirs']}/orders/{order}.pdf")).status == 404
    zhao = await browser()
    await zhao.sign_in(org["赵敏"])
    assert (await zhao.get(f"/hazards/{hazards['ours']}/orders/{order}.pdf")).status == 404
