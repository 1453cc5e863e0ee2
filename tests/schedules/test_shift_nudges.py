"""Shift starts prompt the workers, nudge the ones who have not checked, and
give the supervisor the picture; leave and the roster are respected."""

from __future__ import annotations

from datetime import timedelta

from conftest import START

from bot.app import App
from bot.store import calendars
from schedules.clock import FakeClock, iso


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
