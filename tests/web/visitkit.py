"""Home visits as the chat leaves them, for the desk's tests: the demo
clients, K001's visit planned around `now` and checked in and out near her
home by 马秀英, K002's still to come."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from bot import clients
from bot.app import App
from bot.clock import iso

# A 2x2 PNG: a photo the browser can draw.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
    "0000001649444154789c63f8cfc0f01f0418c0c4c0f01f00003f1c07f9b1f6cd4f"
    "0000000049454e44ae426082"
)
# Where K001 checked in (about 50 m north-east of her home) and out.
CHECKIN = (31.2390, 121.4805)
CHECKOUT = (31.2384, 121.4799)


async def seed_visits(app: App, staff: dict[str, int], now: datetime) -> None:
    demo = resources.files("bot.data").joinpath("demo_clients.csv")
    with resources.as_file(demo) as path:
        await clients.import_clients_file(app.db, path, deactivate_missing=False, now=now)

    def plan(conn: Any) -> None:
        ids = {
            row["number"]: (row["id"], row["unit_id"])
            for row in conn.execute("SELECT id, number, unit_id FROM clients").fetchall()
        }
        request = conn.execute(
            "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
            " worker_id, state, created_at) VALUES (?, 'request', '[]', ?, ?, ?, 'visited', ?)",
            (
                ids["K001"][0],
                iso(now - timedelta(hours=1)),
                iso(now),
                staff["马秀英"],
                iso(now),
            ),
        ).lastrowid
        conn.execute(
            "INSERT INTO visits (client_id, worker_id, unit_id, request_id, state, checkin_at,"
            " checkin_lat, checkin_lon, checkin_distance_m, checkout_at, checkout_lat,"
            " checkout_lon, checkout_distance_m, created_at)"
            " VALUES (?, ?, ?, ?, 'done', ?, ?, ?, 58, ?, ?, ?, 23, ?)",
            (
                ids["K001"][0],
                staff["马秀英"],
                ids["K001"][1],
                request,
                iso(now - timedelta(minutes=55)),
                *CHECKIN,
                iso(now - timedelta(minutes=5)),
                *CHECKOUT,
                iso(now),
            ),
        )
        conn.execute(
            "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
            " worker_id, state, created_at) VALUES (?, 'request', '[]', ?, ?, ?, 'accepted', ?)",
            (
                ids["K002"][0],
                iso(now + timedelta(minutes=30)),
                iso(now + timedelta(minutes=90)),
                staff["何桂兰"],
                iso(now),
            ),
        )

    await app.db.transaction(plan)


def _tile_png() -> bytes:
    """A 256-px map tile to look at: pale land, a road across, its edges drawn."""
    land, road, edge = b"\xee\xf0\xe6", b"\xff\xff\xff", b"\xc8\xcc\xc0"
    rows = []
    for y in range(256):
        if y in (0, 255):
            row = edge * 256
        elif 120 <= y < 136:
            row = edge + road * 254 + edge
        else:
            row = edge + b"".join(road if 60 <= x < 72 else land for x in range(1, 255)) + edge
        rows.append(b"\x00" + row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


TILE_PNG = _tile_png()


class TileServer:
    """A map tile server on 127.0.0.1: every /{z}/{x}/{y}.png is the same tile."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def tile(self, request: web.Request) -> web.Response:
        self.asked.append(request.path)
        return web.Response(body=TILE_PNG, content_type="image/png")

    async def __aenter__(self) -> TileServer:
        app = web.Application()
        app.router.add_get("/{z:\\d+}/{x:\\d+}/{y:\\d+}.png", self.tile)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def template(self) -> str:
        return self.origin + "/{z}/{x}/{y}.png"
