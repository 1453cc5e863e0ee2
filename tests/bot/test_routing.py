"""A message goes to a channel this deployment runs and on which the person
is reachable (the one they last wrote from first); with none, it waits for
the console and `frontline outbox` says why."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import CHANNEL, START, Person, import_demo

from bot.app import App
from bot.clock import FakeClock, iso
from bot.store import outbox, people
from bot.store.outbox import NewMessage


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    """A deployment that runs only the 'test' channel (no WeCom)."""
    application = await App.open(tmp_path / "frontline.db", {}, clock=clock, served={CHANNEL})
    yield application
    await application.close()


async def bind(app: App, channel: str, user_id: str, staff_id: int, seen: str) -> None:
    def run(conn: sqlite3.Connection) -> None:
        people.bind_identity(conn, channel, user_id, staff_id, seen)
        people.touch_identity(conn, channel, user_id, seen)

    await app.db.transaction(run)


async def report_hazard(worker: Person) -> None:
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("灭火器压力不足")
    await worker.press("跳过")


async def alerts_for(app: App, staff_id: int) -> list[sqlite3.Row]:
    return await app.db.read(
        lambda conn: conn.execute(
            "SELECT channel, address, text FROM outbox WHERE staff_id = ? AND text LIKE '%隐患%'"
            " ORDER BY id",
            (staff_id,),
        ).fetchall()
    )


async def test_an_alert_for_someone_only_on_an_unserved_channel_waits_for_the_console(
    app: App, org: dict[str, int], person
) -> None:
    supervisor = org["刘强"]
    await bind(app, "wecom", "liuqiang", supervisor, iso(START))
    await report_hazard(await person("张伟"))
    [alert] = await alerts_for(app, supervisor)
    assert alert["channel"] is None  # not 'wecom', which this deployment does not run


async def test_an_alert_goes_to_the_served_channel_even_if_another_was_used_last(
    app: App, org: dict[str, int], person
) -> None:
    supervisor = org["刘强"]
    await bind(app, CHANNEL, "u-liu", supervisor, "2026-11-01T00:00:00+00:00")
    await bind(app, "wecom", "liuqiang", supervisor, iso(START))  # newer, but not served
    await report_hazard(await person("张伟"))
    [alert] = await alerts_for(app, supervisor)
    assert (alert["channel"], alert["address"]) == (CHANNEL, "u-liu")


async def test_rows_queued_for_an_unserved_channel_are_routed_again(
    app: App, org: dict[str, int]
) -> None:
    supervisor = org["刘强"]
    await bind(app, CHANNEL, "u-liu", supervisor, iso(START))
    await app.db.transaction(
        lambda conn: outbox.enqueue(
            conn,
            NewMessage(supervisor, "wecom", "liuqiang", "⚠️ 隐患", "queued-by-a-command"),
            iso(START),
        )
    )
    await app.sender._reroute(every_seconds=0)
    [row] = await alerts_for(app, supervisor)
    assert (row["channel"], row["address"]) == (CHANNEL, "u-liu")


async def test_without_a_served_deployment_any_channel_may_be_used(
    tmp_path: Path, clock: FakeClock
) -> None:
    unrestricted = await App.open(tmp_path / "any.db", {}, clock=clock)
    try:
        org = await import_demo(unrestricted)
        await bind(unrestricted, "wecom", "liuqiang", org["刘强"], iso(START))
        route = await unrestricted.db.read(lambda conn: people.reachable_channel(conn, org["刘强"]))
        assert route == ("wecom", "liuqiang")
    finally:
        await unrestricted.close()
