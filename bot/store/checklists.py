"""Checklist runs and their answers: the register of every check done.
Corrections are new runs pointing at the run they redo; nothing is rewritten."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.store import audit


def start_run(
    conn: sqlite3.Connection,
    *,
    checklist: str,
    staff_id: int,
    unit_id: int,
    local_date: str,
    redo_of: int | None,
    now: str,
) -> int:
    cursor = conn.execute(
        "INSERT INTO checklist_runs (checklist, staff_id, unit_id, local_date, redo_of, started_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (checklist, staff_id, unit_id, local_date, redo_of, now),
    )
    run_id = int(cursor.lastrowid or 0)
    audit.record(
        conn,
        at=now,
        actor_id=staff_id,
        entity="checklist_run",
        entity_id=run_id,
        action="started",
        detail={"checklist": checklist, "redo_of": redo_of}
        if redo_of
        else {"checklist": checklist},
    )
    return run_id


def record_answer(
    conn: sqlite3.Connection,
    *,
    run_id: int,
    item: str,
    answer: str,
    note: str | None,
    hazard_id: int | None,
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO checklist_answers (run_id, item, answer, note, hazard_id, answered_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (run_id, item, answer, note, hazard_id, now),
    )


def answers(conn: sqlite3.Connection, run_id: int) -> Sequence[sqlite3.Row]:
    return conn.execute(
        "SELECT item, answer, note, hazard_id FROM checklist_answers WHERE run_id = ? ORDER BY id",
        (run_id,),
    ).fetchall()


def answers_with_numbers(conn: sqlite3.Connection, run_id: int) -> Sequence[sqlite3.Row]:
    """answers(), each with its hazard's register number (`number`, None for an
    answer that filed none), in one read."""
    return conn.execute(
        "SELECT a.item, a.answer, a.note, a.hazard_id, h.number FROM checklist_answers a"
        " LEFT JOIN hazards h ON h.id = a.hazard_id WHERE a.run_id = ? ORDER BY a.id",
        (run_id,),
    ).fetchall()


def complete_run(conn: sqlite3.Connection, run_id: int, staff_id: int, now: str) -> None:
    conn.execute("UPDATE checklist_runs SET completed_at = ? WHERE id = ?", (now, run_id))
    audit.record(
        conn,
        at=now,
        actor_id=staff_id,
        entity="checklist_run",
        entity_id=run_id,
        action="completed",
    )


def cancel_run(conn: sqlite3.Connection, run_id: int, staff_id: int, now: str) -> None:
    conn.execute(
        "UPDATE checklist_runs SET cancelled_at = ? WHERE id = ? AND completed_at IS NULL",
        (now, run_id),
    )
    audit.record(
        conn,
        at=now,
        actor_id=staff_id,
        entity="checklist_run",
        entity_id=run_id,
        action="cancelled",
    )


def latest_completed(
    conn: sqlite3.Connection, staff_id: int, checklist: str, since_local_date: str
) -> sqlite3.Row | None:
    """The person's latest completed run of a checklist on or after a local date."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, local_date, completed_at FROM checklist_runs WHERE staff_id = ?"
        " AND checklist = ? AND local_date >= ? AND completed_at IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (staff_id, checklist, since_local_date),
    ).fetchone()
    return row


def completed_on(
    conn: sqlite3.Connection, checklist: str, staff_ids: list[int], local_date: str
) -> dict[int, list[str]]:
    """Who of `staff_ids` completed `checklist` on a local date, with the items
    they reported problems on (latest run of the day counts)."""
    if not staff_ids:
        return {}
    marks = ",".join("?" * len(staff_ids))
    runs = conn.execute(
        f"SELECT staff_id, MAX(id) AS run FROM checklist_runs WHERE checklist = ?"
        f" AND local_date = ? AND completed_at IS NOT NULL AND staff_id IN ({marks})"
        " GROUP BY staff_id",
        (checklist, local_date, *staff_ids),
    ).fetchall()
    done: dict[int, list[str]] = {}
    for row in runs:
        problems = conn.execute(
            "SELECT item FROM checklist_answers WHERE run_id = ? AND answer = 'problem'"
            " ORDER BY id",
            (row["run"],),
        ).fetchall()
        done[int(row["staff_id"])] = [p["item"] for p in problems]
    return done
