"""Shift starts prompt the workers, nudge the ones who have not checked, and
give the supervisor the picture; leave and the roster are respected; a
change of a unit's shifts or zone re-plans them at once."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime, time, timedelta
from pathlib import Path

from conftest import START

from bot.app import App
from bot.clock import FakeClock, iso
from bot.store import calendars
from schedules import shifts


async def round_the_clock(app: App) -> None:
    """保安部 (and its 一班) work every day, shifts at 08:00 and 20:00."""

    def setup(conn):  # type: ignore[no-untyped-def]
        unit = conn.execute("SELECT id FROM units WHERE path = '物业服务中心/保安部'").fetchone()
        calendars.set_calendar(
            conn,
            unit[0],
            shift_starts="08:00,20:00",
            every_day=True,
            nudge_minutes=30,
            digest_minutes=60,
            now=iso(START),
        )

    await app.db.transaction(setup)


async def test_prompt_nudge_and_digest_around_a_shift(person, app: App, clock: FakeClock) -> None:
    await round_the_clock(app)
    zhang, chen, yang = [await person(n) for n in ("张伟", "陈磊", "杨洋")]
    liu = await person("刘强")
    await yang.send("/leave 2026-11-30")
    await yang.replies()
    assert await app.scheduler.plan() > 0
    clock.set(START.replace(hour=12))  # 20:00 in Shanghai
    await app.scheduler.tick()
    prompt = await zhang.replies()
    assert "岗前安全自查" in prompt[0] and zhang.last_buttons == [("✅ 开始岗前自查", "/check")]
    assert await yang.replies() == []  # on leave
    await zhang.press("开始岗前自查")
    for _ in range(5):
        await zhang.press("正常")
    await zhang.press("有问题")
    await zhang.send("警棍丢失")
    await zhang.press("跳过")
    await chen.replies()
    clock.advance(timedelta(minutes=30))
    await app.scheduler.tick()
    assert any("还没做" in t for t in await chen.replies())
    assert not any("还没做" in t for t in await zhang.replies())
    clock.advance(timedelta(minutes=30))
    await app.scheduler.tick()
    digests = [t for t in await liu.replies() if "📋" in t]
    assert any("一班" in d and "1/2" in d and "张伟" in d and "陈磊" in d for d in digests)
    # The problem is named by its item, as the worker read it; never its key.
    [digest] = [d for d in digests if "一班" in d]
    assert "张伟：清楚本岗位操作要领、操作规程" in digest and "procedures" not in digest


async def test_planning_twice_changes_nothing_and_days_off_are_quiet(app: App, org) -> None:
    first = await app.scheduler.plan()
    again = await app.scheduler.plan()
    assert first > 0 and again == 0
    # The default office calendar: 08:30 on working days. It is Friday 09:00, so
    # only today's 09:30 digests are still ahead; Saturday is a day off.
    planned = await app.db.read(
        lambda c: c.execute(
            "SELECT DISTINCT kind, due_at FROM reminders WHERE kind LIKE 'shift%'"
        ).fetchall()
    )
    assert [(row["kind"], row["due_at"][:16]) for row in planned] == [
        ("shift_digest", "2026-11-27T01:30")
    ]


async def test_prompts_that_fell_due_while_down_are_dropped_and_counted(
    person, app: App, clock: FakeClock
) -> None:
    await round_the_clock(app)
    zhang = await person("张伟")
    await app.scheduler.plan()
    clock.set(START.replace(hour=16))  # four hours after the 20:00 shift started
    tally = await app.scheduler.tick()
    assert tally.dropped >= 2 and await zhang.replies() == []


async def test_people_who_left_the_roster_are_not_nudged(
    person, app: App, clock: FakeClock
) -> None:
    await round_the_clock(app)
    chen = await person("陈磊")
    await app.scheduler.plan()
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET active = 0 WHERE id = ?", (chen.staff_id,))
    )
    clock.set(START.replace(hour=12))
    await app.scheduler.tick()
    assert await chen.replies() == []


async def test_leave_command(person) -> None:
    zhang = await person("张伟")
    assert "用法" in (await zhang.send("/leave"))[0]
    assert "2026-12-05" in (await zhang.send("/leave 2026-12-05"))[0]
    assert "2026-12-05" in (await zhang.send("/leave"))[0]
    assert "过去" in (await zhang.send("/leave 2026-01-01"))[0]
    assert "看不懂" in (await zhang.send("/leave 2026-02-31"))[0]
    assert "结束" in (await zhang.send("/leave off"))[0]


def test_calendar_command_sets_shifts_and_refuses_bad_input(tmp_path, capsys) -> None:

    from conftest import demo_database

    from bot import cli

    db = demo_database(tmp_path / "c.db")
    assert (
        cli.main(
            [
                "calendar",
                "物业服务中心/保安部",
                "--shifts",
                "20:00,8:00",
                "--every-day",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    assert "08:00, 20:00" in capsys.readouterr().out
    assert cli.main(["calendar", "没有这个", "--shifts", "8:00", "--db", str(db)]) == 2
    assert cli.main(["calendar", "物业服务中心", "--shifts", "25:00", "--db", str(db)]) == 2
    assert (
        cli.main(["calendar", "物业服务中心", "--shifts", "8:00", "--nudge", "90", "--db", str(db)])
        == 2
    )


SECURITY = "物业服务中心/保安部"


async def shift_messages(app: App, clock: FakeClock, staff_id: int, hours: int) -> list[str]:
    """Live `hours` (plan on the hour, look every five minutes); the UTC
    minutes at which shift prompts and nudges were queued for a person."""
    end = clock.now() + timedelta(hours=hours)
    while clock.now() < end:
        if clock.now().minute == 0:
            await app.scheduler.plan()
        await app.scheduler.tick()
        clock.advance(timedelta(minutes=5))
    rows = await app.db.read(
        lambda conn: conn.execute(
            "SELECT created_at FROM outbox WHERE staff_id = ?"
            " AND (text LIKE '%上班了%' OR text LIKE '%还没做%') ORDER BY id",
            (staff_id,),
        ).fetchall()
    )
    return [str(row["created_at"])[:16] for row in rows]


def change(
    conn: sqlite3.Connection,
    *,
    now: datetime,
    settings: shifts.ShiftSettings | None = None,
    timezone: str | None = None,
) -> int:
    """What `frontline calendar 物业服务中心/保安部 ...` does, at the test's time."""
    unit = conn.execute("SELECT id FROM units WHERE path = ?", (SECURITY,)).fetchone()[0]
    return shifts.change_unit(
        conn,
        unit,
        settings=settings,
        timezone=timezone,
        now=now,
        default_timezone="Asia/Shanghai",
    )


