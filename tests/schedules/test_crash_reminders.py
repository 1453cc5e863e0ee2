"""Killed with 1,000 reminders due in the same minute: after a restart every
one is acted on exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from conftest import START, import_demo

from bot.app import App
from bot.clock import FakeClock, iso
from bot.store import hazards, reminders

COUNT = 1000

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime
    from bot.app import App
    from bot.clock import FakeClock

    async def main():
        clock = FakeClock(datetime.fromisoformat(sys.argv[2]))
        app = await App.open(sys.argv[1], {}, clock=clock)
        app.scheduler.batch = 50
        def committed():
            print("committed", flush=True)
        app.scheduler.on_commit = committed
        await app.scheduler.tick()
        print("finished", flush=True)

    asyncio.run(main())
    """
)


async def test_reminders_fire_exactly_once_across_a_kill(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    app = await App.open(db, {})
    org = await import_demo(app)
    due = START + timedelta(minutes=1)

    def fill(conn):  # type: ignore[no-untyped-def]
        unit = conn.execute("SELECT id FROM units WHERE path = '物业服务中心/保安部'").fetchone()[0]
        for n in range(COUNT):
            hazard = hazards.create(
                conn,
                unit_id=unit,
                reported_by=org["张伟"],
                source="test",
                description=f"隐患{n}",
                photo=None,
                severity="general",
                deadline_at=iso(due),
                now=iso(START),
            )
            reminders.schedule(
                conn,
                kind="hazard_overdue",
                due_at=iso(due + timedelta(seconds=n % 60)),
                target={"hazard": hazard},
                key=f"hazard:{hazard}:hazard_overdue",
                now=iso(START),
            )

    await app.db.transaction(fill)
    await app.close()

    later = iso(due + timedelta(minutes=2))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), later],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "committed"  # one batch is in
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    app = await App.open(db, {}, clock=FakeClock(START + timedelta(minutes=3)))
    try:
        partial = await app.db.read(lambda c: reminders.counts(c))
        assert 0 < partial.get("done", 0) < COUNT, partial
        await app.scheduler.tick()
        states = await app.db.read(lambda c: reminders.counts(c))
        assert states == {"done": COUNT}
        per_hazard = await app.db.read(
            lambda c: c.execute(
                "SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM outbox"
                " WHERE idempotency_key LIKE 'hazard:%:overdue:%'"
            ).fetchone()
        )
        # One overdue notice to 刘强, 保安部's supervisor, per hazard: none lost, none twice.
        assert tuple(per_hazard) == (COUNT, COUNT)
    finally:
        await app.close()
