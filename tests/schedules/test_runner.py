"""The running scheduler: an idle bot keeps its log quiet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.app import App


def counting(
    work: Callable[[], Awaitable[Any]], runs: list[int], enough: asyncio.Event
) -> Callable[[], Awaitable[Any]]:
    """`work`, noting each run and saying when it has run three times."""

    async def run() -> Any:
        result = await work()
        runs.append(1)
        if len(runs) >= 3:
            enough.set()
        return result

    return run


async def test_an_idle_scheduler_logs_nothing_at_info(
    app: App, org: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ticks: list[int] = []
    plans: list[int] = []
    ticked, planned = asyncio.Event(), asyncio.Event()
    scheduler = app.scheduler
    scheduler.tick = counting(scheduler.tick, ticks, ticked)  # type: ignore[method-assign]
    scheduler.plan = counting(scheduler.plan, plans, planned)  # type: ignore[method-assign]
    # Start-up may say what it planned; after that, the looking and planning
    # on the scheduler's own timer (ticks of 20 ms, plans every 60 ms) is silent.
    await scheduler.start(tick_seconds=0.02, plan_minutes=0.001)
    caplog.clear()
    ticks.clear()
    plans.clear()
    try:
        await asyncio.wait_for(asyncio.gather(ticked.wait(), planned.wait()), timeout=10)
    finally:
        await scheduler.stop()
    assert len(ticks) >= 3 and len(plans) >= 3
    said = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno == logging.INFO]
    assert said == []
