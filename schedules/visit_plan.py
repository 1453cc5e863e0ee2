"""Regular home visits (REGULATIONS §5): a client's care plan names visit
times ('周一 09:00，周四 14:30-15:30'); the planner turns them into planned
visits for today and tomorrow, in the client's local time, for the client's
first active assigned worker, and keeps those plans in line with the care
plan. It reads and writes through the store only."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.clock import iso, local_date
from bot.store import clients, people
from bot.visit_times import DAY_NAMES, VisitTime, VisitTimeError, parse_visit_times
from schedules.visits import plan_request

log = logging.getLogger(__name__)

PLAN_DAYS = 2  # today and tomorrow, in each client's local time


def regular_visits(
    times: tuple[VisitTime, ...], timezone: str, now: datetime, days: int = PLAN_DAYS
) -> list[tuple[datetime, datetime]]:
    """(start, end) of the visits still ahead on the next `days` local days, in order."""
    today = local_date(now, timezone)
    planned: set[tuple[datetime, datetime]] = set()
    for day in (today + timedelta(days=n) for n in range(days)):
        for visit in times:
            starts = visit.starts_on(day, timezone)
            if starts is not None and starts > now:
                planned.add((starts, starts + visit.length))
    return sorted(planned)


def make_planner(default_timezone: str) -> Callable[..., int]:
    def plan(conn: sqlite3.Connection, *, now: datetime) -> int:
        """Planned visits (and their reminders) for every active client's regular
        visit times today and tomorrow; plans a changed care plan no longer
        holds are cancelled. Returns how many visits were planned."""
        planned = 0
        ahead = clients.regular_ahead(conn, iso(now))
        timezones: dict[int, str] = {}
        for client in clients.with_visit_times(conn):
            client_id = int(client["id"])
            unit_id = int(client["unit_id"])
            if unit_id not in timezones:
                timezones[unit_id] = people.unit_timezone(conn, unit_id, default_timezone)
            wanted = _wanted(conn, client, timezones[unit_id], now)
            services = clients.plan(client)
            keep: set[tuple[int, str]] = set()
            for worker_id, starts, ends in wanted:
                keep.add((worker_id, iso(starts)))
                request_id = clients.plan_regular(
                    conn,
                    client_id=client_id,
                    worker_id=worker_id,
                    services=services,
                    starts_at=iso(starts),
                    ends_at=iso(ends),
                    now=iso(now),
                )
                if request_id is not None:
                    plan_request(conn, request_id, starts, now)
                    planned += 1
            stale = [
                int(row["id"])
                for row in ahead.pop(client_id, [])
                if (int(row["worker_id"] or 0), row["starts_at"]) not in keep
            ]
            clients.cancel_regular(conn, stale)
        # Whatever is left belongs to clients no longer active or visited regularly.
        clients.cancel_regular(conn, [int(row["id"]) for rows in ahead.values() for row in rows])
        return planned

    return plan


def _wanted(
    conn: sqlite3.Connection, client: sqlite3.Row, timezone: str, now: datetime
) -> list[tuple[int, datetime, datetime]]:
    """The client's regular visits ahead: (worker id, start, end)."""
    try:
        times = parse_visit_times(str(client["visit_times"]))
    except VisitTimeError:
        # The import refuses such text; a row written some other way is skipped.
        log.warning("unreadable visit times client=%s", client["id"])
        return []
    worker_id = clients.first_worker(conn, int(client["id"]))
    if worker_id is None:
        return []
    return [(worker_id, starts, ends) for starts, ends in regular_visits(times, timezone, now)]


__all__ = [
    "DAY_NAMES",
    "VisitTime",
    "VisitTimeError",
    "make_planner",
    "parse_visit_times",
    "regular_visits",
]
