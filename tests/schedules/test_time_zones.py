"""A day of reminders keeps local time: units that set no zone follow the
configured default (FRONTLINE_TIMEZONE), a unit with its own zone follows
that one; prompts arrive at the local hour and every time they show is local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import CHANNEL, Person, import_demo

from bot.app import App
from bot.clock import FakeClock, iso
from bot.config import load_settings
from bot.store import people, trainings

FRIDAY = "2026-11-27"
# Friday 00:00 in Urumqi (UTC+6) and in London (UTC+0 in November).
URUMQI_MIDNIGHT = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
LONDON_MIDNIGHT = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)


async def live_through(app: App, clock: FakeClock, hours: int) -> None:
    """The scheduler's life for `hours`: plan on the hour, look every five minutes."""
    end = clock.now() + timedelta(hours=hours)
    while clock.now() < end:
        if clock.now().minute == 0:
            await app.scheduler.plan()
        await app.scheduler.tick()
        clock.advance(timedelta(minutes=5))


async def received(app: App, staff_id: int) -> list[tuple[str, str]]:
    """(UTC minute queued, text) of everything queued for a person."""
    rows = await app.db.read(
        lambda conn: conn.execute(
            "SELECT created_at, text FROM outbox WHERE staff_id = ? ORDER BY id", (staff_id,)
        ).fetchall()
    )
    return [(str(row["created_at"])[:16], str(row["text"])) for row in rows]


async def first(app: App, staff_id: int, needle: str) -> tuple[str, str]:
    found = [(at, text) for at, text in await received(app, staff_id) if needle in text]
    assert found, f"nothing with {needle!r} for staff {staff_id}"
    return found[0]


async def bound(app: App, staff_id: int, name: str) -> Person:
    someone = Person(app, staff_id, name)
    await app.db.transaction(
        lambda conn: people.bind_identity(
            conn, CHANNEL, someone.user_id, staff_id, iso(URUMQI_MIDNIGHT)
        )
    )
    return someone


async def report_hazard(worker: Person) -> None:
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("消防通道堵塞")
    await worker.press("跳过")


async def plan_drill(officer: Person, when: str) -> None:
    await officer.send("/drill")
    await officer.send(when)
    await officer.press("物业服务中心/保安部")
    await officer.press("消防演练")


@pytest.fixture
async def urumqi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[App, FakeClock, dict[str, int]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRONTLINE_TIMEZONE", "Asia/Urumqi")
    settings = load_settings(db=tmp_path / "urumqi.db")
    clock = FakeClock(URUMQI_MIDNIGHT)
    app = await App.open(settings.db, {}, clock=clock, timezone=settings.timezone)
    org = await import_demo(app)
    yield app, clock, org  # type: ignore[misc]
    await app.close()


async def test_a_day_of_reminders_follows_the_configured_default_zone(urumqi) -> None:
    app, clock, org = urumqi
    # 陈磊's yearly training runs out on 27 December: he hears 30 days ahead, at 09:00.
    await app.db.transaction(
        lambda conn: trainings.record(
            conn, [org["陈磊"]], "fire", "2025-12-27", org["李静"], iso(clock.now())
        )
    )
    await live_through(app, clock, hours=10)  # to 10:00 in Urumqi
    zhang = await bound(app, org["张伟"], "张伟")
    officer = await bound(app, org["李静"], "李静")
    await report_hazard(zhang)
    await plan_drill(officer, f"{FRIDAY} 15:00")
    await live_through(app, clock, hours=14)  # to midnight

    # The office calendar's 08:30 shift, in Urumqi.
    at, _ = await first(app, org["张伟"], "岗前安全自查")
    assert at == f"{FRIDAY}T02:30"
    at, digest = await first(app, org["刘强"], "📋")
    assert at == f"{FRIDAY}T03:30" and f"{FRIDAY} 08:30 班" in digest
    # The supervisor's daily inspection: reminded at 09:00, due at 17:00.
    at, duty = await first(app, org["刘强"], "日常安全检查")
    assert at == f"{FRIDAY}T03:00" and f"{FRIDAY} 17:00" in duty
    # The hazard is due at the end of the local day; two hours before, the reminder.
    at, due_soon = await first(app, org["刘强"], "快到了")
    assert at == f"{FRIDAY}T16:00" and f"{FRIDAY} 23:59" in due_soon
    # The drill at 15:00, planned at 10:00, is announced at once (its three days'
    # notice has passed) and again an hour before, with its local time.
    notices = [(at, text) for at, text in await received(app, org["张伟"]) if "演练预告" in text]
    assert [at for at, _ in notices] == [f"{FRIDAY}T04:00", f"{FRIDAY}T08:00"]
    assert all(f"{FRIDAY} 15:00" in text for _, text in notices)
    at, _ = await first(app, org["陈磊"], "培训")
    assert at == f"{FRIDAY}T03:00"
    # The yearly drill watch looks at 09:00 on 1 March, in the default zone.
    watch = await app.db.read(
        lambda conn: conn.execute(
            "SELECT due_at FROM reminders WHERE idempotency_key = 'drill-watch:2027:planned'"
        ).fetchone()
    )
    assert watch["due_at"].startswith("2027-03-01T03:00")


async def test_a_unit_in_london_keeps_london_time_and_the_others_the_default(
    app: App, clock: FakeClock, org: dict[str, int], person
) -> None:
    await app.db.transaction(
        lambda conn: conn.execute(
            "UPDATE units SET timezone = 'Europe/London' WHERE path = '物业服务中心/保安部'"
        )
    )
    clock.set(LONDON_MIDNIGHT)
    await live_through(app, clock, hours=10)  # to 10:00 in London
    zhang = await person("张伟")
    await report_hazard(zhang)
    await live_through(app, clock, hours=14)

    # 一班 inherits London from 保安部.
    at, _ = await first(app, org["张伟"], "岗前安全自查")
    assert at == f"{FRIDAY}T08:30"
    at, digest = await first(app, org["刘强"], "📋")
    assert at == f"{FRIDAY}T09:30" and f"{FRIDAY} 08:30 班" in digest
    at, duty = await first(app, org["刘强"], "日常安全检查")
    assert at == f"{FRIDAY}T09:00" and f"{FRIDAY} 17:00" in duty
    at, due_soon = await first(app, org["刘强"], "快到了")
    assert at == f"{FRIDAY}T22:00" and f"{FRIDAY} 23:59" in due_soon
    # 工程部 set no zone: Shanghai, the default, as before.
    at, duty = await first(app, org["赵敏"], "日常安全检查")
    assert at == f"{FRIDAY}T01:00" and f"{FRIDAY} 17:00" in duty
