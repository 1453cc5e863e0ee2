"""Fire-safety training: recorded by the safety officer, missing ones flagged
once, yearly expiry reminded 30 days ahead to the person and their supervisor."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import App
from bot.clock import FakeClock


async def test_untrained_worker_is_flagged_to_the_supervisor_once(
    person, app: App, clock: FakeClock
) -> None:
    liu = await person("刘强")
    await app.scheduler.plan()
    await app.scheduler.tick()
    flagged = [t for t in await liu.replies() if "没有消防安全培训记录" in t]
    assert any("张伟" in t for t in flagged)
    await app.scheduler.plan()
    await app.scheduler.tick()
    assert not any("张伟" in t for t in await liu.replies())


async def test_recorded_training_is_reminded_before_it_expires(
    person, app: App, clock: FakeClock
) -> None:
    officer = await person("李静")
    zhang = await person("张伟")
    liu = await person("刘强")
    await officer.send("/training")
    await officer.press("指定人员")
    await officer.send("张伟")
    replies = await officer.press("今天")
    assert "已登记 1 人" in replies[-1]
    await app.scheduler.plan()
    await app.scheduler.tick()
    assert not any("张伟" in t for t in await liu.replies())  # trained: not flagged
    clock.set(datetime(2027, 10, 28, 1, 0, 1, tzinfo=UTC))  # 30 days before a year
    await app.scheduler.tick()
    assert any("2027-11-27" in t for t in await zhang.replies())
    assert any("张伟" in t and "到期" in t for t in await liu.replies())


async def test_training_dates_and_roles_are_checked(person) -> None:
    officer = await person("李静")
    zhang = await person("张伟")
    assert "只有安全员" in (await zhang.send("/training"))[0]
    await officer.send("/training")
    await officer.press("本单位及下级")
    assert "将来" in (await officer.send("2030-01-01"))[0]
    assert "看不懂" in (await officer.send("昨天"))[0]
    assert "已登记" in (await officer.send("2026-11-20"))[-1]
