"""Hazard deadlines chase the people who must act, on a clock the test moves."""

from __future__ import annotations

from datetime import timedelta

from conftest import Person

from bot.app import App
from bot.clock import FakeClock


async def report(worker: Person, text: str = "消防通道堵塞") -> None:
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send(text)
    await worker.press("跳过")


async def test_general_hazard_is_chased_then_escalated(person, app: App, clock: FakeClock) -> None:
    worker = await person("张伟")
    supervisor = await person("刘强")
    officer = await person("李静")
    admin_head = await person("王建国")  # no supervisor above 保安部 but the centre's admin
    await report(worker)
    await supervisor.replies()  # the alert
    # Reported 09:00 local; due 23:59:59 local. 2 hours before: the reminder.
    clock.advance(timedelta(hours=12, minutes=59))
    tally = await app.scheduler.tick()
    assert tally.fired == 0
    clock.advance(timedelta(minutes=2))
    tally = await app.scheduler.tick()
    assert tally.fired == 1
    assert "快到了" in (await supervisor.replies())[0]
    clock.advance(timedelta(hours=2))
    await app.scheduler.tick()
    # Nobody was made responsible: the unit's supervisor is chased, and the
    # escalation goes past him (no supervisor above 保安部: the safety office).
    texts = await supervisor.replies()
    assert any("已超过整改期限" in t for t in texts)
    assert not any("逾期未整改" in t for t in texts)
    assert any("逾期未整改" in t for t in await officer.replies())
    clock.advance(timedelta(hours=24))
    await app.scheduler.tick()
    assert any("上报" in t for t in await officer.replies())
    assert await admin_head.replies() == []  # 物业服务中心 has no supervisor role holder
    # Nothing fires twice.
    clock.advance(timedelta(days=3))
    tally = await app.scheduler.tick()
    assert tally.fired == 0


async def test_closed_hazard_is_not_chased(person, app: App, clock: FakeClock) -> None:
    worker = await person("张伟")
    supervisor = await person("刘强")
    await report(worker)
    await supervisor.replies()
    await app.db.transaction(lambda c: c.execute("UPDATE hazards SET status = 'closed'"))
    clock.advance(timedelta(days=3))
    tally = await app.scheduler.tick()
    assert tally.fired == 0 and tally.dropped == 3
    assert await supervisor.replies() == []


async def test_what_fell_due_while_down_is_sent_once_and_marked_late(
    person, app: App, clock: FakeClock
) -> None:
    worker = await person("张伟")
    supervisor = await person("刘强")
    await report(worker)
    await supervisor.replies()
    clock.advance(timedelta(hours=20))  # the process was down over the deadline
    tally = await app.scheduler.tick()
    assert tally.fired == 2 and tally.late == 2
    again = await app.scheduler.tick()
    assert again.fired == 0
    late = await app.db.read(
        lambda c: c.execute("SELECT COUNT(*) FROM reminders WHERE late = 1").fetchone()[0]
    )
    assert late == 2
