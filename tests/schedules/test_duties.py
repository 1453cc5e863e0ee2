"""Recurring duties: reminded, recorded against their occurrence, escalated
when missed, pausable per unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.app import App
from bot.clock import FakeClock


async def test_daily_inspection_reminded_done_by_checklist_not_escalated(
    person, app: App, clock: FakeClock
) -> None:
    liu = await person("刘强")
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))  # Friday 00:00 in Shanghai
    await app.scheduler.plan()
    clock.set(datetime(2026, 11, 27, 1, 0, 1, tzinfo=UTC))  # 09:00
    await app.scheduler.tick()
    reminder = [t for t in await liu.replies() if "日常安全检查" in t]
    assert reminder and liu.last_buttons == [("▶️ 开始", "/daily")]
    await liu.press("开始")
    for _ in range(5):
        await liu.press("正常")
    clock.set(datetime(2026, 11, 27, 9, 0, 1, tzinfo=UTC))  # 17:00: the deadline
    await app.scheduler.tick()
    assert not any("逾期" in t or "过期" in t for t in await liu.replies())


async def test_missed_duty_is_escalated_above_the_owner(person, app: App, clock: FakeClock) -> None:
    zhou = await person("周芳")  # supervisor of 餐饮部
    admin = await person("王建国")
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    await app.scheduler.plan()
    clock.set(datetime(2026, 11, 27, 9, 0, 1, tzinfo=UTC))
    await app.scheduler.tick()
    assert any("已过期限" in t for t in await zhou.replies())
    escalations = [t for t in await admin.replies() if "逾期未完成" in t]
    assert any("周芳" in t and "日常安全检查" in t for t in escalations)
    escalated = await app.db.read(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM audit_log WHERE entity = 'duty' AND action = 'escalated'"
        ).fetchone()[0]
    )
    assert escalated >= 1


async def test_meeting_is_done_with_its_button(person, app: App, clock: FakeClock) -> None:
    admin = await person("王建国")
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    await app.scheduler.plan()
    clock.set(datetime(2026, 11, 27, 1, 0, 1, tzinfo=UTC))
    await app.scheduler.tick()
    await admin.replies()
    occurrence = await app.db.read(
        lambda c: c.execute(
            "SELECT id FROM duty_occurrences WHERE duty = 'monthly_fire_meeting'"
            " AND period = '2026-11'"
        ).fetchone()[0]
    )
    assert "完成" in (await admin.send(f"/done {occurrence}"))[0]
    assert "之前" in (await admin.send(f"/done {occurrence}"))[0]
    assert "不是您的" in (await admin.send("/done 999999"))[0]


async def test_schedules_lists_and_pauses(person, app: App, clock: FakeClock) -> None:
    liu = await person("刘强")
    zhang = await person("张伟")
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    await app.scheduler.plan()
    listing = (await liu.send("/schedules"))[0]
    assert "日常安全检查" in listing and "刘强" in listing
    assert "只有主管" in (await zhang.send("/schedules"))[0]
    assert "已暂停" in (await liu.send("/schedules pause daily_inspection"))[0]
    assert "没有这个日程" in (await liu.send("/schedules pause nonsense"))[0]
    clock.advance(timedelta(hours=9, seconds=1))
    await app.scheduler.tick()
    assert not any("日常安全检查" in t for t in await liu.replies())


async def test_schedules_name_duties_as_the_catalog_does(
    person, app: App, clock: FakeClock
) -> None:
    liu = await person("刘强")
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    await app.scheduler.plan()
    listing = (await liu.send("/schedules"))[0]
    assert "日常安全检查" in listing and "daily_inspection" not in listing and "_" not in listing
    assert "暂停哪一项" in (await liu.send("/schedules pause"))[0]
    assert ("日常安全检查", "/schedules pause daily_inspection") in liu.last_buttons
    assert "已暂停「日常安全检查」" in (await liu.press("日常安全检查"))[0]
    assert "已恢复「日常安全检查」" in (await liu.send("/schedules resume 日常安全检查"))[0]
    unknown = (await liu.send("/schedules pause 周会"))[0]
    assert "没有这个日程“周会”" in unknown and "月度消防安全例会" in unknown
    assert "_" not in unknown

    await liu.send("/lang en")
    listing = (await liu.send("/schedules"))[0]
    assert "Daily safety inspection" in listing and "_" not in listing
    paused = (await liu.send("/schedules pause daily safety inspection"))[0]
    assert paused.startswith("Paused “Daily safety inspection” for 物业服务中心/保安部")
    unknown = (await liu.send("/schedules resume weekly meeting"))[0]
    assert "Monthly fire-safety meeting" in unknown and "_" not in unknown


def test_duty_settings_per_unit_change_owner_and_cadence(tmp_path, capsys) -> None:
    import asyncio

    from conftest import START, demo_database

    from bot import cli

    db = demo_database(tmp_path / "d.db")
    # The kitchen's daily inspection becomes weekly-ish: monthly, owned by 吴刚.
    assert (
        cli.main(
            [
                "duty",
                "物业服务中心/餐饮部",
                "daily_inspection",
                "--cadence",
                "monthly",
                "--owner",
                "13800000010",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    assert cli.main(["duty", "物业服务中心/餐饮部", "nonsense", "--clear", "--db", str(db)]) == 2
    assert cli.main(["duty", "没有", "daily_inspection", "--clear", "--db", str(db)]) == 2
    assert cli.main(["duty", "物业服务中心", "daily_inspection", "--db", str(db)]) == 2
    capsys.readouterr()

    async def plan() -> list[tuple[str, str]]:
        app = await App.open(db, {}, clock=FakeClock(START - timedelta(hours=9)))
        await app.scheduler.plan()
        rows = await app.db.read(
            lambda c: c.execute(
                "SELECT s.name, o.period FROM duty_occurrences o JOIN staff s ON s.id = o.staff_id"
                " WHERE o.duty = 'daily_inspection' ORDER BY s.name, o.period"
            ).fetchall()
        )
        await app.close()
        return [(row[0], row[1]) for row in rows]

    owners = asyncio.run(plan())
    assert ("吴刚", "2026-11") in owners  # the named owner, on the unit's cadence
    assert not any(name == "周芳" for name, _ in owners)  # 餐饮部's supervisor, replaced
    assert ("刘强", "2026-11-27") in owners  # other units keep the data file's daily cadence
