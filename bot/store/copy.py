"""`frontline db copy`: a SQLite deployment moved into an empty PostgreSQL
database, whole: every table's rows with their ids (so YH/SG/ZG numbers,
conversations, the outbox and pending reminders carry on), each identity
sequence set past the copied ids, and the row counts compared table by table.
All of it in one PostgreSQL transaction: a copy that fails halfway leaves the
target as empty as it found it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bot.store import db as sqlite_db
from bot.store import dialect, postgres

# SQLite's own tables, and FTS5's (PostgreSQL searches with pg_trgm's indexes instead).
_SKIPPED_PREFIXES = ("sqlite_", "hazards_search")
# PostgreSQL's own tables, which SQLite has no counterpart of: the unit tree's
# version (migration 0021) is counted by a trigger as the copy writes the units.
POSTGRESQL_ONLY = ("unit_tree_version",)


class CopyRefused(Exception):
    """The copy did not start or did not stand; `key` is the catalog key, `params` its values."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key, params)
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class Copied:
    table: str
    rows: int


def copy(
    source: Path, target: str, *, progress: Callable[[Copied], None] | None = None
) -> list[Copied]:
    """Copy the SQLite file `source` into the PostgreSQL database `target`."""
    if not source.is_file():
        raise CopyRefused("cli.copy_no_source", path=source)
    if not dialect.is_postgresql(target):
        raise CopyRefused("cli.copy_target_not_postgresql", target=target)
    # The source is brought to the current schema first, as `frontline run` would.
    src = sqlite_db.connect(source)
    try:
        postgres.migrate_url(target)
        with psycopg.connect(target, **postgres.connection_kwargs()) as raw:
            postgres.configure(raw)
            return _copy(src, raw, progress)
    finally:
        src.close()


def _tables(src: sqlite3.Connection, raw: psycopg.Connection[Any]) -> list[str]:
    """The tables both schemas hold, parents before the tables that refer to them."""
    names = [
        str(r[0])
        for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if not str(r[0]).startswith(_SKIPPED_PREFIXES) and r[0] != "schema_version"
    ]
    present = {
        str(r[0])
        for r in raw.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    parents: dict[str, set[str]] = {}
    for name in names:
        refs = {str(r[2]) for r in src.execute(f"PRAGMA foreign_key_list({name})")}
        parents[name] = {ref for ref in refs if ref != name and ref in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:  # a cycle between tables: none in our schema, but never loop
            ready = [n for n in names if n not in ordered]
        ordered += sorted(ready)
    missing = [n for n in ordered if n not in present]
    if missing:
        raise CopyRefused("cli.copy_schema_differs", tables=", ".join(missing))
    return ordered


def _columns(raw: psycopg.Connection[Any], table: str) -> list[str]:
    return [
        str(r[0])
        for r in raw.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def _copy(
    src: sqlite3.Connection,
    raw: psycopg.Connection[Any],
    progress: Callable[[Copied], None] | None,
) -> list[Copied]:
    tables = _tables(src, raw)
    with raw.transaction():
        for table in tables:
            found = raw.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
            if found and found[0]:
                raise CopyRefused("cli.copy_target_not_empty", table=table)
        done = []
        for table in tables:
            columns = _columns(raw, table)
            stored = {str(r[1]) for r in src.execute(f"PRAGMA table_info({table})")}
            # client_workers' rowid (its order) is a column on PostgreSQL.
            wanted = [c for c in columns if c in stored or c == "rowid"]
            listed = ", ".join(wanted)
            with raw.cursor().copy(f"COPY {table} ({listed}) FROM STDIN") as out:
                for row in src.execute(f"SELECT {listed} FROM {table} ORDER BY rowid"):
                    out.write_row(tuple(row))
            _sequences_past(raw, table, columns)
            copied = Copied(table, _count(src, raw, table))
            done.append(copied)
            if progress:
                progress(copied)
    return done


def sequences_past(url: str) -> None:
    """Every table's identity sequences at `url` set past the ids it holds: for
    rows written with explicit ids outside a copy (a benchmark's seed)."""
    with psycopg.connect(url, **postgres.connection_kwargs()) as raw:
        tables = [
            str(r[0])
            for r in raw.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ]
        for table in tables:
            _sequences_past(raw, table, _columns(raw, table))


def _sequences_past(raw: psycopg.Connection[Any], table: str, columns: list[str]) -> None:
    """The next id the target hands out comes after the copied ones."""
    for column in ("id", "rowid"):
        if column not in columns:
            continue
        raw.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
            f" COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {table}"
        )


def _count(src: sqlite3.Connection, raw: psycopg.Connection[Any], table: str) -> int:
    expected = int(src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    row = raw.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    found = int(row[0]) if row else -1
    if found != expected:
        raise CopyRefused("cli.copy_count_differs", table=table, expected=expected, found=found)
    return found
