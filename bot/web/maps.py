"""Small static maps drawn by the server, with no script: the Web-Mercator
projection of a few points, the zoom that fits them in a box, and the
256-pixel tiles of `FRONTLINE_MAP_TILES` that cover it, with each point's
pixel position in the box. Pure functions; the page lays them out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

TILE = 256
MAX_LAT = 85.05112878  # Web Mercator's square world ends here
MAX_ZOOM = 18
PLACEHOLDERS = ("{z}", "{x}", "{y}")


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lon: float
    kind: str  # 'home', 'checkin', 'checkout'


@dataclass(frozen=True, slots=True)
class Tile:
    url: str
    left: int  # where its top-left corner sits in the box, in pixels
    top: int


@dataclass(frozen=True, slots=True)
class Marker:
    kind: str
    left: int
    top: int


@dataclass(frozen=True, slots=True)
class StaticMap:
    width: int
    height: int
    zoom: int
    tiles: list[Tile]
    markers: list[Marker]


def project(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """The point's pixel position in the whole world at `zoom` (256·2^zoom
    pixels square, (0, 0) at 180°W and 85.05°N)."""
    size = TILE * 2**zoom
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    x = (lon + 180.0) / 360.0 * size
    sin = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * size
    return x, y


def fitting_zoom(
    points: Sequence[Point], width: int, height: int, *, padding: int, max_zoom: int = MAX_ZOOM
) -> int:
    """The closest zoom at which every point lies at least `padding` pixels
    inside a `width`×`height` box centred on them (`max_zoom` for one point)."""
    for zoom in range(max_zoom, -1, -1):
        xs, ys = zip(*(project(p.lat, p.lon, zoom) for p in points), strict=True)
        if max(xs) - min(xs) <= width - 2 * padding and max(ys) - min(ys) <= height - 2 * padding:
            return zoom
    return 0


def tile_url(template: str, zoom: int, x: int, y: int) -> str:
    url = template
    for placeholder, value in zip(PLACEHOLDERS, (zoom, x, y), strict=True):
        url = url.replace(placeholder, str(value))
    return url


def static_map(
    template: str,
    points: Sequence[Point],
    *,
    width: int = 320,
    height: int = 200,
    padding: int = 20,
    max_zoom: int = 17,
) -> StaticMap | None:
    """The map of `points` in a `width`×`height` box: the tiles covering it
    and a marker per point; None without points."""
    if not points:
        return None
    zoom = fitting_zoom(points, width, height, padding=padding, max_zoom=max_zoom)
    projected = [(p, *project(p.lat, p.lon, zoom)) for p in points]
    xs = [x for _, x, _ in projected]
    ys = [y for _, _, y in projected]
    left = round((min(xs) + max(xs)) / 2 - width / 2)  # the box's corner, in world pixels
    top = round((min(ys) + max(ys)) / 2 - height / 2)
    count = 2**zoom
    tiles = [
        Tile(tile_url(template, zoom, tx % count, ty), tx * TILE - left, ty * TILE - top)
        for ty in range(math.floor(top / TILE), math.floor((top + height - 1) / TILE) + 1)
        if 0 <= ty < count  # above and below the world there is nothing to draw
        for tx in range(math.floor(left / TILE), math.floor((left + width - 1) / TILE) + 1)
    ]
    markers = [Marker(p.kind, round(x) - left, round(y) - top) for p, x, y in projected]
    return StaticMap(width, height, zoom, tiles, markers)


def origin(template: str) -> str:
    """Where the tiles come from, as a Content-Security-Policy source."""
    parts = urlsplit(template)
    return f"{parts.scheme}://{parts.netloc}"
