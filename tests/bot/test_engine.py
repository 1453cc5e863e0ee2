"""The engine and the store under pressure: untrusted payloads, many people at
once, and the group commit keeping each event's transaction its own."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from conftest import Person
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.engine import Outcome
from bot.model import InboundKind
from bot.store.db import Database

payload_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs"]), max_size=50),
    st.sampled_from(["", "\x00", "/", "/ ", "//check", "/check\x00", "v1:", "\u202eabc", "👷‍♀️🚒"]),
    st.builds(lambda s: "/" + s, st.text(max_size=40)),
    st.builds(lambda n, s: f"v{n}:{s}", st.integers(-5, 50), st.text(max_size=20)),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.sampled_from(list(InboundKind)), payload_text), max_size=12))
async def test_any_payload_gets_an_answer_and_never_crashes(person, app: App, steps) -> None:
    worker: Person = await person("张伟")
    await worker.send("/cancel")
    for kind, text in steps:
        replies = await worker.deliver(kind, text, data={"lat": "x", "nested": {"a": [1]}})
        assert worker.outcome is not Outcome.ERROR
        assert replies, f"no answer to {kind}:{text!r}"
    # Whatever happened, the register is consistent: no answer outside a run.
    orphans = await app.db.read(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM checklist_answers a LEFT JOIN checklist_runs r"
            " ON r.id = a.run_id WHERE r.id IS NULL"
        ).fetchone()[0]
    )
    assert orphans == 0


async def test_text_is_stored_as_sent(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await worker.press("有问题")
    odd = "\u202eمرحبا 👷‍♀️ 漏电\u200d\n第二行\x07\x00"
    await worker.send(odd)
    await worker.press("跳过")
    stored = await app.db.read(lambda c: c.execute("SELECT description FROM hazards").fetchone()[0])
    assert stored == "\u202eمرحبا 👷‍♀️ 漏电\u200d\n第二行"  # control characters dropped


async def test_fifty_people_at_once_no_cross_talk(app: App, org, person) -> None:
    # The demo has 14 people: add 50 workers to 刘强's team.
    rows = [(f"工人{n}", f"+86139{n:08d}") for n in range(50)]

    def add(conn: sqlite3.Connection) -> list[int]:
        unit = conn.execute(
            "SELECT id FROM units WHERE path = '物业服务中心/保安部/一班'"
        ).fetchone()
        ids = []
        for name, phone in rows:
            cursor = conn.execute(
                "INSERT INTO staff (name, phone, unit_id, roles, language, created_at, updated_at)"
                " VALUES (?, ?, ?, 'staff', 'zh-CN', 'x', 'x')",
                (name, phone, unit[0]),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    ids = await app.db.transaction(add)
    workers = []
    for staff_id, (name, _) in zip(ids, rows, strict=True):
        org[name] = staff_id
        workers.append(await person(name))

    async def check(index: int, worker: Person) -> list[str]:
        replies = await worker.send("/check")
        for item in range(6):
            if item == index % 6:
                await worker.press("有问题")
                await worker.send(f"{worker.name} 的问题")
                replies = await worker.press("跳过")
            else:
                replies = await worker.press("正常")
        return replies

    results = await asyncio.gather(*(check(i, w) for i, w in enumerate(workers)))
    for replies in results:
        assert "已完成：✅ 5 项，⚠️ 1 项" in replies[-1]
    hazards = await app.db.read(
        lambda c: c.execute(
            "SELECT s.name, h.description FROM hazards h JOIN staff s ON s.id = h.reported_by"
        ).fetchall()
    )
    assert len(hazards) == 50
    assert all(row["description"] == f"{row['name']} 的问题" for row in hazards)
    per_run = await app.db.read(
        lambda c: c.execute(
            "SELECT r.staff_id, COUNT(a.id) FROM checklist_runs r"
            " JOIN checklist_answers a ON a.run_id = r.id GROUP BY r.id"
        ).fetchall()
    )
    assert len(per_run) == 50 and all(row[1] == 6 for row in per_run)


async def test_failing_unit_of_work_rolls_back_alone(tmp_path) -> None:
    db = await Database.open(tmp_path / "g.db")
    try:
        await db.transaction(lambda c: c.execute("CREATE TABLE t (v TEXT)"))

        def good(value: str):  # type: ignore[no-untyped-def]
            return lambda c: c.execute("INSERT INTO t VALUES (?)", (value,)).rowcount

        def bad(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES ('half')")
            raise ValueError("refused")

        results = await asyncio.gather(
            db.transaction(good("a")),
            db.transaction(bad),
            db.transaction(good("b")),
            return_exceptions=True,
        )
        assert results[0] == 1 and isinstance(results[1], ValueError) and results[2] == 1
        values = await db.read(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
        assert values == ["a", "b"]
    finally:
        await db.close()


async def test_database_file_is_private(tmp_path) -> None:
    db = await Database.open(tmp_path / "private.db")
    await db.close()
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0


async def test_closed_database_refuses_work(tmp_path) -> None:
    db = await Database.open(tmp_path / "c.db")
    await db.close()
    with pytest.raises(RuntimeError):
        await db.read(lambda c: 1)


@pytest.mark.parametrize("setup", [[], ["/check"], ["/check", "⚠️ 有问题"], ["/lang"]])
async def test_huge_and_empty_messages_in_every_state(person, app: App, setup) -> None:
    worker = await person("张伟")
    for text in setup:
        await worker.send(text)
    for text in ["x" * 100_000, "", "   ", "\x00\x01\x02"]:
        replies = await worker.send(text)
        assert worker.outcome in (Outcome.HANDLED, Outcome.REFUSED) and replies
        assert all(len(reply) < 5000 for reply in replies)  # never echoed back in full
