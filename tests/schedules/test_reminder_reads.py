"""Cancelling a hazard's reminders reads that hazard's reminders, not every
pending one (both engines): a report cancels before it plans, and the table
holds thousands of pending reminders at a site."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import START

from bot import hazards as register
from bot.store import reminders
from bot.store.db import Database

OTHERS = 3000
CANCEL = (
    "UPDATE reminders SET state = 'cancelled' WHERE state = 'pending'"
    " AND idempotency_key >= ? AND idempotency_key < ?"
)


def _plan(conn: sqlite3.Connection) -> None:
    """Each hazard's three reminders, as a report plans them."""
    for hazard in range(1, OTHERS // 3 + 1):
        register.plan(conn, hazard, "general", START + timedelta(days=1), START)


def _rows_read(conn: sqlite3.Connection, prefix: str) -> list[Any]:
    """What the cancel's plan reads: on SQLite its plan's steps, on PostgreSQL
    the rows each node of the plan produced (the cancel run, then undone)."""
    params = (prefix, prefix + "\uffff")
    if getattr(conn, "engine", "sqlite") == "sqlite":
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {CANCEL}", params)]
    conn.execute("SAVEPOINT explained")
    plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {CANCEL}", params).fetchone()[0]
    conn.execute("ROLLBACK TO SAVEPOINT explained")
    counts: list[Any] = []

    def walk(node: dict[str, Any]) -> None:
        counts.append((node["Node Type"], node.get("Index Name"), node["Actual Rows"]))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return counts


async def test_a_hazards_reminders_are_cancelled_by_their_own_keys(
    db_target: Path | str,
) -> None:
    db = await Database.open(db_target)
    try:
        await db.transaction(_plan)
        read = await db.transaction(lambda conn: _rows_read(conn, "hazard:12:"))
        await db.transaction(lambda conn: reminders.cancel(conn, "hazard:12:"))
        states = await db.read(
            lambda conn: {
                row["idempotency_key"].split(":")[1]: row["state"]
                for row in conn.execute(
                    "SELECT idempotency_key, state FROM reminders WHERE state = 'cancelled'"
                    " OR idempotency_key LIKE 'hazard:1%'"
                )
            }
        )
    finally:
        await db.close()
    assert states["12"] == "cancelled"
    assert {key for key, state in states.items() if state == "cancelled"} == {"12"}
    assert states["1"] == states["120"] == states["123"] == "pending"
    if isinstance(read[0], str):  # SQLite: one search of an index on both conditions
        assert len(read) == 1 and "state=? AND idempotency_key>? AND idempotency_key<?" in read[0]
    else:  # PostgreSQL: no step of the plan came by more than the hazard's three
        assert max(rows for _, _, rows in read) <= 3, read
