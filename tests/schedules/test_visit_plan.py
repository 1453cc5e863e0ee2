"""Regular home visits as a care worker and a centre see them: the care plan's
visit times become planned visits for today and tomorrow, once, with their
reminders, and a changed care plan moves them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import START
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.clients import import_clients_file
from bot.clock import FakeClock
from schedules.visit_plan import (
    VisitTime,
    VisitTimeError,
    make_planner,
    parse_visit_times,
    regular_visits,
)

HEADER = "客户编号,姓名,地址,纬度,经度,服务中心,服务项目,上门时间,护理员"
CENTRE = "物业服务中心/长者服务中心/上门服务组"
HOUR = timedelta(hours=1)
EVERY_DAY = frozenset(range(7))


# --- reading visit times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("周一 09:00", (VisitTime(frozenset({0}), time(9), HOUR),)),
        (
            "周一 09:00，周四 14:30-15:15",
            (
                VisitTime(frozenset({0}), time(9), HOUR),
                VisitTime(frozenset({3}), time(14, 30), timedelta(minutes=45)),
            ),
        ),
        (
            "Mon 09:00, Thu 14:30",
            (VisitTime(frozenset({0}), time(9)), VisitTime(frozenset({3}), time(14, 30))),
        ),
        ("每天 10:00", (VisitTime(EVERY_DAY, time(10)),)),
        ("daily 10:00-11:30", (VisitTime(EVERY_DAY, time(10), timedelta(minutes=90)),)),
        ("星期日８：００", (VisitTime(frozenset({6}), time(8)),)),  # full-width, no space
        ("周二、周五 15:00", (VisitTime(frozenset({1, 4}), time(15)),)),
        ("mon-fri 7:30", (VisitTime(frozenset(range(5)), time(7, 30)),)),
        (
            "周六至周一 9:00 到 9:30",
            (VisitTime(frozenset({5, 6, 0}), time(9), timedelta(minutes=30)),),
        ),
    ],
)
def test_visit_times_in_chinese_and_english(text: str, expected: tuple[VisitTime, ...]) -> None:
    assert parse_visit_times(text) == expected


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("周八 09:00", "周八 09:00"),
        ("周一 25:00", "周一 25:00"),
        ("周一 09:60", "周一 09:60"),
        ("09:00", "09:00"),
        ("周一 10:00-09:00", "周一 10:00-09:00"),
        ("周一 09:00，周四", "周四"),
        ("sometimes", "sometimes"),
    ],
)
def test_unreadable_visit_times_name_the_piece(text: str, fault: str) -> None:
    with pytest.raises(VisitTimeError) as caught:
        parse_visit_times(text)
    assert caught.value.text == fault


@given(st.text(max_size=40))
def test_any_text_is_read_or_refused_with_a_piece_of_it(text: str) -> None:
    try:
        parse_visit_times(text)
    except VisitTimeError as error:
        assert error.text.strip() and error.text in text


def test_regular_visits_skip_what_has_begun() -> None:
    times = parse_visit_times("每天 09:00-09:30，周六 08:00")
    # Friday 09:00 in Shanghai: today's 09:00 has begun, Saturday has both.
    assert regular_visits(times, "Asia/Shanghai", START) == [
        (datetime(2026, 11, 28, 0, tzinfo=UTC), datetime(2026, 11, 28, 1, tzinfo=UTC)),
        (datetime(2026, 11, 28, 1, tzinfo=UTC), datetime(2026, 11, 28, 1, 30, tzinfo=UTC)),
    ]


# --- the planner ------------------------------------------------------------------------


async def import_clients(
    app: App, tmp_path: Path, rows: list[str], *, deactivate_missing: bool = False
) -> None:
    path = tmp_path / "clients.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    await import_clients_file(app.db, path, deactivate_missing=deactivate_missing, now=START)


def row(number: str, name: str, times: str, workers: str, services: str = "助餐") -> str:
    return (
        f'{number},{name},上海市黄浦区{name}家,31.23,121.47,{CENTRE},{services},"{times}",{workers}'
    )


async def planned(app: App) -> list[tuple[Any, ...]]:
    """Every planned visit: (client number, worker, start, end, services, state)."""
    found = await app.db.read(
        lambda conn: conn.execute(
            "SELECT c.number, s.name, r.starts_at, r.ends_at, r.services, r.state, r.origin"
            " FROM visit_requests r JOIN clients c ON c.id = r.client_id"
            " JOIN staff s ON s.id = r.worker_id ORDER BY r.starts_at, c.number, s.name"
        ).fetchall()
    )
    assert {r["origin"] for r in found} <= {"regular"}
    return [(r[0], r[1], r[2][:16], r[3][:16], json.loads(r[4]), r[5]) for r in found]


async def plan(app: App) -> int:
    return await app.db.transaction(
        lambda conn: make_planner("Asia/Shanghai")(conn, now=app.engine.clock.now())
    )


async def test_todays_and_tomorrows_regular_visits_are_planned_once_with_reminders(
    app: App, org: dict[str, int], person: Any, clock: FakeClock, tmp_path: Path
) -> None:
    await import_clients(
        app,
        tmp_path,
        [
            row("K1", "王桂芳", "每天 10:00", "马秀英", "助餐、用药提醒"),
            row("K2", "李德明", "周六 09:00-10:30", "何桂兰、马秀英", "bathing"),
            row("K3", "陈秀珍", "每天 08:00", "E013"),
            row("K4", "张文华", "", "马秀英"),
            row("K5", "赵阿婆", "周一 09:00", "13800000014"),
        ],
    )
    ma, he = await person("马秀英"), await person("何桂兰")

    # The app's own planners include the regular visits.
    await app.scheduler.plan()
    expected = [
        ("K3", "马秀英", "2026-11-28T00:00", "2026-11-28T01:00", ["meal"], "accepted"),
        ("K2", "何桂兰", "2026-11-28T01:00", "2026-11-28T02:30", ["bathing"], "accepted"),
        (
            "K1",
            "马秀英",
            "2026-11-27T02:00",
            "2026-11-27T03:00",
            ["meal", "medication"],
            "accepted",
        ),
        (
            "K1",
            "马秀英",
            "2026-11-28T02:00",
            "2026-11-28T03:00",
            ["meal", "medication"],
            "accepted",
        ),
    ]
    assert sorted(await planned(app)) == sorted(expected)
    assert await plan(app) == 0  # again: nothing new
    assert sorted(await planned(app)) == sorted(expected)

    kinds = await app.db.read(
        lambda conn: conn.execute(
            "SELECT kind, due_at FROM reminders WHERE idempotency_key LIKE 'visitreq:%'"
            " ORDER BY due_at, kind"
        ).fetchall()
    )
    assert [(k, d[:16]) for k, d in kinds][:3] == [
        ("visit_upcoming", "2026-11-27T01:30"),
        ("visit_no_checkin", "2026-11-27T02:15"),
        ("visit_missed", "2026-11-27T02:30"),
    ]
    assert len(kinds) == 3 * 4

    clock.set(datetime(2026, 11, 27, 1, 30, tzinfo=UTC))  # 09:30 in Shanghai
    await app.scheduler.tick()
    told = await ma.replies()
    assert len(told) == 1 and "王桂芳" in told[0] and "10:00" in told[0]
    assert await he.replies() == []


async def test_a_changed_care_plan_moves_the_regular_visits(
    app: App, org: dict[str, int], person: Any, clock: FakeClock, tmp_path: Path
) -> None:
    await import_clients(app, tmp_path, [row("K1", "王桂芳", "每天 10:00", "马秀英")])
    ma, he = await person("马秀英"), await person("何桂兰")
    assert await plan(app) == 2

    # Another worker: hers are cancelled, the new worker's are planned.
    await import_clients(app, tmp_path, [row("K1", "王桂芳", "每天 10:00", "何桂兰、马秀英")])
    assert await plan(app) == 2
    states = {(r[1], r[2], r[5]) for r in await planned(app)}
    assert states == {
        ("马秀英", "2026-11-27T02:00", "cancelled"),
        ("马秀英", "2026-11-28T02:00", "cancelled"),
        ("何桂兰", "2026-11-27T02:00", "accepted"),
        ("何桂兰", "2026-11-28T02:00", "accepted"),
    }
    clock.set(datetime(2026, 11, 27, 1, 30, tzinfo=UTC))
    await app.scheduler.tick()
    assert len(await he.replies()) == 1
    assert await ma.replies() == []

    # Back to her, with another care plan and a later time tomorrow: her
    # cancelled visit today comes back (no second row), tomorrow's moves.
    await import_clients(
        app, tmp_path, [row("K1", "王桂芳", "周五 10:00，周六 11:00", "马秀英", "保洁")]
    )
    assert await plan(app) == 2
    assert sorted(await planned(app)) == sorted(
        [
            ("K1", "马秀英", "2026-11-27T02:00", "2026-11-27T03:00", ["cleaning"], "accepted"),
            ("K1", "马秀英", "2026-11-28T02:00", "2026-11-28T03:00", ["meal"], "cancelled"),
            ("K1", "马秀英", "2026-11-28T03:00", "2026-11-28T04:00", ["cleaning"], "accepted"),
            ("K1", "何桂兰", "2026-11-27T02:00", "2026-11-27T03:00", ["meal"], "cancelled"),
            ("K1", "何桂兰", "2026-11-28T02:00", "2026-11-28T03:00", ["meal"], "cancelled"),
        ]
    )
    assert await plan(app) == 0


async def test_deactivated_clients_and_workers_get_no_regular_visits(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    await import_clients(
        app,
        tmp_path,
        [row("K1", "王桂芳", "每天 10:00", "马秀英"), row("K2", "李德明", "每天 11:00", "何桂兰")],
    )
    assert await plan(app) == 4
    await import_clients(
        app, tmp_path, [row("K2", "李德明", "每天 11:00", "何桂兰")], deactivate_missing=True
    )
    assert await plan(app) == 0
    assert {(r[0], r[5]) for r in await planned(app)} == {("K1", "cancelled"), ("K2", "accepted")}

    # 何桂兰 leaves the roster: nobody is left to visit K2.
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE staff SET active = 0 WHERE id = ?", (org["何桂兰"],))
    )
    assert await plan(app) == 0
    assert {r[5] for r in await planned(app)} == {"cancelled"}


async def test_visits_follow_the_time_zone_of_the_clients_centre(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    await app.db.transaction(
        lambda conn: conn.execute(
            "UPDATE units SET timezone = 'Asia/Tokyo' WHERE path = '物业服务中心/长者服务中心'"
        )
    )
    await import_clients(app, tmp_path, [row("K1", "王桂芳", "每天 10:00", "马秀英")])
    # 10:00 in Tokyo is now: today's visit has begun, tomorrow's is planned.
    assert await plan(app) == 1
    assert [r[2] for r in await planned(app)] == ["2026-11-28T01:00"]