def every_day_at(*starts: time) -> shifts.ShiftSettings:
    return shifts.ShiftSettings(starts=starts, every_day=True, nudge_minutes=30, digest_minutes=60)


async def test_new_shift_times_replace_the_planned_prompts_at_once(
    app: App, org, clock: FakeClock
) -> None:
    await round_the_clock(app)  # 08:00 and 20:00 in Shanghai
    await app.scheduler.plan()
    await app.db.transaction(
        lambda conn: change(conn, now=clock.now(), settings=every_day_at(time(7), time(19)))
    )
    # 一班 follows 保安部: 张伟 hears at 19:00 and 07:00 only, never at 20:00 or 08:00.
    assert await shift_messages(app, clock, org["张伟"], hours=36) == [
        "2026-11-27T11:00",  # Friday 19:00, and its nudge
        "2026-11-27T11:30",
        "2026-11-27T23:00",  # Saturday 07:00
        "2026-11-27T23:30",
        "2026-11-28T11:00",
        "2026-11-28T11:30",
    ]


async def test_going_back_to_the_old_shift_times_plans_them_again(
    app: App, org, clock: FakeClock
) -> None:
    await round_the_clock(app)
    await app.scheduler.plan()
    for starts in ((time(7), time(19)), (time(8), time(20))):
        await app.db.transaction(
            lambda conn, starts=starts: change(
                conn, now=clock.now(), settings=every_day_at(*starts)
            )
        )
    assert await shift_messages(app, clock, org["张伟"], hours=12) == [
        "2026-11-27T12:00",  # Friday 20:00, and its nudge
        "2026-11-27T12:30",
    ]


