"""The audit log: who changed what, and when. Append-only."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def record(
    conn: sqlite3.Connection,
    *,
    at: str,
    actor_id: int | None,
    entity: str,
    entity_id: int,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, actor_id, entity, entity_id, action, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            at,
            actor_id,
            entity,
            entity_id,
            action,
            json.dumps(detail, ensure_ascii=False) if detail else None,
        ),
    )
