"""Export benchmark: the checklist register of 1,000,000 answers streamed into
one XLSX sheet (and a CSV file), with rows/s and the process's peak memory,
judged by peak RSS under 300 MB.

Run: python -m bench.export [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot import export
from bot.clock import iso
from bot.store import db as store_db

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
ITEMS = ["equipment", "measures", "tools", "area", "ppe", "procedures"]
TARGET_MB = 300.0


def seed(conn: sqlite3.Connection, answers: int) -> None:
    """Ten units, a hundred people, one run of six answers per person a day."""
    at = iso(NOW)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO units (id, name, path, created_at) VALUES (1, '中心', '中心', ?)", (at,)
    )
    conn.executemany(
        "INSERT INTO units (id, parent_id, name, path, created_at) VALUES (?, 1, ?, ?, ?)",
        [(u, f"部门{u}", f"中心/部门{u}", at) for u in range(2, 12)],
    )
    conn.executemany(
        "INSERT INTO staff (id, name, phone, unit_id, roles, language, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'staff', 'zh-CN', ?, ?)",
        [(s, f"员工{s}", f"+86138{s:08d}", 2 + s % 10, at, at) for s in range(1, 101)],
    )
    runs = answers // len(ITEMS)
    run_rows, answer_rows = [], []
    for run in range(1, runs + 1):
        staff = 1 + run % 100
        started = NOW - timedelta(days=run // 100 % 360, minutes=run % 100)
        run_rows.append(
            (run, staff, 2 + staff % 10, started.date().isoformat(), iso(started), iso(started))
        )
        for item in ITEMS:
            problem = run % 50 == 0 and item == "ppe"
            answer_rows.append(
                (
                    run,
                    item,
                    "problem" if problem else "ok",
                    "安全帽破损" if problem else None,
                    iso(started),
                )
            )
        if len(answer_rows) >= 60_000:
            _flush(conn, run_rows, answer_rows)
    _flush(conn, run_rows, answer_rows)
    conn.execute("COMMIT")


def _flush(
    conn: sqlite3.Connection, runs: list[tuple[object, ...]], answers: list[tuple[object, ...]]
) -> None:
    conn.executemany(
        "INSERT INTO checklist_runs (id, checklist, staff_id, unit_id, local_date, started_at,"
        " completed_at) VALUES (?, 'preshift', ?, ?, ?, ?, ?)",
        runs,
    )
    conn.executemany(
        "INSERT INTO checklist_answers (run_id, item, answer, note, answered_at)"
        " VALUES (?, ?, ?, ?, ?)",
        answers,
    )
    runs.clear()
    answers.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="30,000 answers: a smoke run")
    args = parser.parse_args()
    answers = 30_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        conn = store_db.connect(path)
        started = time.perf_counter()
        seed(conn, answers)
        print(f"seeded {answers:,} answers in {time.perf_counter() - started:.1f} s")
        source = export.Source(
            conn=conn,
            language="zh-CN",
            period=export.Period(date(2025, 1, 1), date(2026, 12, 31)),
            root_unit=None,
            default_timezone="Asia/Shanghai",
            media_dir=Path(folder) / "media",
            now=NOW,
        )
        register = export.REGISTERS["checklists"]
        for file_format in ("xlsx", "csv"):
            started = time.perf_counter()
            rows = export.export(source, register, Path(folder) / f"out.{file_format}", file_format)
            seconds = time.perf_counter() - started
            size = (Path(folder) / f"out.{file_format}").stat().st_size / 1e6
            print(
                f"{file_format}: {rows:,} rows in {seconds:.1f} s"
                f" = {rows / seconds:,.0f} rows/s, {size:.1f} MB"
            )
        conn.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "ok" if peak_mb < TARGET_MB else "OVER"
    print(f"peak RSS {peak_mb:.0f} MB (target under {TARGET_MB:.0f} MB): {verdict}")
    return 0 if peak_mb < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
