"""The desk in a real browser: Debian's chromium driven by Playwright against
a real `frontline run` (Telegram through the fake Bot API server, the desk
on its own port). A supervisor sends /web in chat, opens the link, sees
today's numbers, filters the register and opens a hazard with its photo; a
worker's link shows only their own hazards; another unit's hazard is 404; a
POST without the CSRF token is 403; a used link is refused. The hazard
loop across both: the supervisor sets the four fixes on the page, the
responsible person hears of it in chat and submits the rectification
there, the supervisor accepts it on the page, and it reads closed on both.

With FRONTLINE_SCREENSHOTS=<folder> it also photographs every page in both
languages at 1366 and 390 pixels wide."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app import App, serve
from bot.config import load_settings
from tests.telegram.fakebotapi import FakeBotAPI, photo_update
from tests.telegram.test_telegram_e2e import LIU, ZHANG, Bot, free_port, sign_up
from tests.web.deskkit import report
from tests.web.incidentkit import file_incident, investigate
from tests.web.visitkit import PNG, TileServer, seed_visits  # PNG: a photo, and every tile

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the desk's browser tests need Debian's chromium at /usr/bin/chromium"
    " (apt-get install chromium); .ci/run installs it",
)


async def _seed(db_path: Path, media: Path) -> dict[str, str]:
    from conftest import import_demo

    app = await App.open(db_path, {})
    try:
        ids = await import_demo(app)
        media.mkdir(parents=True, exist_ok=True)
        (media / "extinguisher.png").write_bytes(PNG)
        ours = await report(
            app,
            unit_path="物业服务中心/保安部/一班",
            reporter=ids["张伟"],
            description="灭火器压力不足，指针在红区",
            severity="major",
            photo="extinguisher.png",
        )
        liu_own = await report(
            app,
            unit_path="物业服务中心/保安部",
            reporter=ids["刘强"],
            description="消防通道堆放杂物",
            responsible=ids["陈磊"],
        )
        theirs = await report(
            app,
            unit_path="物业服务中心/工程部",
            reporter=ids["黄海"],
            description="配电箱门锁坏了",
        )
        # Today's visits at local noon, whenever the test runs: the page shows the local day.
        zone = ZoneInfo("Asia/Shanghai")
        noon = datetime.now(zone).replace(hour=12, minute=0, second=0, microsecond=0)
        await seed_visits(app, ids, noon)
        incident = await file_incident(
            app,
            unit_path="物业服务中心/保安部/一班",
            reporter=ids["张伟"],
            occurred=datetime.now(zone) - timedelta(days=3),
        )
        await investigate(
            app, incident, actor=ids["刘强"], now=datetime.now(zone), action="车库地面加防滑垫"
        )
    finally:
        await app.close()
    return {"ours": ours, "liu_own": liu_own, "theirs": theirs, "incident": incident}


@pytest.fixture
async def tile_server() -> AsyncIterator[TileServer]:
    async with TileServer() as server:
        yield server


@pytest.fixture
async def running(
    tmp_path: Path, tile_server: TileServer
) -> AsyncIterator[tuple[Bot, str, dict[str, str]]]:
    async with FakeBotAPI() as api:
        db_path = tmp_path / "frontline.db"
        numbers = await _seed(db_path, tmp_path / "media")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = load_settings(
            db=db_path,
            telegram_token=api.token,
            telegram_api_url=api.root_url,
            telegram_poll_timeout=1,
            web_url=base,
            web_listen=f"127.0.0.1:{port}",
            map_tiles=tile_server.template,
        )
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(settings, stop, started=started))
        await asyncio.wait_for(started.wait(), 10)
        try:
            yield Bot(api, settings, db_path), base, numbers
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def desk_link(bot: Bot, user: int, phone: str, base: str) -> str:
    """Sign up on Telegram, send /web, and read the link the bot sends back."""
    await sign_up(bot, user, phone)
    await bot.say(user, "/web")
    pattern = re.compile(rf"{re.escape(base)}/login/\S+")

    def links() -> list[str]:
        return [
            found.group(0)
            for message in bot.api.messages_to(user)
            if (found := pattern.search(message.text or ""))
        ]

    await bot.api.wait_for(lambda: bool(links()), timeout=10)
    return links()[-1]


SHOTS = os.environ.get("FRONTLINE_SCREENSHOTS")


async def shoot(page: Any, base: str, paths: dict[str, str], language: str) -> None:
    """Every page at a desk screen's width and a phone's, if asked to."""
    if not SHOTS:
        return
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in ((1366, 900), (390, 844)):
        await page.set_viewport_size({"width": width, "height": height})
        for name, path in paths.items():
            await page.goto(base + path)
            shot = folder / f"{name}-{language}-{width}.png"
            await page.screenshot(path=str(shot), full_page=True)


async def test_a_supervisor_signs_in_from_chat_and_reads_the_register(
    running: tuple[Bot, str, dict[str, str]], chromium: Any
) -> None:
    bot, base, numbers = running
    link = await desk_link(bot, LIU, "13800000004", base)
    context = await chromium.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    await page.goto(link)  # the sign-in page's own script posts its form
    await page.wait_for_url(base + "/")
    heading = await page.locator("h1").first.inner_text()
    assert heading.startswith("今日")
    tiles = await page.locator(".tiles.big").inner_text()
    assert "未关闭隐患" in tiles and "班前检查" in tiles
    assert await page.locator("table.units tbody tr").count() >= 2  # 保安部 and 一班

    await page.click("text=隐患台账")
    await page.select_option("select[name=severity]", "major")
    await page.fill("input[name=q]", "灭火器压力")
    await page.click("button.primary")
    rows = page.locator("table.register tbody tr")
    assert await rows.count() == 1
    assert numbers["ours"] in await rows.first.inner_text()

    await page.click(f"text={numbers['ours']}")
    await page.wait_for_url(f"{base}/hazards/{numbers['ours']}")
    assert "灭火器压力不足" in await page.locator("main").inner_text()
    drawn = await page.locator(".photos img").first.evaluate("img => img.naturalWidth")
    assert drawn == 2  # the photo was served to him and drawn
    # What he may do now: the four fixes, as a form.
    assert await page.locator(f"form[action='/hazards/{numbers['ours']}/assign']").count() == 1

    missing = await page.goto(f"{base}/hazards/{numbers['theirs']}")
    assert missing is not None and missing.status == 404
    photo = await page.request.get(f"{base}/media/{numbers['theirs']}/0")
    assert photo.status == 404

    forged = await page.request.post(f"{base}/logout", form={"language": "en"})
    assert forged.status == 403
    assert (await page.goto(base + "/")).status == 200  # type: ignore[union-attr]

    await shoot(
        page,
        base,
        {
            "today": "/",
            "hazards": "/hazards?status=active",
            "card": f"/hazards/{numbers['ours']}",
            "checks": "/checks",
            "wall": "/wall",
            "incidents": "/incidents",
            "people": "/people",
            "drills": "/drills",
            "notices": "/notices",
            "visits": "/visits",
            "incident": f"/incidents/{numbers['incident']}",
        },
        "zh",
    )
    if SHOTS:
        await page.set_viewport_size({"width": 1366, "height": 900})
        await page.goto(base + "/")
        await page.click("header .who button:has-text('English')")
        await page.wait_for_url(base + "/")
        assert (await page.locator("h1").first.inner_text()).startswith("Today")
        await shoot(
            page,
            base,
            {
                "today": "/",
                "hazards": "/hazards?status=active",
                "card": f"/hazards/{numbers['ours']}",
                "checks": "/checks",
                "wall": "/wall",
                "incidents": "/incidents",
                "people": "/people",
                "drills": "/drills",
                "notices": "/notices",
                "visits": "/visits",
                "incident": f"/incidents/{numbers['incident']}",
            },
            "en",
        )

    again = await (await chromium.new_context()).new_page()
    used = await again.goto(link)
    assert used is not None and used.status == 410
    assert "已经用过" in await again.locator("main").inner_text()
    if SHOTS:
        await again.screenshot(path=str(Path(SHOTS) / "link-used-zh-1366.png"))
    # No script, style or picture of ours was refused by the Content-Security-Policy.
    assert [e for e in errors if "Content Security Policy" in e] == []


async def test_a_workers_link_shows_only_their_own_hazards(
    running: tuple[Bot, str, dict[str, str]], chromium: Any
) -> None:
    bot, base, numbers = running
    link = await desk_link(bot, ZHANG, "13800000003", base)
    page = await (await chromium.new_context(viewport={"width": 390, "height": 844})).new_page()
    await page.goto(link)
    await page.wait_for_url(base + "/")
    await page.goto(base + "/hazards")
    listed = await page.locator("main").inner_text()
    assert numbers["ours"] in listed
    assert numbers["liu_own"] not in listed and numbers["theirs"] not in listed
    other = await page.goto(f"{base}/hazards/{numbers['liu_own']}")
    assert other is not None and other.status == 404
    wall = await page.goto(f"{base}/wall")
    assert wall is not None and wall.status == 403
    if SHOTS:
        await page.goto(base + "/")
        await page.screenshot(path=str(Path(SHOTS) / "worker-today-zh-390.png"), full_page=True)
        admin = await (await chromium.new_context()).new_page()
        await admin.goto(await desk_link(bot, 5003, "13800000001", base))
        await admin.wait_for_url(base + "/")
        await shoot(admin, base, {"admin-audit": "/audit", "admin-people": "/people"}, "zh")


CHEN = 5005  # 陈磊's Telegram user id, a worker in 保安部/一班


async def said(bot: Bot, user: int, text: str) -> str:
    """Wait until the bot has sent `user` a message containing `text`."""

    def found() -> list[str]:
        return [
            shown
            for message in bot.api.messages_to(user)
            if text in (shown := message.text or message.caption or "")
        ]

    await bot.api.wait_for(lambda: bool(found()), timeout=10)
    return found()[-1]


async def test_the_four_fixes_on_the_page_the_rectification_in_chat_and_acceptance_on_the_page(
    running: tuple[Bot, str, dict[str, str]], chromium: Any
) -> None:
    bot, base, numbers = running
    number = numbers["ours"]
    hazard_id = bot.rows("SELECT id FROM hazards WHERE number = ?", number)[0]["id"]
    chen_id = bot.rows("SELECT id FROM staff WHERE name = '陈磊'")[0]["id"]
    link = await desk_link(bot, LIU, "13800000004", base)
    await sign_up(bot, CHEN, "13800000005")
    page = await (await chromium.new_context(viewport={"width": 1366, "height": 900})).new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(link)
    await page.wait_for_url(base + "/")
    card = f"{base}/hazards/{number}"
    await page.goto(card)
    await shoot(page, base, {"card-assign": f"/hazards/{number}"}, "zh")
    await page.set_viewport_size({"width": 1366, "height": 900})
    await page.goto(card)

    # 刘强 sets the four fixes on the page.
    form = page.locator(f"form[action='/hazards/{number}/assign']")
    await form.locator("select[name=responsible]").select_option(str(chen_id))
    await form.locator("textarea[name=measure]").fill("更换灭火器并检查其余灭火器")
    tomorrow = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)
    await form.locator("input[name=deadline]").fill(tomorrow.strftime("%Y-%m-%dT18:00"))
    await form.locator("input[name=funding]").fill("350")
    await form.locator("button.primary").click()
    await page.wait_for_url(card)
    assert f"已指派隐患 {number}" in await page.locator(".flash").inner_text()
    assert "陈磊" in await page.locator("main").inner_text()

    # 陈磊 hears of it in chat, and submits the rectification there with a photo.
    told = await said(bot, CHEN, "刘强 指派您整改隐患")
    assert number in told and "更换灭火器并检查其余灭火器" in told
    await bot.say(CHEN, f"/hz {hazard_id} submit")
    await said(bot, CHEN, "请写明整改做了什么")
    await bot.say(CHEN, "已更换灭火器，其余三具压力正常")
    await said(bot, CHEN, "至少一张")
    bot.api.push_update(photo_update(CHEN, bot.api.add_photo(PNG)))
    await bot.asking(CHEN, "完成")
    await bot.press(CHEN, "完成")
    await said(bot, CHEN, "等待验收")

    # 刘强 accepts it on the page; it reads closed there and in chat.
    await page.goto(card)
    assert "已更换灭火器" in await page.locator("main").inner_text()
    assert await page.locator(".photos img").count() == 2  # the report's and the rectification's
    await shoot(page, base, {"card-accept": f"/hazards/{number}"}, "zh")
    await page.set_viewport_size({"width": 1366, "height": 900})
    await page.goto(card)
    await page.locator(f"form[action='/hazards/{number}/accept'] button").click()
    await page.wait_for_url(card)
    assert "验收通过，已销号" in await page.locator(".flash").inner_text()
    assert "已销号" in await page.locator("h1").inner_text()
    assert await page.locator("form[action*='/accept']").count() == 0
    await said(bot, CHEN, f"隐患 {number} 已验收销号")
    await bot.say(CHEN, f"/hz {hazard_id}")
    shown = await said(bot, CHEN, f"📋 隐患 {number}")
    assert "状态：已销号" in shown and shown.endswith("刘强 验收通过，销号")

    if SHOTS:  # the forms of a hazard in progress, in both languages
        await shoot(page, base, {"card-forms": f"/hazards/{numbers['liu_own']}"}, "zh")
        await page.set_viewport_size({"width": 1366, "height": 900})
        await page.goto(base + "/")
        await page.click("header .who button:has-text('English')")
        await page.wait_for_url(base + "/")
        await shoot(
            page,
            base,
            {"card-forms": f"/hazards/{numbers['liu_own']}", "card-closed": f"/hazards/{number}"},
            "en",
        )
    assert [e for e in errors if "Content Security Policy" in e] == []


ADMIN = 5003  # 王建国's Telegram user id


async def test_the_visits_map_draws_its_tiles_from_the_tile_server_only(
    running: tuple[Bot, str, dict[str, str]], chromium: Any, tile_server: TileServer
) -> None:
    bot, base, numbers = running
    link = await desk_link(bot, ADMIN, "13800000001", base)
    page = await (await chromium.new_context(viewport={"width": 1366, "height": 900})).new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(link)
    await page.wait_for_url(base + "/")
    response = await page.goto(base + "/visits")
    assert response is not None
    assert f"img-src 'self' {tile_server.origin};" in response.headers["content-security-policy"]
    await page.wait_for_load_state("networkidle")
    maps = page.locator("svg.map")
    assert await maps.count() >= 2  # K001's visit and K002's (and the planned round)
    drawn = await page.locator("svg.map image").count()
    assert drawn >= 2 and len(set(tile_server.asked)) >= 2  # the browser fetched the tiles
    text = await page.locator(".visit-maps").inner_text()
    assert "王桂芳" in text and "距住址 58 米" in text and "距住址 23 米" in text
    card = await page.goto(f"{base}/incidents/{numbers['incident']}")
    assert card is not None and card.status == 200
    assert "车库地面加防滑垫" in await page.locator("main").inner_text()
    pdf = await page.request.get(f"{base}/incidents/{numbers['incident']}/record.pdf")
    assert pdf.status == 200 and (await pdf.body()).startswith(b"%PDF")
    await shoot(page, base, {"visits-map": "/visits"}, "zh")
    if SHOTS:
        await page.set_viewport_size({"width": 1366, "height": 900})
        await page.goto(base + "/visits")
        await page.click("header .who button:has-text('English')")
        await page.wait_for_url(base + "/visits")
        await shoot(page, base, {"visits-map": "/visits"}, "en")
    assert [e for e in errors if "Content Security Policy" in e] == []
