"""The visits page's static maps as pure functions: Web-Mercator pixels of
known places, the zoom that fits the points, and the tiles that cover the box."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.web.maps import TILE, Point, fitting_zoom, origin, project, static_map, tile_url

TEMPLATE = "http://127.0.0.1:9/{z}/{x}/{y}.png"
HOME = Point(31.2386, 121.4801, "home")  # K001, 福建中路 in Huangpu


def osm_tile(lat: float, lon: float, zoom: int) -> tuple[int, int]:
    """The slippy-map tile of a point, as the OpenStreetMap wiki writes it."""
    n = 2**zoom
    phi = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(phi)) / math.pi) / 2 * n)


def test_known_points_land_on_known_pixels() -> None:
    assert project(0, 0, 0) == pytest.approx((128, 128))
    assert project(85.05112878, -180, 0) == pytest.approx((0, 0), abs=1e-6)
    assert project(-85.05112878, 180, 1) == pytest.approx((512, 512), abs=1e-6)
    x, y = project(HOME.lat, HOME.lon, 15)
    assert (int(x // TILE), int(y // TILE)) == osm_tile(HOME.lat, HOME.lon, 15) == (27441, 13388)


@given(
    st.floats(min_value=-85, max_value=85),
    st.floats(min_value=-179.999, max_value=179.999),
    st.integers(min_value=0, max_value=18),
)
def test_the_tile_of_a_projected_point_is_the_osm_tile(lat: float, lon: float, zoom: int) -> None:
    x, y = project(lat, lon, zoom)
    tx, ty = osm_tile(lat, lon, zoom)
    # Both formulas agree to well under a pixel; at a tile's edge floor may differ by one.
    assert abs(x / TILE - tx) < 1 + 1e-6 and abs(y / TILE - ty) < 1 + 1e-6
    assert tx <= x / TILE + 1e-6 and ty <= y / TILE + 1e-6


def test_the_zoom_is_the_closest_that_fits_the_points() -> None:
    checkin = Point(31.2430, 121.4801, "checkin")  # about 490 m north of home
    zoom = fitting_zoom([HOME, checkin], 320, 200, padding=20)
    assert zoom == 15
    _, y_home = project(HOME.lat, HOME.lon, zoom)
    _, y_in = project(checkin.lat, checkin.lon, zoom)
    assert abs(y_home - y_in) <= 160
    _, y_home = project(HOME.lat, HOME.lon, zoom + 1)
    _, y_in = project(checkin.lat, checkin.lon, zoom + 1)
    assert abs(y_home - y_in) > 160  # one closer would not fit
    assert fitting_zoom([HOME], 320, 200, padding=20, max_zoom=17) == 17


def test_the_tiles_cover_the_box_and_the_markers_sit_where_projected() -> None:
    checkin = Point(31.2400, 121.4820, "checkin")
    drawn = static_map(TEMPLATE, [HOME, checkin], width=320, height=200)
    assert drawn is not None
    # Every pixel of the box is under exactly one tile.
    for px in (0, 160, 319):
        for py in (0, 100, 199):
            under = [
                t
                for t in drawn.tiles
                if t.left <= px < t.left + TILE and t.top <= py < t.top + TILE
            ]
            assert len(under) == 1, (px, py)
    z = drawn.zoom
    home_tile = osm_tile(HOME.lat, HOME.lon, z)
    assert tile_url(TEMPLATE, z, *home_tile) in {t.url for t in drawn.tiles}
    home = next(m for m in drawn.markers if m.kind == "home")
    # The marker's pixel inside its tile is the projected point's.
    x, y = project(HOME.lat, HOME.lon, z)
    tile = next(t for t in drawn.tiles if t.url == tile_url(TEMPLATE, z, *home_tile))
    assert home.left - tile.left == pytest.approx(x - home_tile[0] * TILE, abs=1)
    assert home.top - tile.top == pytest.approx(y - home_tile[1] * TILE, abs=1)
    assert all(20 <= m.left <= 300 and 20 <= m.top <= 180 for m in drawn.markers)


def test_a_map_at_the_antimeridian_wraps_its_tiles_and_none_without_points() -> None:
    drawn = static_map(TEMPLATE, [Point(0, 179.9999, "home")], max_zoom=2)
    assert drawn is not None and drawn.zoom == 2
    assert {t.url for t in drawn.tiles} >= {
        tile_url(TEMPLATE, 2, 3, 1),
        tile_url(TEMPLATE, 2, 0, 1),
    }
    assert static_map(TEMPLATE, []) is None


def test_the_tile_url_and_the_origin_for_the_csp() -> None:
    template = "https://tiles.example.org:8443/osm/{z}/{x}/{y}.png?key=abc"
    assert tile_url(template, 15, 27441, 13388) == (
        "https://tiles.example.org:8443/osm/15/27441/13388.png?key=abc"
    )
    assert origin(template) == "https://tiles.example.org:8443"
