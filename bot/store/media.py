"""Which channel file ids stand for which stored media file."""

from __future__ import annotations

import sqlite3


def remember(conn: sqlite3.Connection, channel: str, file_id: str, path: str, now: str) -> None:
    conn.execute(
        "INSERT INTO media_refs (channel, file_id, path, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (channel, file_id) DO NOTHING",
        (channel, file_id, path, now),
    )


def file_id_for(conn: sqlite3.Connection, channel: str, path: str) -> str | None:
    row = conn.execute(
        "SELECT file_id FROM media_refs WHERE channel = ? AND path = ? LIMIT 1", (channel, path)
    ).fetchone()
    return row["file_id"] if row else None
