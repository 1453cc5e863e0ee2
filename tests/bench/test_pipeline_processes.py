"""bench/pipeline.py's PostgreSQL path: several processes, each driving its own
share of the people on one database, leave the registers exactly as SQLite's
single process does (every check completed, every answer and hazard filed,
every reply queued once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import pipeline
from tests.postgresql import Cluster

PEOPLE = 6


async def test_two_processes_on_postgresql_leave_what_one_sqlite_process_leaves(
    postgresql_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])  # the children run `python -m bench.pipeline`
    on_sqlite = await pipeline.run(PEOPLE, concurrency=2)
    url = postgresql_cluster.fresh()
    try:
        on_postgresql = await pipeline.run_postgresql(url, PEOPLE, concurrency=2, processes=2)
    finally:
        postgresql_cluster.drop(url)

    wanted = {**pipeline.expected(PEOPLE), "outbox_rows": int(on_sqlite["outbox_rows"])}
    assert pipeline.check("sqlite", on_sqlite, wanted)
    assert pipeline.check("postgresql, 2 processes", on_postgresql, wanted)
    assert wanted["hazards"] == PEOPLE // 2 * 3
