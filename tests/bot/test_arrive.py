"""An event's first read, who is behind a channel identity and where their
conversation stands, in one query: what people.identify and
conversations.load give one after the other (both engines)."""

from __future__ import annotations

import sqlite3

from conftest import START

from bot.app import App
from bot.clock import iso
from bot.store import conversations, people


async def test_arrive_is_identify_then_load(app: App, org: dict[str, int]) -> None:
    now = iso(START)

    def read(conn: sqlite3.Connection) -> list[tuple[object, object]]:
        people.bind_identity(conn, "telegram", "1001", org["张伟"], now)
        people.bind_identity(conn, "telegram", "1002", org["刘强"], now)
        talking = conversations.load(conn, org["刘强"])
        talking.flow, talking.step, talking.data = "hazard", "describe", {"photos": ["a"]}
        conversations.save(conn, talking, now)
        pairs = []
        for user_id in ("1001", "1002", "nobody"):
            found = people.identify(conn, "telegram", user_id)
            apart = (found, conversations.load(conn, found.staff.id)) if found else None
            pairs.append((conversations.arrive(conn, "telegram", user_id), apart))
        return pairs

    pairs = await app.db.transaction(read)
    for together, apart in pairs:
        assert together == apart
    assert pairs[1][0] is not None and pairs[1][0][1].flow == "hazard"
    assert pairs[0][0] is not None and pairs[0][0][1].flow == ""
    assert pairs[2][0] is None
