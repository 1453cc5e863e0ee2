"""The visits page with and without FRONTLINE_MAP_TILES: with it, each visit
has its small map — the tiles that cover the client's home and the check-in
and check-out points, served by a local tile server — and the CSP lets
pictures come from that server only; without it, the list as before. Both
keep the distances from home."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.clock import FakeClock
from bot.web.app import create_app, opened
from bot.web.context import Desk
from bot.web.maps import TILE, project, static_map, tile_url
from bot.web.maps import Point as MapPoint
from bot.web.visits import MAP_HEIGHT, MAP_WIDTH
from tests.web.deskkit import URL, Browser, browser_fixture, desk_fixture  # noqa: F401
from tests.web.visitkit import CHECKIN, CHECKOUT, TileServer, seed_visits

HOME = (31.2386, 121.4801)  # K001 in the demo client list


@pytest.fixture
async def tiles() -> AsyncIterator[TileServer]:
    async with TileServer() as server:
        yield server


@pytest.fixture
async def mapped(
    app: App, clock: FakeClock, tmp_path: Path, tiles: TileServer
) -> AsyncIterator[tuple[Desk, TestClient[Any, Any]]]:
    """The desk with the tile server configured, and a client of it."""
    async with opened(
        app.db,
        web_url=URL,
        clock=clock,
        default_timezone="Asia/Shanghai",
        default_language="zh-CN",
        media_dir=tmp_path / "media",
        drills_per_year=2,
        map_tiles=tiles.template,
    ) as the_desk:
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(the_desk)))
        await client.start_server()
        try:
            yield the_desk, client
        finally:
            await client.close()


async def signed_in(desk: Desk, client: TestClient[Any, Any], staff_id: int) -> Browser:
    person = Browser(desk, client)
    await person.sign_in(staff_id)
    return person


async def test_each_visit_has_its_map_and_its_distances(
    app: App,
    org: dict[str, int],
    mapped: tuple[Desk, TestClient[Any, Any]],
    tiles: TileServer,
    clock: FakeClock,
) -> None:
    await seed_visits(app, org, clock.now())
    sun = await signed_in(*mapped, org["孙丽"])
    response = await sun.get("/visits")
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert f"img-src 'self' {tiles.origin};" in csp and "unsafe-inline" not in csp
    page = await response.text()
    assert "距住址 58 米" in page and "距住址 23 米" in page  # the distances stay beside the map

    expected = static_map(
        tiles.template,
        [MapPoint(*HOME, "home"), MapPoint(*CHECKIN, "checkin"), MapPoint(*CHECKOUT, "checkout")],
        width=MAP_WIDTH,
        height=MAP_HEIGHT,
    )
    assert expected is not None
    shown = re.findall(r'<image href="([^"]+)" x="(-?\d+)" y="(-?\d+)"', page)
    first = shown[: len(expected.tiles)]  # K001's map comes first: her visit is earlier
    assert [(url, int(x), int(y)) for url, x, y in first] == [
        (t.url, t.left, t.top) for t in expected.tiles
    ]
    z = expected.zoom
    x, y = project(*HOME, z)
    home_tile = tile_url(tiles.template, z, int(x // TILE), int(y // TILE))
    assert home_tile in page
    pins = re.findall(r'<circle class="pin (\w+)" cx="(-?\d+)" cy="(-?\d+)"', page)
    assert [kind for kind, _, _ in pins] == ["home", "checkin", "checkout", "home"]
    assert all(0 < int(cx) < MAP_WIDTH and 0 < int(cy) < MAP_HEIGHT for _, cx, cy in pins)
    # K002's visit is still to come and she has coordinates: a map of her home alone.
    assert page.count('<svg class="map"') == 2

    async with aiohttp.ClientSession() as session, session.get(home_tile) as tile:
        assert tile.status == 200 and tile.content_type == "image/png"
    assert tiles.asked  # the tile URLs on the page are the server's


async def test_without_tiles_the_list_keeps_its_distances_and_the_csp_its_own_origin(
    app: App, org: dict[str, int], browser: Any, clock: FakeClock
) -> None:
    await seed_visits(app, org, clock.now())
    sun: Browser = await browser()
    await sun.sign_in(org["孙丽"])
    response = await sun.get("/visits")
    assert "img-src 'self';" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert "<svg" not in page and "<image" not in page
    assert "王桂芳" in page and "距住址 58 米" in page and "距住址 23 米" in page


async def test_a_visit_without_coordinates_has_no_map_but_keeps_its_row(
    app: App, org: dict[str, int], mapped: tuple[Desk, TestClient[Any, Any]], clock: FakeClock
) -> None:
    await seed_visits(app, org, clock.now())
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE clients SET lat = NULL, lon = NULL WHERE number = 'K002'")
    )
    sun = await signed_in(*mapped, org["孙丽"])
    page = await (await sun.get("/visits")).text()
    assert page.count('<svg class="map"') == 1 and "没有位置信息" in page and "李德明" in page
