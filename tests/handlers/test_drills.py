"""Drills: planned with advance notice, recorded afterwards, watched yearly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import Person

from bot.app import App
from bot.clock import FakeClock, iso
from bot.store import reminders


async def plan_drill(officer: Person, when: str, area: str = "物业服务中心/保安部") -> list[str]:
    await officer.send("/drill")
    await officer.send(when)
    await officer.press(area)
    return await officer.press("消防演练")


async def test_drill_is_announced_in_advance_to_its_area(
    person, app: App, clock: FakeClock
) -> None:
    officer = await person("李静")
    zhang = await person("张伟")
    cook = await person("吴刚")
    replies = await plan_drill(officer, "2026-12-01 15:00")
    assert "演练 #1 已安排" in replies[-1]
    assert "将于 2026-11-28 15:00、2026-12-01 14:00 通知区域内 4 人" in replies[-1]
    clock.set(datetime(2026, 11, 28, 7, 0, 1, tzinfo=UTC))  # 3 days before 15:00 local
    await app.scheduler.tick()
    assert any("演练预告" in t for t in await zhang.replies())
    assert await cook.replies() == []  # the kitchen is outside the area
    assert any("您组织的" in t for t in await officer.replies())
    clock.set(datetime(2026, 12, 1, 6, 0, 1, tzinfo=UTC))  # one hour before
    await app.scheduler.tick()
    assert any("演练预告" in t for t in await zhang.replies())


async def test_bad_drill_times_and_roles_are_refused(person) -> None:
    officer = await person("李静")
    zhang = await person("张伟")
    assert "只有安全员或管理员" in (await zhang.send("/drill"))[0]
    await officer.send("/drill")
    assert "已经过去" in (await officer.send("2026-01-01 10:00"))[0]
    assert "没有这个日期" in (await officer.send("2027-02-31 10:00"))[0]
    assert "看不懂" in (await officer.send("下周二"))[0]


async def test_recording_a_drill_turns_its_problems_into_a_hazard(
    person, app: App, clock: FakeClock
) -> None:
    officer = await person("李静")
    supervisor = await person("刘强")  # heads 保安部, the drill's area
    await plan_drill(officer, "2026-11-27 15:00")
    assert "没有待记录" in (await officer.send("/drilldone"))[0]  # not yet
    await officer.send("/cancel")  # it offers to record a drill held without a plan
    clock.advance(timedelta(hours=7))
    await officer.send("/drilldone")
    await officer.press("#1")
    await officer.send("35")
    await officer.send("12")
    await officer.send("二楼安全出口指示灯不亮")
    replies = await officer.press("跳过")
    assert "隐患 YH-2026-0001" in replies[-1]
    drill = await app.db.read(
        lambda c: c.execute("SELECT state, participants, minutes, hazard_id FROM drills").fetchone()
    )
    assert tuple(drill) == ("done", 35, 12, 1)
    audit = await app.db.read(
        lambda c: c.execute("SELECT action FROM audit_log WHERE entity = 'drill'").fetchall()
    )
    assert [row[0] for row in audit] == ["planned", "recorded"]
    # The hazard belongs to the area: its supervisor is alerted and it is chased.
    assert any("隐患报告 YH-2026-0001" in t for t in await supervisor.replies())
    unit, chased = await app.db.read(
        lambda c: c.execute(
            "SELECT (SELECT path FROM units WHERE id = h.unit_id),"
            " (SELECT COUNT(*) FROM reminders WHERE idempotency_key LIKE 'hazard:1:%')"
            " FROM hazards h"
        ).fetchone()
    )
    assert unit == "物业服务中心/保安部" and chased > 0


async def test_compliance_watch_reports_units_short_of_drills(
    person, app: App, clock: FakeClock
) -> None:
    admin = await person("王建国")
    await app.scheduler.plan()
    clock.set(datetime(2027, 3, 1, 1, 0, 1, tzinfo=UTC))  # 1 March 09:00 in Shanghai
    await app.scheduler.tick()
    report = [t for t in await admin.replies() if "演练计划不足" in t]
    assert report and "物业服务中心/保安部/一班" in report[0]


async def test_planned_drills_show_in_schedules(person) -> None:
    officer = await person("李静")
    liu = await person("刘强")
    await plan_drill(officer, "2026-12-01 15:00")
    listing = (await liu.send("/schedules"))[0]
    assert "2026-12-01 15:00" in listing and "消防演练 #1" in listing


async def test_a_drill_planned_within_the_hour_is_announced_at_once(
    person, app: App, clock: FakeClock
) -> None:
    officer = await person("李静")
    zhang = await person("张伟")
    cook = await person("吴刚")
    replies = await plan_drill(officer, "2026-11-27 09:30")  # half an hour from now
    assert "演练 #1 已安排" in replies[-1]
    assert "已立即通知区域内 4 人" in replies[-1] and "将于" not in replies[-1]
    notices = await zhang.replies()
    assert len([t for t in notices if "演练预告" in t and "2026-11-27 09:30" in t]) == 1
    assert await cook.replies() == []
    clock.set(datetime(2026, 11, 27, 1, 29, tzinfo=UTC))
    await app.scheduler.tick()
    assert await zhang.replies() == []  # told once, not again by a late reminder


async def test_a_drill_planned_two_days_ahead_is_announced_now_and_an_hour_before(
    person, app: App, clock: FakeClock
) -> None:
    officer = await person("李静")
    zhang = await person("张伟")
    replies = await plan_drill(officer, "2026-11-29 15:00")
    assert "已立即通知区域内 4 人" in replies[-1]
    assert "将于 2026-11-29 14:00 再次通知" in replies[-1]
    assert len([t for t in await zhang.replies() if "演练预告" in t]) == 1
    clock.set(datetime(2026, 11, 29, 6, 0, 1, tzinfo=UTC))  # one hour before
    await app.scheduler.tick()
    assert len([t for t in await zhang.replies() if "演练预告" in t]) == 1


async def test_drill_planning_in_english_says_who_is_told_and_when(person, app: App, org) -> None:
    officer = await person("李静")
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET language = 'en' WHERE id = ?", (org["李静"],))
    )
    await officer.send("/drill")
    await officer.send("2026-12-01 15:00")
    await officer.press("物业服务中心/保安部")
    replies = await officer.press("Fire drill")
    assert "Drill #1 planned for 2026-12-01 15:00" in replies[-1]
    told = "The 4 people in the area will be told at 2026-11-28 15:00, 2026-12-01 14:00"
    assert told in replies[-1]


async def test_a_drill_held_without_a_plan_is_recorded_and_counts_for_the_year(
    person, app: App, clock: FakeClock
) -> None:
    officer = await person("李静")
    admin = await person("王建国")
    replies = await officer.send("/drilldone")
    assert "没有待记录" in replies[0] and "什么时候进行的" in replies[-1]
    assert "还没到" in (await officer.send("2026-11-28 10:00"))[0]
    await officer.send("2026-11-26 15:00")
    await officer.press("物业服务中心/保安部")
    await officer.press("疏散演练")
    await officer.send("28")
    await officer.send("20")
    await officer.press("没有问题")
    replies = await officer.press("跳过")
    assert "演练 #1 已记录" in replies[-1]
    drill = await app.db.read(
        lambda c: c.execute(
            "SELECT d.state, d.kind, d.at, d.participants, d.minutes, u.path FROM drills d"
            " JOIN units u ON u.id = d.unit_id"
        ).fetchone()
    )
    assert tuple(drill) == (
        "done",
        "evacuation",
        "2026-11-26T07:00:00+00:00",
        28,
        20,
        "物业服务中心/保安部",
    )
    audit = await app.db.read(
        lambda c: c.execute(
            "SELECT action, detail FROM audit_log WHERE entity = 'drill'"
        ).fetchall()
    )
    assert [row[0] for row in audit] == ["entered", "recorded"]
    assert json.loads(audit[0][1])["unplanned"] is True
    # The yearly watch counts it: its area is no longer short of a drill done.
    await app.db.transaction(
        lambda c: reminders.schedule(
            c,
            kind="drill_watch",
            due_at=iso(clock.now()),
            target={"year": 2026, "check": "done"},
            key="drill-watch:2026:done",
            now=iso(clock.now()),
        )
    )
    await app.scheduler.tick()
    report = next(t for t in await admin.replies() if "还没有完成任何演练" in t)
    assert "物业服务中心/工程部" in report
    assert "物业服务中心/保安部" not in report


async def test_recording_offers_planned_drills_and_one_held_without_a_plan(
    person, clock: FakeClock
) -> None:
    officer = await person("李静")
    await plan_drill(officer, "2026-11-27 15:00")
    clock.advance(timedelta(hours=7))
    await officer.send("/drilldone")
    assert [label.split()[0] for label, _ in officer.last_buttons] == ["#1", "➕"]
    replies = await officer.press("计划外")
    assert "什么时候进行的" in replies[-1]
