"""Watching home visits (REGULATIONS §5): a planned visit is announced to its
worker 30 minutes before it starts (with the button that checks in); with no
check-in 15 minutes after the start the worker is nudged, after 30 minutes
the supervisor is told. A visit still open after 4 hours: the worker is asked
to check out; after 6 hours the supervisor is told. Every reminder first
checks that what it chases is still undone."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Visitor
from bot.i18n import t
from bot.model import Button, Staff
from bot.store import clients, people, reminders
from bot.store.reminders import Reminder
from schedules.runner import Kind

BEFORE = timedelta(minutes=30)
NUDGE_AFTER = timedelta(minutes=15)
SUPERVISOR_AFTER = timedelta(minutes=30)
CHECKOUT_AFTER = timedelta(hours=4)
OPEN_TOO_LONG = timedelta(hours=6)


def plan_request(
    conn: sqlite3.Connection, request_id: int, starts: datetime, now: datetime
) -> None:
    """Reminders for a planned visit its worker has accepted (or that the care
    plan made). Planning twice is harmless."""
    for kind, due in (
        ("visit_upcoming", starts - BEFORE),
        ("visit_no_checkin", starts + NUDGE_AFTER),
        ("visit_missed", starts + SUPERVISOR_AFTER),
    ):
        if due > now:
            reminders.plan(
                conn,
                kind=kind,
                due_at=iso(due),
                target={"request": request_id},
                key=f"visitreq:{request_id}:{kind}",
                now=iso(now),
            )


def cancel_request(conn: sqlite3.Connection, request_id: int) -> None:
    reminders.cancel(conn, f"visitreq:{request_id}:")


def plan_open_visit(conn: sqlite3.Connection, visit_id: int, checkin: datetime) -> None:
    for kind, due in (
        ("visit_checkout_due", checkin + CHECKOUT_AFTER),
        ("visit_open_long", checkin + OPEN_TOO_LONG),
    ):
        reminders.plan(
            conn,
            kind=kind,
            due_at=iso(due),
            target={"visit": visit_id},
            key=f"visit:{visit_id}:{kind}",
            now=iso(checkin),
        )


def cancel_open_visit(conn: sqlite3.Connection, visit_id: int) -> None:
    reminders.cancel(conn, f"visit:{visit_id}:")


# -- firing ----------------------------------------------------------------------------
def _request(visitor: Visitor, reminder: Reminder) -> sqlite3.Row | None:
    """The planned visit, if it is still waiting for its check-in."""
    row: sqlite3.Row | None = visitor.conn.execute(
        "SELECT * FROM visit_requests WHERE id = ?", (int(reminder.target["request"]),)
    ).fetchone()
    if row is None or row["state"] != "accepted" or row["worker_id"] is None:
        return None
    checked_in = visitor.conn.execute(
        "SELECT 1 FROM visits WHERE request_id = ? LIMIT 1", (row["id"],)
    ).fetchone()
    return None if checked_in else row


def _who(visitor: Visitor, row: sqlite3.Row) -> tuple[Staff | None, sqlite3.Row, str]:
    worker = people.staff_by_id(visitor.conn, int(row["worker_id"]))
    client = clients.get(visitor.conn, int(row["client_id"]))
    assert client is not None
    tz = visitor.unit_timezone(int(client["unit_id"]))
    return (worker if worker and worker.active else None), client, tz


def upcoming(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    row = _request(visitor, reminder)
    if row is None:
        return False
    worker, client, tz = _who(visitor, row)
    if worker is None:
        return False
    visitor.notify(
        worker,
        "visit.upcoming",
        idempotency_key=f"visitreq:{row['id']}:upcoming",
        client=client["name"],
        address=client["address"],
        start=local_time_text(parse_iso(row["starts_at"]), tz),
        buttons=[[Button(t(worker.language, "visit.btn_checkin"), f"/visit {client['id']}")]],
    )
    return True


def no_checkin(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    row = _request(visitor, reminder)
    if row is None:
        return False
    worker, client, tz = _who(visitor, row)
    if worker is None:
        return False
    visitor.notify(
        worker,
        "visit.nudge",
        idempotency_key=f"visitreq:{row['id']}:nudge",
        client=client["name"],
        start=local_time_text(parse_iso(row["starts_at"]), tz),
        buttons=[[Button(t(worker.language, "visit.btn_checkin"), f"/visit {client['id']}")]],
    )
    return True


def missed(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    row = _request(visitor, reminder)
    if row is None:
        return False
    worker, client, tz = _who(visitor, row)
    for supervisor in people.supervisors_for_unit(visitor.conn, int(client["unit_id"])):
        visitor.notify(
            supervisor,
            "visit.missed",
            idempotency_key=f"visitreq:{row['id']}:missed:{supervisor.id}",
            client=client["name"],
            worker=worker.name if worker else "—",
            start=local_time_text(parse_iso(row["starts_at"]), tz),
        )
    return True


def _open_visit(visitor: Visitor, reminder: Reminder) -> sqlite3.Row | None:
    row: sqlite3.Row | None = visitor.conn.execute(
        "SELECT * FROM visits WHERE id = ? AND state = 'open'", (int(reminder.target["visit"]),)
    ).fetchone()
    return row


def checkout_due(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    visit = _open_visit(visitor, reminder)
    if visit is None:
        return False
    worker = people.staff_by_id(visitor.conn, int(visit["worker_id"]))
    client = clients.get(visitor.conn, int(visit["client_id"]))
    if worker is None or client is None:
        return False
    tz = visitor.unit_timezone(int(client["unit_id"]))
    visitor.notify(
        worker,
        "visit.checkout_due",
        idempotency_key=f"visit:{visit['id']}:checkout_due",
        client=client["name"],
        since=local_time_text(parse_iso(visit["checkin_at"]), tz),
        buttons=[[Button(t(worker.language, "visit.btn_checkout"), "/checkout")]],
    )
    return True


def open_long(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    visit = _open_visit(visitor, reminder)
    if visit is None:
        return False
    worker = people.staff_by_id(visitor.conn, int(visit["worker_id"]))
    client = clients.get(visitor.conn, int(visit["client_id"]))
    if client is None:
        return False
    tz = visitor.unit_timezone(int(client["unit_id"]))
    for supervisor in people.supervisors_for_unit(visitor.conn, int(client["unit_id"])):
        visitor.notify(
            supervisor,
            "visit.open_long",
            idempotency_key=f"visit:{visit['id']}:open_long:{supervisor.id}",
            client=client["name"],
            worker=worker.name if worker else "—",
            since=local_time_text(parse_iso(visit["checkin_at"]), tz),
        )
    return True


KINDS = {
    "visit_upcoming": Kind(upcoming),
    "visit_no_checkin": Kind(no_checkin),
    "visit_missed": Kind(missed),
    "visit_checkout_due": Kind(checkout_due),
    "visit_open_long": Kind(open_long),
}
