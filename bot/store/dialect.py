"""Where SQLite's SQL and PostgreSQL's differ, written once. The store's queries are
written for SQLite; on PostgreSQL each one is translated here, once per distinct
text (cached), and the schema's migrations the same way (or replaced by a
PostgreSQL variant, `NNNN_name.postgresql.sql`, where a translation makes no sense).
Nothing outside this module spells a difference between the two."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar, cast

T = TypeVar("T")

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def is_postgresql(target: object) -> bool:
    """A libpq URL selects PostgreSQL; anything else is a SQLite file."""
    return isinstance(target, str) and target.startswith(POSTGRESQL_SCHEMES)


def engine_of(conn: Any) -> str:
    """'postgresql' for the PostgreSQL adapters (bot/store/postgres.py), else 'sqlite'."""
    return str(getattr(conn, "engine", "sqlite"))


# -- queries ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Translated:
    sql: str
    returns_id: bool  # `RETURNING id` was added, so the cursor's lastrowid can be read
    # The statement with PostgreSQL's own placeholders ($1, $2, ...), for PREPARE.
    numbered: str = ""
    placeholders: int = 0


_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+(IGNORE|REPLACE)\s+)?INTO\s+(\w+)", re.I)
_INDEXED_BY = re.compile(r"\s+INDEXED\s+BY\s+\w+", re.I)
# SQLite's LIKE ignores ASCII case; PostgreSQL's does not.
_LIKE = re.compile(r"\bLIKE\b", re.I)
_GROUP_CONCAT = re.compile(r"\bGROUP_CONCAT\s*\(", re.I)
# SQLite's CROSS JOIN … ON fixes the join order (a planner hint); PostgreSQL knows only JOIN … ON.
_CROSS_JOIN_ON = re.compile(r"\bCROSS\s+JOIN\s+(\w+)((?:\s+AS)?\s+(?!ON\b)\w+)?\s+ON\b", re.I)
# SQLite's `a IS ?` is equality that holds for NULLs too: PostgreSQL spells it out.
_IS_NOT_PARAM = re.compile(r"\bIS\s+NOT\s+\?", re.I)
_IS_PARAM = re.compile(r"\bIS\s+\?", re.I)
_CHAR = re.compile(r"\bchar\s*\(", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)


def remember(conn: Any, table: str, key: object, read: Callable[[], T]) -> T:
    """`read()` of `table`, remembered under `key` for the rest of the transaction
    where the engine keeps reads (PostgreSQL's Connection.remembered, each
    table's forgotten whenever that table is written): one event asks for the
    same unit's chain, or the same person, several times, a round trip each
    there. SQLite reads in-process: nothing to save."""
    memo = getattr(conn, "remembered", None)
    if memo is None:
        return read()
    kept = memo.setdefault(table, {})
    if key not in kept:
        kept[key] = read()
    return cast(T, kept[key])


def keeping(conn: Any, table: str) -> Callable[[object, object], None]:
    """keep() for a read of `table` asked now (ahead) whose rows come later: what
    it brings is kept under its key only if the transaction has not written
    `table` in between (a write forgets the table's reads, and these were read
    before it)."""
    memo = getattr(conn, "remembered", None)
    if memo is None:
        return lambda key, value: None
    kept = memo.setdefault(table, {})

    def keep_one(key: object, value: object) -> None:
        if memo.get(table) is kept:
            kept.setdefault(key, value)

    return keep_one


def remembers(conn: Any) -> bool:
    """Whether the engine keeps reads for the transaction (remember(), keep()):
    a read asked only to be kept is worth asking there, not on SQLite."""
    return getattr(conn, "remembered", None) is not None


# PostgreSQL's count of changes to the unit tree (migration 0021), which each
# transaction reads with its BEGIN (bot/store/postgres.py).
TREE_VERSION = "SELECT COALESCE(MAX(n), 0) AS n FROM unit_tree_version"


def units_at_tree_version(columns: str) -> str:
    """Every unit's `columns` (of `u`) and, last, the tree's version they are
    (`version`), in one statement: one snapshot at any isolation level. With no
    units, one row of NULLs beside the version."""
    return f"SELECT {columns}, v.n AS version FROM ({TREE_VERSION}) v LEFT JOIN units u ON 1 = 1"


def unit_tree(conn: Any, load: Callable[[Any], tuple[int, T]]) -> T | None:
    """The unit tree as `conn`'s transaction sees it, where the engine keeps a copy
    for the process (PostgreSQL: Connection.unit_tree, checked against the tree's
    version in the transaction's first round trip); `load(conn)` reads it with
    its version when the copy is not that version. None where no copy is kept
    (SQLite reads in-process) or the transaction has changed units itself:
    read the units."""
    shared = getattr(conn, "unit_tree", None)
    return None if shared is None else cast("T | None", shared(load))


async def unit_tree_async(conn: Any, load: Callable[[Any], Awaitable[tuple[int, T]]]) -> T | None:
    """unit_tree() for the desk's asynchronous reads (PostgreSQL:
    AsyncConnection.unit_tree, against the version read with the read
    transaction's first statement); None: read the units."""
    shared = getattr(conn, "unit_tree", None)
    return None if shared is None else cast("T | None", await shared(load))


def ahead(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The cursor of a read whose rows are wanted later in the transaction: sent
    with its next round trip where the engine sends statements ahead
    (PostgreSQL: Connection.ahead), at once where reads are in-process (SQLite)."""
    send = getattr(conn, "ahead", None)
    return send(sql, params) if send is not None else conn.execute(sql, params)


def keep(conn: Any, table: str, key: object, value: object) -> None:
    """What remember() would read of `table` under `key`, known already (a row
    just written with RETURNING, a person just read with their conversation)."""
    memo = getattr(conn, "remembered", None)
    if memo is not None:
        memo.setdefault(table, {})[key] = value


def _split_literals(sql: str) -> list[tuple[bool, str]]:
    """The text cut into (is_literal, piece): quoted strings and identifiers are kept
    whole, so that nothing below rewrites what is inside them."""
    pieces: list[tuple[bool, str]] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        quote = sql[i]
        if quote in "'\"":
            if start < i:
                pieces.append((False, sql[start:i]))
            j = i + 1
            while j < n:
                if sql[j] == quote:
                    if j + 1 < n and sql[j + 1] == quote:  # '' inside a string
                        j += 2
                        continue
                    break
                j += 1
            pieces.append((True, sql[i : j + 1]))
            i = start = j + 1
            continue
        i += 1
    if start < n:
        pieces.append((False, sql[start:]))
    return pieces


def _outside_literals(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """Each character from `start` outside quoted literals, with its index and
    its parenthesis depth (a `(` counted after itself, a `)` before)."""
    depth, quote = 0, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
            continue
        if ch == ")":
            depth -= 1
        yield i, ch, depth
        if ch == "(":
            depth += 1


def _closing(sql: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at `open_at` (outside literals)."""
    for i, ch, depth in _outside_literals(sql, open_at):
        if ch == ")" and depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses in {sql!r}")


def _top_level_comma(text: str) -> int:
    for i, ch, depth in _outside_literals(text):
        if ch == "," and depth == 0:
            return i
    return -1


def _group_concat(sql: str) -> str:
    """GROUP_CONCAT(x[, sep]) -> string_agg(x, sep): ',' is SQLite's default separator."""
    while match := _GROUP_CONCAT.search(sql):
        open_at = match.end() - 1
        close_at = _closing(sql, open_at)
        inner = sql[open_at + 1 : close_at]
        comma = _top_level_comma(inner)
        value, separator = (inner, "','") if comma < 0 else (inner[:comma], inner[comma + 1 :])
        value = value.strip()
        distinct = ""
        if value.upper().startswith("DISTINCT "):
            distinct, value = "DISTINCT ", value[len("DISTINCT ") :].strip()
        sql = (
            f"{sql[: match.start()]}string_agg({distinct}({value})::text, {separator.strip()})"
            + sql[close_at + 1 :]
        )
    return sql


def _code(sql: str) -> str:
    """The text without its quoted strings and identifiers."""
    return " ".join(piece for literal, piece in _split_literals(sql) if not literal)


def _outside(sql: str, fn: Any) -> str:
    return "".join(piece if literal else fn(piece) for literal, piece in _split_literals(sql))


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> Translated:
    """One SQLite statement as PostgreSQL runs it, with psycopg's placeholders."""
    text = _outside(sql, lambda s: _INDEXED_BY.sub("", s))
    text = _outside(text, lambda s: _LIKE.sub("ILIKE", s))
    text = _outside(text, lambda s: _CHAR.sub("chr(", s))
    text = _outside(text, lambda s: _IS_NOT_PARAM.sub("IS DISTINCT FROM ?", s))
    text = _outside(text, lambda s: _IS_PARAM.sub("IS NOT DISTINCT FROM ?", s))
    text = _outside(text, lambda s: _CROSS_JOIN_ON.sub(lambda m: f"JOIN {m[1]}{m[2] or ''} ON", s))
    text = _group_concat(text)
    returns_id = False
    insert = _INSERT.match(text)
    if insert:
        conflict = (insert.group(2) or "").upper()
        if conflict:
            text = text[: insert.start(1)] + text[insert.end(1) :]
            if conflict == "IGNORE":
                text = _before_returning(text, " ON CONFLICT DO NOTHING")
            else:
                raise ValueError("INSERT OR REPLACE has no translation; write an upsert")
        if insert.group(3).lower() in tables_with_id() and not _RETURNING.search(_code(text)):
            text += " RETURNING id"
            returns_id = True
    # psycopg's placeholders: '?' becomes '%s'; a literal '%' is written '%%'.
    pieces = []
    numbered = []
    count = 0
    for literal, piece in _split_literals(text):
        if literal:
            numbered.append(piece)
        else:
            parts = piece.split("?")
            numbered.append(parts[0])
            for part in parts[1:]:
                count += 1
                numbered.append(f"${count}{part}")
        piece = piece.replace("%", "%%")
        pieces.append(piece if literal else piece.replace("?", "%s"))
    return Translated("".join(pieces), returns_id, "".join(numbered), count)


def _before_returning(sql: str, clause: str) -> str:
    match = _RETURNING.search(sql)
    if match is None:
        return sql + clause
    return sql[: match.start()] + clause.strip() + " " + sql[match.start() :]


# -- the schema ---------------------------------------------------------------------------
_ID_COLUMN = re.compile(r"^\s*id\s+INTEGER\s+PRIMARY\s+KEY\b", re.I | re.M)
_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(\w+)\s*\((.*?)\n\);", re.I | re.S)


@functools.cache
def tables_with_id() -> frozenset[str]:
    """Tables whose `id INTEGER PRIMARY KEY` SQLite fills in itself: on PostgreSQL an
    identity column, read back with RETURNING for the cursor's lastrowid."""
    found = set()
    for entry in resources.files("bot.store.migrations").iterdir():
        if entry.name.endswith(".sql"):
            for name, body in _CREATE_TABLE.findall(entry.read_text(encoding="utf-8")):
                if _ID_COLUMN.search(body):
                    found.add(name.lower())
    return frozenset(found)


_TYPES = [
    # SQLite fills in an INTEGER PRIMARY KEY named id; PostgreSQL's identity column
    # does the same and still takes an id given (`frontline db copy` keeps them).
    (
        re.compile(r"\bid\s+INTEGER\s+PRIMARY\s+KEY\b", re.I),
        "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    # SQLite's INTEGER is 64 bits, PostgreSQL's 32; its REAL is 64 bits, PostgreSQL's 32.
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\bAUTOINCREMENT\b", re.I), ""),
]
# Ordered by rowid, which PostgreSQL has not: a column of that name in their place.
ROWID_TABLES = frozenset({"client_workers"})


def translate_schema(statement: str) -> str:
    """One migration statement (a CREATE, ALTER, DROP or UPDATE) for PostgreSQL."""
    text = statement
    if re.match(r"^\s*PRAGMA\b", text, re.I):
        return ""
    if re.match(r"^\s*CREATE\s+TABLE", text, re.I):
        for pattern, replacement in _TYPES:
            text = pattern.sub(replacement, text)
        name = re.match(r"^\s*CREATE\s+TABLE\s+(\w+)", text, re.I)
        if name and name.group(1).lower() in ROWID_TABLES:
            text = text.rstrip().removesuffix(")") + (
                ",\n    rowid BIGINT GENERATED ALWAYS AS IDENTITY\n)"
            )
        return text
    if re.match(r"^\s*ALTER\s+TABLE", text, re.I):
        for pattern, replacement in _TYPES[1:]:
            text = pattern.sub(replacement, text)
        return text
    return text


_REFERENCES = re.compile(r"\bREFERENCES\s+(\w+)", re.I)
_TABLE_NAME = re.compile(r"^\s*CREATE\s+TABLE\s+(\w+)", re.I)


def order_tables(statements: list[str]) -> list[str]:
    """SQLite lets a table refer to one created further down the same migration;
    PostgreSQL wants it to exist: such a table's CREATE moves up before its first user."""
    ordered = list(statements)
    moved = True
    while moved:
        moved = False
        created = {
            m.group(1).lower(): i for i, st in enumerate(ordered) if (m := _TABLE_NAME.match(st))
        }
        for i, statement in enumerate(ordered):
            name = _TABLE_NAME.match(statement)
            if not name:
                continue
            for target in _REFERENCES.findall(statement):
                later = created.get(target.lower())
                if later is not None and later > i:
                    ordered.insert(i, ordered.pop(later))
                    moved = True
                    break
            if moved:
                break
    return ordered


# Run before the migrations on every start (each one idempotent): trigram search.
# A count of the rows meeting a condition is written COUNT(CASE WHEN … THEN 1 END)
# on both engines: PostgreSQL has no SUM over a comparison (SQLite adds them up
# as 0 and 1), and an aggregate of our own for it ran a SQL function per row, two
# thirds of the time of Today's count of open hazards; databases made before keep it, unused.
PRELUDE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
]


# -- who holds a role ------------------------------------------------------------------------
def has_role(engine: str, role: str) -> tuple[str, str]:
    """The condition that `s` (staff) holds `role`, and its parameter. `roles` is
    a comma-separated list. SQLite: a LIKE over the whole table; PostgreSQL: the
    array containment that its index (migration 0020) serves."""
    if engine == "postgresql":
        return "string_to_array(s.roles, ',') @> ARRAY[?]", role
    return "(',' || s.roles || ',') LIKE ?", f"%,{role},%"


# -- the hazard register's search --------------------------------------------------------
def hazard_search(engine: str, terms: list[str], fts_phrase: Any) -> tuple[list[str], list[str]]:
    """SQL conditions and their parameters finding hazards whose description or place
    holds every term (three characters or more). SQLite: FTS5's trigram index;
    PostgreSQL: pg_trgm's GIN indexes under ILIKE, one condition per term (ILIKE ALL
    cannot use the index). A term without letters that have a case (Chinese, digits)
    is matched by plain LIKE (`~~`, which the translation leaves as it is): the same
    rows, at a third of ILIKE's cost over the rows that the index does not rule out."""
    if not terms:
        return [], []
    if engine == "postgresql":
        conditions, params = [], []
        for term in terms:
            needle = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            like = "~~" if term.lower() == term == term.upper() else "ILIKE"
            # h.place bare (not COALESCEd), so that its trigram index serves it; the
            # backslash is PostgreSQL's escape in a pattern unless told otherwise.
            conditions.append(f"(h.description {like} ? OR h.place {like} ?)")
            params += [needle, needle]
        return conditions, params
    return (
        ["h.id IN (SELECT rowid FROM hazards_search WHERE hazards_search MATCH ?)"],
        [" AND ".join(fts_phrase(term) for term in terms)],
    )


# -- the visits export ----------------------------------------------------------------------
def visit_notes_json(engine: str) -> str:
    """A subquery giving visit `v`'s notes, in the order written, as one JSON list (text)."""
    if engine == "postgresql":
        return (
            "SELECT COALESCE(json_agg(json_build_object('kind', n.kind,"
            " 'unusual', n.unusual_kind, 'text', n.text, 'photo', n.photo,"
            " 'readings', n.readings::json, 'at', n.at, 'hazard', h.number) ORDER BY n.id),"
            " '[]')::text FROM visit_notes n LEFT JOIN hazards h ON h.id = n.hazard_id"
            " WHERE n.visit_id = v.id"
        )
    return (
        "SELECT json_group_array(json(note)) FROM (SELECT json_object('kind', n.kind,"
        " 'unusual', n.unusual_kind, 'text', n.text, 'photo', n.photo,"
        " 'readings', json(n.readings), 'at', n.at, 'hazard', h.number) AS note"
        " FROM visit_notes n LEFT JOIN hazards h ON h.id = n.hazard_id"
        " WHERE n.visit_id = v.id ORDER BY n.id)"
    )
