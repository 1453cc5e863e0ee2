"""Where a benchmark's PostgreSQL figures are measured: the server a URL names,
or (`--db postgresql`) a throwaway cluster in a temporary folder for the run
(tests/postgresql.py's, with PostgreSQL's own durability settings), and a fresh
database on it for each measurement."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg

THROWAWAY = "postgresql"
_numbers = itertools.count(1)


@contextlib.contextmanager
def server(target: str) -> Iterator[str]:
    """A URL on the server `target` names (a libpq URL, or THROWAWAY), for the run."""
    if target != THROWAWAY:
        yield target
        return
    from tests import postgresql

    cluster, missing = postgresql.start(durable=True)
    if cluster is None:
        raise SystemExit(missing)
    try:
        yield cluster.url("postgres")
    finally:
        cluster.stop()


@contextlib.contextmanager
def fresh(url: str) -> Iterator[str]:
    """A new, empty database on the server at `url` (its user may create databases),
    dropped afterwards; App.open migrates it."""
    name = f"bench_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
