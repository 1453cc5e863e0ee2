"""The sender as the people on the other end see it: every reply arrives once,
a flaky channel is retried on the clock's schedule, a dead channel is given
up on and shown to admins, and a crash never loses or doubles a message."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest
from conftest import Person

from bot import cli, roster
from bot.app import App
from bot.model import Outbound
from bot.sender import PermanentError, TransientError
from bot.store import outbox
from bot.store.outbox import NewMessage
from schedules.clock import FakeClock, iso, parse_iso

CHANNEL = "test"


class FakeTransport:
    """A channel that records what it is handed and fails when told to."""

    name = CHANNEL
    per_second = 0.0

    def limit(self, address: str | None) -> tuple[float, float]:
        return 0.0, 0.0

    def __init__(self) -> None:
        self.delivered: list[Outbound] = []
        self.attempts = 0
        self.failures: list[Exception] = []
        self.arrived = asyncio.Event()

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(message)
        self.arrived.set()
        return f"msg-{message.id}"


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock, transport: FakeTransport) -> AsyncIterator[App]:
    """The shared `app`, with the fake transport as the 'test' channel."""
    application = await App.open(tmp_path / "frontline.db", {CHANNEL: transport}, clock=clock)
    yield application
    await application.close()


async def rows(app: App) -> list[sqlite3.Row]:
    return await app.db.read(
        lambda conn: conn.execute(
            "SELECT id, status, attempts, next_attempt_at, last_error, channel_message_id,"
            " idempotency_key FROM outbox ORDER BY id"
        ).fetchall()
    )


async def one_reply(person, name: str = "张伟") -> Person:
    worker: Person = await person(name)
    await worker.send("/help")
    return worker


async def test_reply_is_delivered_once_and_marked_sent(person, app: App, transport) -> None:
    worker = await one_reply(person)
    assert await app.sender.drain(CHANNEL) == 1
    assert len(transport.delivered) == 1
    message = transport.delivered[0]
    assert message.address == worker.user_id and "/check" in message.text
    [row] = await rows(app)
    assert row["status"] == "sent" and row["channel_message_id"] == f"msg-{row['id']}"

    assert await app.sender.drain(CHANNEL) == 0
    assert len(transport.delivered) == 1


async def test_transient_failure_is_retried_when_its_time_comes(
    person, app: App, transport, clock: FakeClock
) -> None:
    await one_reply(person)
    transport.failures = [TransientError("502 Bad Gateway")]
    assert await app.sender.drain(CHANNEL) == 0
    [row] = await rows(app)
    assert row["status"] == "pending" and row["last_error"] == "502 Bad Gateway"
    due = parse_iso(row["next_attempt_at"])
    assert due > clock.now()

    assert await app.sender.drain(CHANNEL) == 0
    clock.set(due - timedelta(milliseconds=1))
    assert await app.sender.drain(CHANNEL) == 0
    assert transport.attempts == 1 and transport.delivered == []

    clock.set(due)
    assert await app.sender.drain(CHANNEL) == 1
    assert len(transport.delivered) == 1
    [row] = await rows(app)
    assert row["status"] == "sent" and row["attempts"] == 2


async def test_flood_limit_retry_after_is_honoured(
    person, app: App, transport, clock: FakeClock
) -> None:
    await one_reply(person)
    failed_at = clock.now()
    transport.failures = [TransientError("429 Too Many Requests", retry_after=30)]
    await app.sender.drain(CHANNEL)
    [row] = await rows(app)
    assert row["next_attempt_at"] == iso(failed_at + timedelta(seconds=30))

    clock.advance(timedelta(seconds=29))
    assert await app.sender.drain(CHANNEL) == 0
    clock.advance(timedelta(seconds=1))
    assert await app.sender.drain(CHANNEL) == 1
    assert len(transport.delivered) == 1


async def test_gives_up_after_max_attempts_and_keeps_the_reason(
    person, app: App, transport, clock: FakeClock
) -> None:
    await one_reply(person)
    limit = app.sender.retry.max_attempts
    transport.failures = [TransientError(f"timeout {n}") for n in range(limit + 5)]
    for _ in range(limit + 3):
        await app.sender.drain(CHANNEL)
        clock.advance(timedelta(hours=1))  # past any backoff
    [row] = await rows(app)
    assert row["status"] == "failed"
    assert row["attempts"] == limit and transport.attempts == limit
    assert f"timeout {limit - 1}" in row["last_error"]
    assert transport.delivered == []


async def test_permanent_failure_is_final(person, app: App, transport, clock) -> None:
    await one_reply(person)
    transport.failures = [PermanentError("403 bot was blocked by the user")]
    assert await app.sender.drain(CHANNEL) == 0
    [row] = await rows(app)
    assert row["status"] == "failed" and row["last_error"] == "403 bot was blocked by the user"

    clock.advance(timedelta(days=1))
    assert await app.sender.drain(CHANNEL) == 0
    assert transport.attempts == 1


async def test_transport_bug_fails_the_row_and_the_sender_carries_on(
    person, app: App, transport
) -> None:
    worker: Person = await person("张伟")
    await worker.send("/start")  # a welcome and the help: two rows
    transport.failures = [RuntimeError("boom")]
    assert await app.sender.drain(CHANNEL) == 1
    first, second = await rows(app)
    assert first["status"] == "failed" and "RuntimeError" in first["last_error"]
    assert second["status"] == "sent"
    assert [message.id for message in transport.delivered] == [second["id"]]


async def test_rows_a_dead_process_was_sending_are_delivered_once_after_restart(
    person, app: App, tmp_path: Path, clock: FakeClock
) -> None:
    worker: Person = await person("张伟")
    await worker.send("/start")
    # The process claims the rows and dies before the channel confirms them.
    claimed = await app.db.transaction(
        lambda conn: outbox.claim_due(conn, CHANNEL, iso(clock.now()), 100)
    )
    assert len(claimed) == 2
    assert {row["status"] for row in await rows(app)} == {"sending"}

    async def restart_and_drain() -> list[int]:
        after = FakeTransport()
        restarted = await App.open(tmp_path / "frontline.db", {CHANNEL: after}, clock=clock)
        try:
            await restarted.sender.drain(CHANNEL)
        finally:
            await restarted.close()
        return [message.id for message in after.delivered]

    assert await restart_and_drain() == [row.id for row in claimed]
    assert {row["status"] for row in await rows(app)} == {"sent"}
    assert await restart_and_drain() == []  # restarting again sends nothing twice


async def test_wake_delivers_without_waiting_for_the_idle_tick(person, app: App, transport) -> None:
    worker: Person = await person("张伟")
    runner = asyncio.create_task(app.sender.run(idle_seconds=3600))
    try:
        await worker.send("/help")
        await asyncio.wait_for(transport.arrived.wait(), 2)
        # Now the sender is idle for an hour unless woken.
        transport.arrived.clear()
        await worker.send("/start")
        await asyncio.wait_for(transport.arrived.wait(), 2)
        while len(transport.delivered) < 3:  # /start queues two rows
            transport.arrived.clear()
            await asyncio.wait_for(transport.arrived.wait(), 2)
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    keys = [m.idempotency_key for m in transport.delivered]
    assert len(keys) == 3 and len(set(keys)) == 3


# -- what admins see: `frontline outbox` ----------------------------------------------
@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The command reads its settings from the environment and the working
    directory: make both empty."""
    for name in ("DB", "TIMEZONE", "LANGUAGE", "MEDIA_DIR", "LOG_LEVEL", "CONFIG"):
        monkeypatch.delenv(f"FRONTLINE_{name}", raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


async def run_outbox_command(db: Path) -> int:
    # The command runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(cli.main, ["outbox", "--db", str(db)])


async def test_outbox_command_lists_held_and_failed_messages(
    person, app: App, transport, tmp_path: Path, capsys, cli_env
) -> None:
    worker: Person = await person("张伟")  # 刘强, the supervisor, has no channel at all
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("灭火器压力不足")
    await worker.press("跳过")
    transport.failures = [PermanentError("403 bot was blocked by the user")]
    await app.sender.drain(CHANNEL)

    assert await run_outbox_command(tmp_path / "frontline.db") == 0
    lines = capsys.readouterr().out.splitlines()
    held = [line for line in lines if "刘强" in line]
    failed = [line for line in lines if "张伟" in line]
    assert len(held) == 1 and len(failed) == 1, lines
    assert "待发送" in held[0] and "无可用渠道" in held[0] and "隐患报告" in held[0]
    assert "失败" in failed[0] and "403 bot was blocked by the user" in failed[0]
    assert CHANNEL in failed[0]


async def test_outbox_command_says_when_nothing_is_waiting(
    person, app: App, transport, tmp_path: Path, capsys, cli_env
) -> None:
    await one_reply(person)
    await app.sender.drain(CHANNEL)
    assert await run_outbox_command(tmp_path / "frontline.db") == 0
    assert capsys.readouterr().out.strip() == "没有待发送或发送失败的消息。"


async def test_messages_to_one_person_keep_their_order_through_a_retry(
    person, app: App, transport, clock
) -> None:
    worker: Person = await person("张伟")
    await worker.send("/check")  # two replies: the intro and item 1
    await worker.send("/help")  # and more behind them
    queued = [row["id"] for row in await rows(app)]
    transport.failures = [TransientError("timeout")]
    assert await app.sender.drain(CHANNEL) == 0  # the first failed; none overtook it
    assert transport.delivered == []
    assert all(row["attempts"] == (1 if row["id"] == queued[0] else 0) for row in await rows(app))
    clock.advance(timedelta(minutes=5))
    assert await app.sender.drain(CHANNEL) == len(queued)
    assert [m.id for m in transport.delivered] == queued


async def test_zero_retry_after_still_waits_a_moment(person, app: App, transport, clock) -> None:
    await one_reply(person)
    transport.failures = [TransientError("flood", retry_after=0)]
    assert await app.sender.drain(CHANNEL) == 0
    assert transport.attempts == 1  # not burnt through every attempt in one drain
    clock.advance(timedelta(seconds=1))
    assert await app.sender.drain(CHANNEL) == 1


# -- deactivation: what was queued for someone who left stays unsent --------------------
async def import_roster_without(app: App, tmp_path: Path, clock: FakeClock, name: str) -> None:
    """`frontline roster import --deactivate-missing` with the demo roster minus one person."""
    demo = resources.files("bot.data").joinpath("demo_roster.csv").read_text(encoding="utf-8")
    path = tmp_path / "roster.csv"
    path.write_text(
        "".join(line for line in demo.splitlines(keepends=True) if not line.startswith(name)),
        encoding="utf-8",
    )
    await roster.import_roster_file(
        app.db, path, deactivate_missing=True, default_language="zh-CN", now=clock.now()
    )


async def test_deactivated_person_receives_nothing_that_was_queued(
    person, app: App, transport, clock: FakeClock, tmp_path: Path, capsys, cli_env
) -> None:
    zhang, chen = await person("张伟"), await person("陈磊")
    await zhang.send("/help")
    await chen.send("/help")
    await app.db.transaction(
        lambda conn: outbox.enqueue(
            conn,
            NewMessage(zhang.staff_id, None, None, "held for a channel", "held:zhang"),
            iso(clock.now()),
        )
    )

    await import_roster_without(app, tmp_path, clock, "张伟")
    assert await app.sender.drain(CHANNEL) == 1
    assert [m.address for m in transport.delivered] == [chen.user_id]
    left = await app.db.read(
        lambda conn: conn.execute(
            "SELECT status, last_error FROM outbox WHERE staff_id = ?", (zhang.staff_id,)
        ).fetchall()
    )
    assert len(left) == 2
    assert {(row["status"], row["last_error"]) for row in left} == {
        ("cancelled", "deactivated: missing_from_roster")
    }
    # Admins see them, as cancelled, with the reason.
    assert await run_outbox_command(tmp_path / "frontline.db") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "张伟" in line]
    assert len(lines) == 2
    assert all("已取消" in line and "deactivated: missing_from_roster" in line for line in lines)


async def test_a_retry_does_not_revive_a_message_cancelled_in_flight(
    person, app: App, transport, clock: FakeClock, tmp_path: Path
) -> None:
    """Deactivated while the sender was handing the message over and the
    channel asked to retry: the message stays cancelled."""
    await one_reply(person)
    deliver = transport.deliver

    async def leave_then_fail(message: Outbound, replaces: str | None) -> str | None:
        transport.deliver = deliver
        await import_roster_without(app, tmp_path, clock, "张伟")
        raise TransientError("timeout")

    transport.deliver = leave_then_fail
    assert await app.sender.drain(CHANNEL) == 0
    clock.advance(timedelta(hours=1))
    assert await app.sender.drain(CHANNEL) == 0
    assert transport.delivered == []
    [row] = await rows(app)
    assert row["status"] == "cancelled"
