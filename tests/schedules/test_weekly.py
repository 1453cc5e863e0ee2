"""The weekly picture: on Monday morning each supervisor gets last week of
their units, as text and one chart, exactly once."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from bot.app import App
from bot.clock import FakeClock
from bot.stats import compose, week_of
from bot.store import hazards, people

# Monday 2026-11-30 08:00 in Shanghai.
MONDAY_MORNING = datetime(2026, 11, 30, 0, 0, 1, tzinfo=UTC)


def seed_last_week(conn: sqlite3.Connection, org: dict[str, int]) -> None:
    """Last week (23–29 Nov) in 保安部 and, to be left out, in 工程部."""
    team = people.unit_id(conn, "物业服务中心/保安部/一班")
    security = people.unit_id(conn, "物业服务中心/保安部")
    works = people.unit_id(conn, "物业服务中心/工程部")
    assert team and security and works
    runs = [
        ("张伟", team, "2026-11-23", True),
        ("张伟", team, "2026-11-24", True),
        ("陈磊", team, "2026-11-24", True),
        ("杨洋", team, "2026-11-25", False),  # started, never finished
        ("黄海", works, "2026-11-24", True),  # another department
    ]
    for name, unit, day, done in runs:
        conn.execute(
            "INSERT INTO checklist_runs (checklist, staff_id, unit_id, local_date, started_at,"
            " completed_at) VALUES ('preshift', ?, ?, ?, ?, ?)",
            (
                org[name],
                unit,
                day,
                f"{day}T00:00:00+00:00",
                f"{day}T00:05:00+00:00" if done else None,
            ),
        )

    def hazard(unit: int, created: str, deadline: str) -> int:
        return hazards.create(
            conn,
            unit_id=unit,
            reported_by=org["张伟"],
            source="report",
            description="消防通道堵塞",
            photo=None,
            severity="general",
            deadline_at=deadline,
            now=created,
        )

    hazard(team, "2026-11-24T02:00:00.000000+00:00", "2026-11-25T15:59:59.000000+00:00")
    closed = hazard(team, "2026-11-25T02:00:00.000000+00:00", "2026-12-01T15:59:59.000000+00:00")
    conn.execute(
        "UPDATE hazards SET status = 'closed', closed_at = ? WHERE id = ?",
        ("2026-11-26T03:00:00.000000+00:00", closed),
    )
    hazard(works, "2026-11-24T02:00:00.000000+00:00", "2026-11-25T15:59:59.000000+00:00")
    conn.execute(
        "INSERT INTO incidents (number, unit_id, reported_by, occurred_at, place, kind,"
        " description, hurt_count, report_due_at, created_at) VALUES"
        " ('SG-2026-001', ?, ?, '2026-11-26T06:00:00+00:00', '大门', 'near_miss', '滑倒', 0,"
        " '2026-12-11T06:00:00+00:00', '2026-11-26T06:10:00+00:00')",
        (team, org["张伟"]),
    )
    conn.execute(
        "INSERT INTO drills (unit_id, kind, at, organiser_id, state, created_at) VALUES"
        " (?, 'fire', '2026-11-27T06:00:00+00:00', ?, 'done', '2026-11-20T00:00:00+00:00')",
        (security, org["刘强"]),
    )


async def weekly_rows(app: App, staff_id: int) -> list[sqlite3.Row]:
    return await app.db.read(
        lambda conn: conn.execute(
            "SELECT text, attachments FROM outbox WHERE staff_id = ? AND text LIKE '%每周统计%'",
            (staff_id,),
        ).fetchall()
    )


async def test_supervisor_gets_last_week_once_on_monday_morning(
    person, org: dict[str, int], app: App, clock: FakeClock, tmp_path: Path
) -> None:
    liu = await person("刘强")
    await app.db.transaction(lambda conn: seed_last_week(conn, org))
    await app.scheduler.plan()
    await app.scheduler.tick()
    assert not await weekly_rows(app, org["刘强"])  # Friday: nothing yet
    clock.set(MONDAY_MORNING)
    await app.scheduler.plan()
    await app.scheduler.tick()
    texts = await liu.replies()
    weekly = [text for text in texts if "每周统计" in text]
    assert len(weekly) == 1
    text = weekly[0]
    assert "物业服务中心/保安部 2026-11-23 至 2026-11-29" in text
    # 4 active staff in 保安部 and 一班, 7 days: 3 checks done of 28.
    assert "岗前自查完成率：11%（3/28 人次）" in text
    assert "隐患：新增 2，销号 1，逾期 1" in text
    assert "事故 1 起，演练 1 次" in text
    assert "上门服务" not in text  # the guards serve no elder-care clients
    (row,) = await weekly_rows(app, org["刘强"])
    (chart,) = json.loads(row["attachments"])
    with Image.open(tmp_path / "media" / chart) as image:
        assert image.format == "PNG" and image.width >= 600
    # Planned and ticked again on the same Monday: nothing new.
    clock.set(datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    await app.scheduler.plan()
    await app.scheduler.tick()
    assert len(await weekly_rows(app, org["刘强"])) == 1


async def test_each_supervisor_sees_only_their_units(
    org: dict[str, int], app: App, clock: FakeClock
) -> None:
    await app.db.transaction(lambda conn: seed_last_week(conn, org))
    await app.scheduler.plan()
    clock.set(MONDAY_MORNING)
    await app.scheduler.tick()
    (row,) = await weekly_rows(app, org["赵敏"])  # 工程部: 赵敏 and 黄海
    assert "物业服务中心/工程部" in row["text"]
    assert "7%（1/14 人次）" in row["text"]
    assert "隐患：新增 1，销号 0，逾期 1" in row["text"]
    assert "事故 0 起，演练 0 次" in row["text"]
    assert not await weekly_rows(app, org["张伟"])  # workers get no picture


async def test_picture_comes_in_the_supervisors_language(
    org: dict[str, int], app: App, clock: FakeClock
) -> None:
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE staff SET language = 'en' WHERE id = ?", (org["刘强"],))
    )
    await app.scheduler.plan()
    clock.set(MONDAY_MORNING)
    await app.scheduler.tick()
    rows = await app.db.read(
        lambda conn: conn.execute(
            "SELECT text FROM outbox WHERE staff_id = ? AND text LIKE '%weekly statistics%'",
            (org["刘强"],),
        ).fetchall()
    )
    assert len(rows) == 1
    assert "2026-11-23 to 2026-11-29" in rows[0]["text"]
    assert "Pre-shift checks done: 0% (0 of 28 expected)" in rows[0]["text"]


def drawn(app_conn: sqlite3.Connection, unit: str, now: datetime) -> tuple[list[str], list[str]]:
    """This week's chart for `unit` and the units below it: the labels on the
    completion bars, and the registers the right side counts."""
    from bot import charts
    from bot.stats import gather, week_of

    unit_id = people.unit_id(app_conn, unit)
    assert unit_id is not None
    units = people.subtree_units(app_conn, unit_id)
    picture = gather(app_conn, units, week_of(now.date()), "Asia/Shanghai", now)
    figure = charts.draw(picture, "zh-CN", unit)
    checks, registers = figure.axes
    bar_labels = [text.get_text() for text in checks.texts]
    counted = [label.get_text() for label in registers.get_yticklabels()]
    return bar_labels, counted


async def test_days_still_to_come_are_blank_not_zero(org: dict[str, int], app: App) -> None:
    # Wednesday 25 Nov, 10:00 in Shanghai: Monday to Wednesday have been.
    wednesday = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    await app.db.transaction(lambda conn: seed_last_week(conn, org))
    bar_labels, _ = await app.db.read(lambda conn: drawn(conn, "物业服务中心/保安部", wednesday))
    assert bar_labels == ["1/4", "2/4", "0/4"]  # Thursday to Sunday: no bar, no 0 %


async def test_home_visit_bars_only_for_units_that_have_clients(
    org: dict[str, int], app: App
) -> None:
    def seed(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO clients (number, name, address, unit_id, services, created_at,"
            " updated_at) VALUES ('K001', '王桂芳', '福建中路 120 弄', ?, '[]', ?, ?)",
            (people.unit_id(conn, "物业服务中心/长者服务中心/上门服务组"), "2026-11-01", "x"),
        )

    await app.db.transaction(seed)
    friday = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    _, guards = await app.db.read(lambda conn: drawn(conn, "物业服务中心/保安部", friday))
    _, carers = await app.db.read(lambda conn: drawn(conn, "物业服务中心/长者服务中心", friday))
    _, everyone = await app.db.read(lambda conn: drawn(conn, "物业服务中心", friday))
    assert "新增隐患" in guards and "上门服务" not in guards and "服务异常" not in guards
    assert "上门服务" in carers and "服务异常" in carers
    assert "上门服务" in everyone

    def summary(conn: sqlite3.Connection, unit: str) -> str:
        unit_id = people.unit_id(conn, unit)
        assert unit_id is not None
        text, _ = compose(
            conn,
            language="zh-CN",
            unit_ids=people.subtree_units(conn, unit_id),
            scope=unit,
            period=week_of(friday.date()),
            timezone="Asia/Shanghai",
            now=friday,
        )
        return text

    assert "上门服务 0 次，其中异常 0 次" in await app.db.read(
        lambda conn: summary(conn, "物业服务中心/长者服务中心")
    )
    assert "上门服务" not in await app.db.read(lambda conn: summary(conn, "物业服务中心/保安部"))
