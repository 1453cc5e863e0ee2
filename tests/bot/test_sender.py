"""The sender as the people on the other end see it: every reply arrives once,
a flaky channel is retried on the clock's schedule, a dead channel is given
up on and shown to admins, and a crash never loses or doubles a message."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from conftest import START, Person, demo_database

from bot import cli, roster
from bot.app import App
from bot.clock import FakeClock, iso, parse_iso
from bot.model import Outbound
from bot.sender import PermanentError, TransientError
from bot.store import outbox, people
from bot.store.outbox import NewMessage

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
def org_db(tmp_path: Path) -> Path:
    return demo_database(tmp_path / "org.db")


@pytest.fixture
async def app(
    db_target: Path | str, tmp_path: Path, clock: FakeClock, transport: FakeTransport
) -> AsyncIterator[App]:
    """The shared `app`, with the fake transport as the 'test' channel."""
    application = await App.open(
        db_target, {CHANNEL: transport}, clock=clock, media_dir=tmp_path / "media"
    )
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


async def test_transient_failures_are_retried_for_the_whole_outage_then_given_up(
    person, app: App, transport, clock: FakeClock
) -> None:
    await one_reply(person)
    transport.failures = [TransientError(f"timeout {n}") for n in range(10_000)]
    # A day of failures, well past the old limit of eight attempts: still waiting.
    started = clock.now()
    while clock.now() - started < timedelta(hours=24):
        await app.sender.drain(CHANNEL)
        row = (await rows(app))[0]
        assert row["status"] == "pending"
        clock.set(max(parse_iso(row["next_attempt_at"]), clock.now()))
    assert transport.attempts > 100
    # Backoff is capped: the next try is never more than the cap away.
    assert parse_iso(row["next_attempt_at"]) - clock.now() <= timedelta(
        seconds=app.sender.retry.cap_seconds * 1.2
    )
    # The admin (王建国) was told once that the channel is down, not once per try.
    alerts = await app.db.read(
        lambda conn: conn.execute("SELECT text FROM outbox WHERE text LIKE '%10 分钟%'").fetchall()
    )
    assert len(alerts) == 1
    clock.set(started + app.sender.retry.give_up_after)
    await app.sender.drain(CHANNEL)
    row = (await rows(app))[0]
    assert row["status"] == "failed" and row["last_error"].startswith("gave up after")
    assert "timeout" in row["last_error"]
    assert transport.delivered == []


async def test_when_the_channel_comes_back_everything_goes_at_once_in_order(
    person, app: App, transport, clock: FakeClock
) -> None:
    worker = await one_reply(person)
    for n in range(3):
        await worker.send(f"/lang {'en' if n % 2 else 'zh'}")
    transport.failures = [TransientError("502 Bad Gateway")] * 6
    for _ in range(6):  # backoff grows with each failure of the first row
        await app.sender.drain(CHANNEL)
        clock.advance(timedelta(minutes=5))
    assert transport.delivered == []
    first = (await rows(app))[0]
    clock.set(parse_iso(first["next_attempt_at"]))
    assert await app.sender.drain(CHANNEL) == 4  # the /help reply and three /lang replies
    delivered = [m.id for m in transport.delivered]
    assert delivered == sorted(delivered)
    # The admin heard that the channel was down for 10 minutes, and that it is back.
    told = await app.db.read(
        lambda conn: conn.execute(
            "SELECT text FROM outbox WHERE staff_id != ? ORDER BY id", (worker.staff_id,)
        ).fetchall()
    )
    assert [row["text"][0] for row in told] == ["⚠", "✅"]


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
        restarted = await App.open(
            app.db.path, {CHANNEL: after}, clock=clock, media_dir=tmp_path / "media"
        )
        try:
            await restarted.recover()  # what `frontline run` does first, under its lock
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


async def test_a_sender_stopped_just_as_it_is_woken_stops(app: App) -> None:
    """Cancelled in the same turn of the loop as it was woken, the sender still
    stops (Python 3.11's wait_for returned the wake and dropped the cancel: the
    sender then slept its idle hour, and a shutdown waited for it)."""
    runner = asyncio.create_task(app.sender.run(idle_seconds=3600))
    await asyncio.sleep(0.3)  # idle now
    app.sender.wake()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(runner, 2)
    app.preparer.take()
    building = asyncio.create_task(app.preparer.run(idle_seconds=3600))
    await asyncio.sleep(1.5)  # its font loaded, idle now
    app.preparer.wake()
    building.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(building, 2)


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


async def run_outbox_command(db: Path | str) -> int:
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

    assert await run_outbox_command(app.db.path) == 0
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
    assert await run_outbox_command(app.db.path) == 0
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


# -- fairness: a queue per address ---------------------------------------------------------
class PacedTransport(FakeTransport):
    """One message a second per address, as Telegram allows a private chat."""

    def limit(self, address: str | None) -> tuple[float, float]:
        return 1.0, 1.0


def notices(staff_id: int | None, address: str, count: int, kind: str | None = "notice.due"):
    def queue(conn: sqlite3.Connection) -> None:
        for n in range(count):
            outbox.enqueue(
                conn,
                NewMessage(
                    staff_id,
                    CHANNEL,
                    address,
                    f"通知 {n}：请阅读本周消防通知。" + "内容" * 40,
                    f"{address}:{kind}:{n}",
                    kind=kind,
                ),
                iso(START),
            )

    return queue


async def wait_until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_reply_never_waits_behind_another_persons_backlog(
    tmp_path: Path, clock: FakeClock, org_db
) -> None:
    transport = PacedTransport()
    app = await App.open(org_db, {CHANNEL: transport}, clock=clock)
    runner = asyncio.create_task(app.sender.run())
    try:
        # 200 unique notices to the supervisor's chat, one a second at most.
        await app.db.transaction(notices(None, "backlog", 200, kind=None))
        await wait_until(lambda: len(transport.delivered) >= 1)
        [zhang] = await app.db.read(lambda conn: people.find_staff(conn, "张伟"))
        worker = Person(app, zhang.id, zhang.name)
        await app.db.transaction(
            lambda conn: people.bind_identity(conn, CHANNEL, worker.user_id, zhang.id, iso(START))
        )
        await worker.send("/help")
        await wait_until(lambda: any(m.address == worker.user_id for m in transport.delivered))
        backlog_sent = sum(m.address == "backlog" for m in transport.delivered)
        assert backlog_sent <= 3  # the reply did not wait for the backlog (200 s of it)
    finally:
        await app.sender.stop(grace_seconds=1)
        runner.cancel()
        await app.close()


async def test_a_reply_goes_before_the_persons_own_queued_notices(
    person, app: App, transport
) -> None:
    worker: Person = await person("张伟")
    await app.db.transaction(notices(worker.staff_id, worker.user_id, 3, kind=None))
    await worker.send("/help")
    await app.sender.drain(CHANNEL)
    texts = [m.text for m in transport.delivered]
    assert texts[0].startswith("您可以使用") and len(texts) == 4


async def test_notices_of_one_kind_that_pile_up_go_as_one_digest(
    person, app: App, transport
) -> None:
    worker: Person = await person("刘强")
    await app.db.transaction(notices(worker.staff_id, worker.user_id, 101))
    await app.sender.drain(CHANNEL)
    # All 101 arrive, in a handful of messages rather than 101.
    assert len(transport.delivered) <= 101 // 10
    body = "\n".join(m.text for m in transport.delivered)
    assert all(f"通知 {n}：" in body for n in range(101))
    assert {row["status"] for row in await rows(app)} == {"sent"}


async def test_notices_of_different_kinds_are_not_merged(person, app: App, transport) -> None:
    worker: Person = await person("刘强")
    await app.db.transaction(notices(worker.staff_id, worker.user_id, 2, kind="a"))
    await app.db.transaction(notices(worker.staff_id, worker.user_id, 2, kind="b"))
    await app.sender.drain(CHANNEL)
    assert len(transport.delivered) == 2


async def test_outbox_command_says_why_each_row_waits_and_retry_redrives_failed_rows(
    person, app: App, transport, tmp_path: Path, capsys, cli_env, clock: FakeClock
) -> None:
    clock.set(datetime.now(UTC))  # the command reads the wall clock
    worker: Person = await person("张伟")
    await worker.send("/help")
    transport.failures = [PermanentError("400 chat not found")]
    await app.sender.drain(CHANNEL)
    await worker.send("/help")
    transport.failures = [TransientError("502 Bad Gateway")]
    await app.sender.drain(CHANNEL)
    db = app.db.path

    assert await run_outbox_command(db) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert "400 chat not found" in lines[0] and "失败" in lines[0]
    assert "重试" in lines[1] and "502 Bad Gateway" in lines[1]

    [failed_id] = [row["id"] for row in await rows(app) if row["status"] == "failed"]
    retry = ["outbox", "retry", str(failed_id), "--db", str(db)]
    assert await asyncio.to_thread(cli.main, retry) == 0
    assert "1" in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, retry) == 2  # no longer failed
    capsys.readouterr()
    clock.advance(timedelta(minutes=5))
    assert await app.sender.drain(CHANNEL) == 2
    assert {row["status"] for row in await rows(app)} == {"sent"}
    assert await asyncio.to_thread(cli.main, ["outbox", "retry", "--failed", "--db", str(db)]) == 0
    assert "没有发送失败" in capsys.readouterr().out


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
    assert await run_outbox_command(app.db.path) == 0
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
