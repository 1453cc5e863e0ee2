"""Roster import benchmark: a roster at the row limit (50,000 people) imported
from CSV and from XLSX into a fresh database, each in a process of its own,
with the time and the process's peak RSS, judged by peak RSS under 160 MB;
then the CSV again into its database (everyone matched), for the record.

Run: python -m bench.roster_import [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import Workbook

from bot import roster
from bot.store.db import Database

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
HEADER = list(roster.COLUMNS)
TARGET_MB = 160.0


def people(rows: int) -> Iterator[list[str]]:
    return (
        [
            f"员工{n:06d}",
            f"139{n:08d}",
            f"物业服务中心/部门{n % 20}/班组{n % 7}",
            "员工" if n % 50 else "主管",
            "zh-CN",
            str(7_000_000 + n),
            f"user{n}",
            f"E{n:06d}",
        ]
        for n in range(rows)
    )


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(people(rows))


def write_xlsx(path: Path, rows: int) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("roster")
    sheet.append(HEADER)
    for row in people(rows):
        sheet.append(row)
    workbook.save(path)


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


async def import_once(path: Path) -> int:
    """Import one file into the database beside it; print and judge the figures."""
    before = peak_rss_mb()
    db = await Database.open(path.with_name("frontline.db"))
    try:
        started = time.perf_counter()
        result = await roster.import_roster_file(
            db, path, deactivate_missing=False, default_language="zh-CN", now=NOW
        )
        seconds = time.perf_counter() - started
    finally:
        await db.close()
    rss = peak_rss_mb()
    print(
        f"{path.suffix[1:]} ({path.stat().st_size / 2**20:.1f} MB):"
        f" {result.created} added, {result.updated} updated in {seconds:.1f} s;"
        f" peak RSS {rss:.0f} MB ({before:.0f} MB before the import),"
        f" target < {TARGET_MB:.0f} MB: ratio {rss / TARGET_MB:.2f}"
    )
    return 0 if rss < TARGET_MB else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=roster.MAX_ROWS)
    parser.add_argument("--quick", action="store_true", help="5,000 rows, for a smoke run")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # the child's file
    args = parser.parse_args()
    if args.one:
        return asyncio.run(import_once(args.one))
    rows = 5_000 if args.quick else args.rows
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, xlsx_path = Path(tmp) / "new" / "roster.csv", Path(tmp) / "xlsx" / "roster.xlsx"
        for path, write in ((csv_path, write_csv), (xlsx_path, write_xlsx)):
            path.parent.mkdir()
            write(path, rows)
        # Each in a process of its own, so that its peak RSS is the import's alone.
        for path in (csv_path, xlsx_path):
            child = [sys.executable, "-m", "bench.roster_import", "--one", str(path)]
            failed |= subprocess.run(child, check=False).returncode
        # For the record, not judged: the CSV again, everyone matched and kept (the
        # store holds each matched person's stored row until the import is applied).
        subprocess.run([*child[:-1], str(csv_path)], check=False)
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