async def test_moving_a_unit_to_another_zone_replans_its_shifts_at_once(
    app: App, org, clock: FakeClock
) -> None:
    await round_the_clock(app)
    await app.scheduler.plan()
    await app.db.transaction(lambda conn: change(conn, now=clock.now(), timezone="Europe/London"))
    # 08:00 and 20:00 in London; nothing left over at Shanghai's 20:00 (12:00 UTC).
    assert await shift_messages(app, clock, org["张伟"], hours=36) == [
        "2026-11-27T08:00",
        "2026-11-27T08:30",
        "2026-11-27T20:00",
        "2026-11-27T20:30",
        "2026-11-28T08:00",
        "2026-11-28T08:30",
    ]
    zone = await app.db.read(
        lambda conn: conn.execute(
            "SELECT timezone FROM units WHERE path = ?", (SECURITY,)
        ).fetchone()[0]
    )
    assert zone == "Europe/London"


def pending_prompts(db: Path) -> list[str]:
    """UTC times of day of the pending shift prompts of 保安部 and 一班."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT r.due_at FROM reminders r JOIN units u"
            " ON u.id = CAST(json_extract(r.target, '$.unit') AS INTEGER)"
            " WHERE r.kind = 'shift_prompt' AND r.state = 'pending' AND u.path LIKE ?",
            (f"{SECURITY}%",),
        ).fetchall()
    return sorted({row[0][11:16] for row in rows})


def test_calendar_command_moves_a_unit_to_another_zone_and_replans(tmp_path, capsys) -> None:
    from conftest import demo_database

    from bot import cli

    db = demo_database(tmp_path / "c.db")
    calendar = ["calendar", SECURITY, "--db", str(db)]
    assert cli.main([*calendar, "--shifts", "8:00", "--every-day"]) == 0
    assert pending_prompts(db) == ["00:00"]  # 08:00 in Shanghai, planned at once
    capsys.readouterr()
    assert cli.main([*calendar, "--timezone", "Europe/London"]) == 0
    assert "Europe/London" in capsys.readouterr().out
    assert pending_prompts(db) in (["08:00"], ["07:00"], ["07:00", "08:00"])  # GMT or BST
    with contextlib.closing(sqlite3.connect(db)) as conn:
        unit = conn.execute(
            "SELECT u.timezone, c.shift_starts, c.every_day FROM units u"
            " JOIN unit_calendars c ON c.unit_id = u.id WHERE u.path = ?",
            (SECURITY,),
        ).fetchone()
    assert unit == ("Europe/London", "08:00", 1)  # the shifts stay as they were


def test_calendar_command_refuses_an_unknown_zone_and_nothing_to_set(tmp_path, capsys) -> None:
    from conftest import demo_database

    from bot import cli

    db = demo_database(tmp_path / "c.db")
    calendar = ["calendar", SECURITY, "--db", str(db)]
    capsys.readouterr()
    assert cli.main([*calendar, "--timezone", "Mars/Olympus"]) == 2
    refused = capsys.readouterr().err
    assert "Mars/Olympus" in refused and refused.count("\n") == 1
    assert cli.main(calendar) == 2  # neither --shifts nor --timezone
    assert cli.main([*calendar, "--timezone", "UTC", "--every-day"]) == 2  # goes with --shifts
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute(
            "SELECT timezone FROM units WHERE path = ?", (SECURITY,)
        ).fetchone() == (None,)
