"""Home-visit administration through the engine (REGULATIONS §5): a
supervisor's request, the worker's answer, reassignment after a refusal,
follow-ups with poor scores flagged to the centre leader, and /visits."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from conftest import Outcome, Person

from bot.app import App
from bot.clock import FakeClock, iso
from handlers.visit_request import parse_end, window_text
from handlers.visit_views import week_bounds

CENTRE = "物业服务中心/长者服务中心"
MakePerson = Callable[[str], Awaitable[Person]]


async def add_client(
    app: App,
    name: str = "张桂芳",
    number: str = "C001",
    workers: tuple[int, ...] = (),
    services: tuple[str, ...] = ("meal", "cleaning"),
    unit: str = CENTRE,
) -> int:
    def insert(conn: sqlite3.Connection) -> int:
        unit_id = conn.execute("SELECT id FROM units WHERE path = ?", (unit,)).fetchone()[0]
        client_id = conn.execute(
            "INSERT INTO clients (number, name, address, lat, lon, unit_id, services,"
            " created_at, updated_at) VALUES (?, ?, '幸福路 8 号 3 楼', 31.2, 121.4, ?, ?, ?, ?)",
            (number, name, unit_id, json.dumps(list(services)), "2026-11-01", "2026-11-01"),
        ).lastrowid
        for worker in workers:
            conn.execute(
                "INSERT INTO client_workers (client_id, staff_id) VALUES (?, ?)",
                (client_id, worker),
            )
        return int(client_id or 0)

    return await app.db.transaction(insert)


async def add_visit(
    app: App,
    client_id: int,
    worker_id: int,
    checkin: datetime,
    minutes: int | None = 45,
    exception: str | None = None,
    request_id: int | None = None,
) -> int:
    def insert(conn: sqlite3.Connection) -> int:
        unit_id = conn.execute("SELECT unit_id FROM clients WHERE id = ?", (client_id,)).fetchone()
        checkout = iso(checkin + timedelta(minutes=minutes)) if minutes is not None else None
        return int(
            conn.execute(
                "INSERT INTO visits (client_id, worker_id, unit_id, request_id, state, checkin_at,"
                " checkin_exception, checkout_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client_id,
                    worker_id,
                    unit_id[0],
                    request_id,
                    "done" if checkout else "open",
                    iso(checkin),
                    exception,
                    checkout,
                    iso(checkin),
                ),
            ).lastrowid
            or 0
        )

    return await app.db.transaction(insert)


async def add_planned(
    app: App, client_id: int, worker_id: int, starts: datetime, state: str = "accepted"
) -> int:
    return await app.db.transaction(
        lambda conn: int(
            conn.execute(
                "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
                " worker_id, state, created_at) VALUES (?, 'regular', '[\"meal\"]', ?, ?, ?, ?, ?)",
                (
                    client_id,
                    iso(starts),
                    iso(starts + timedelta(hours=1)),
                    worker_id,
                    state,
                    "2026-11-01",
                ),
            ).lastrowid
            or 0
        )
    )


async def request_row(app: App, request_id: int = 1) -> dict[str, Any]:
    row = await app.db.read(
        lambda c: c.execute("SELECT * FROM visit_requests WHERE id = ?", (request_id,)).fetchone()
    )
    return dict(row)


async def audit(app: App, entity: str, entity_id: int = 1) -> list[str]:
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT action FROM audit_log WHERE entity = ? AND entity_id = ? ORDER BY id",
            (entity, entity_id),
        ).fetchall()
    )
    return [row[0] for row in rows]


async def file_request(supervisor: Person, worker: str = "马秀英") -> list[str]:
    await supervisor.send("/request")
    await supervisor.send("张桂")
    await supervisor.press("张桂芳 · C001")
    await supervisor.press("助餐")
    await supervisor.press("其他服务")
    await supervisor.press("陪伴聊天")
    await supervisor.press("完成")
    await supervisor.send("11-28 9:00")
    await supervisor.send("11:00")
    return await supervisor.press(worker)


# -- pure rules ----------------------------------------------------------------------------------
def test_end_is_a_time_on_the_start_day_or_a_full_date() -> None:
    now = datetime.fromisoformat("2026-11-27T01:00:00+00:00")
    starts = datetime.fromisoformat("2026-11-28T01:00:00+00:00")  # 09:00 in Shanghai
    ends = parse_end("11:00", starts, "Asia/Shanghai", now)
    assert window_text(starts, ends, "Asia/Shanghai") == "2026-11-28 09:00–11:00"
    later = parse_end("2026-11-29 08:00", starts, "Asia/Shanghai", now)
    assert window_text(starts, later, "Asia/Shanghai") == "2026-11-28 09:00–2026-11-29 08:00"


def test_week_runs_monday_to_sunday_in_local_time() -> None:
    start, end = week_bounds(datetime.fromisoformat("2026-11-29T15:59:00+00:00"), "Asia/Shanghai")
    assert iso(start) == "2026-11-22T16:00:00.000000+00:00"  # Monday 23rd, 00:00 local
    assert end - start == timedelta(days=7)


# -- /request and the worker's answer -----------------------------------------------------------
async def test_request_accepted_plans_the_visit_reminders(
    person: MakePerson, app: App, org: dict[str, int]
) -> None:
    sun, ma = await person("孙丽"), await person("马秀英")
    await add_client(app, workers=(org["马秀英"],))
    replies = await file_request(sun)
    assert "上门服务请求 #1 已派给 马秀英" in replies[-1]
    assert "2026-11-28 09:00–11:00" in replies[-1]
    row = await request_row(app)
    assert (row["origin"], row["state"], row["worker_id"]) == ("request", "assigned", org["马秀英"])
    assert json.loads(row["services"]) == ["meal", "companionship"]
    assert row["starts_at"] == "2026-11-28T01:00:00.000000+00:00"
    told = (await ma.replies())[-1]
    assert "孙丽 派给您上门服务 #1" in told and "幸福路 8 号" in told and "助餐、陪伴聊天" in told
    assert ("✅ 接受", "/vr 1 accept") in ma.last_buttons
    assert ("❌ 拒绝", "/vr 1 decline") in ma.last_buttons

    assert "已接受上门服务 #1" in (await ma.press("接受"))[-1]
    row = await request_row(app)
    assert row["state"] == "accepted" and row["decided_at"]
    assert "马秀英 已接受上门服务 #1" in (await sun.replies())[-1]
    reminders = await app.db.read(
        lambda c: c.execute(
            "SELECT kind FROM reminders WHERE idempotency_key LIKE 'visitreq:1:%'"
            " AND state = 'pending' ORDER BY due_at"
        ).fetchall()
    )
    assert [r[0] for r in reminders] == ["visit_upcoming", "visit_no_checkin", "visit_missed"]
    assert await audit(app, "visit_request") == ["created", "accepted"]

    # A second press changes nothing and says why.
    replies = await ma.send("/vr 1 accept")
    assert ma.outcome is Outcome.REFUSED and "已接受" in replies[0]
    replies = await ma.send("/vr 1 decline")
    assert "无需再次处理" in replies[0]
    assert (await request_row(app))["state"] == "accepted"
    assert await audit(app, "visit_request") == ["created", "accepted"]


async def test_only_the_assigned_worker_may_answer(
    person: MakePerson, app: App, org: dict[str, int]
) -> None:
    sun, he, liu = await person("孙丽"), await person("何桂兰"), await person("刘强")
    await add_client(app, workers=(org["马秀英"],))
    await file_request(sun)
    replies = await he.send("/vr 1 accept")
    assert he.outcome is Outcome.REFUSED and "不是派给您的" in replies[0]
    replies = await sun.send("/vr 1 accept")
    assert "不是派给您的" in replies[0]
    # Someone outside elder care cannot act on the request, read it, or learn it exists.
    for args in ("1 accept", "1 decline", "1 reassign", "1"):
        assert await liu.send(f"/vr {args}") == ["没有找到上门服务请求 1。"]
    assert await liu.send("/vr 999 accept") == ["没有找到上门服务请求 999。"]
    assert "待护理员确认" in (await sun.send("/vr 1"))[0]
    assert (await request_row(app))["state"] == "assigned"


async def test_decline_with_reason_tells_the_supervisor_who_reassigns(
    person: MakePerson, app: App, org: dict[str, int]
) -> None:
    sun, ma, he = await person("孙丽"), await person("马秀英"), await person("何桂兰")
    await add_client(app, workers=(org["马秀英"],))
    await file_request(sun)
    await ma.replies()
    assert "原因" in (await ma.press("拒绝"))[-1]
    assert "已拒绝上门服务 #1" in (await ma.send("那天要去医院复查"))[-1]
    row = await request_row(app)
    assert (row["state"], row["note"]) == ("declined", "那天要去医院复查")
    told = (await sun.replies())[-1]
    assert "马秀英 拒绝了上门服务 #1" in told and "那天要去医院复查" in told
    assert ("🔁 改派", "/vr 1 reassign") in sun.last_buttons

    await sun.press("改派")
    assert "已改派给 何桂兰" in (await sun.press("何桂兰"))[-1]
    row = await request_row(app)
    assert (row["state"], row["worker_id"], row["note"]) == ("assigned", org["何桂兰"], None)
    assert "孙丽 派给您上门服务 #1" in (await he.replies())[-1]
    # The old buttons are dead: the first worker no longer answers, and a
    # second reassign changes nothing.
    assert "不是派给您的" in (await ma.send("/vr 1 accept"))[0]
    assert "不需要改派" in (await sun.send("/vr 1 reassign"))[0]
    assert await audit(app, "visit_request") == ["created", "declined", "reassigned"]
    assert "已接受" in (await he.press("接受"))[-1]


async def test_end_before_start_and_past_start_are_refused(
    person: MakePerson, app: App, org: dict[str, int]
) -> None:
    sun = await person("孙丽")
    await add_client(app)
    await sun.send("/request C001")
    await sun.press("张桂芳")
    assert "至少选择一项" in (await sun.press("完成"))[0]
    await sun.press("保洁")
    await sun.press("完成")
    replies = await sun.send("11-26 09:00")
    assert sun.outcome is Outcome.REFUSED and "已经过去" in replies[0]
    await sun.send("2026-11-28 09:00")
    replies = await sun.send("08:30")
    assert "不晚于开始时间" in replies[0] and "结束" in replies[-1]
    replies = await sun.send("09:00")
    assert "不晚于开始时间" in replies[0]
    replies = await sun.send("10:30")
    assert "派给哪位护理员" in replies[-1]
    assert [label for label, _ in sun.last_buttons] == [
        "何桂兰",
        "马秀英",
    ]  # none assigned: by name
    count = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM visit_requests").fetchone())
    assert count[0] == 0


# -- /followup ------------------------------------------------------------------------------------
async def test_low_follow_up_score_reaches_the_centre_leader(
    person: MakePerson, app: App, org: dict[str, int], clock: FakeClock
) -> None:
    sun, zheng = await person("孙丽"), await person("郑华")
    client = await add_client(app)
    await add_visit(app, client, org["马秀英"], clock.now() - timedelta(days=20))  # too old
    first = await add_visit(app, client, org["马秀英"], clock.now() - timedelta(days=2))
    await add_visit(app, client, org["何桂兰"], clock.now() - timedelta(days=1))

    await sun.send("/followup")
    labels = [label for label, _ in sun.last_buttons]
    assert labels == ["张桂芳 · 何桂兰 · 11-26 09:00", "张桂芳 · 马秀英 · 11-25 09:00"]
    await sun.press("马秀英")
    await sun.press("2")
    replies = await sun.send("护理员态度冷淡，没有按时到")
    assert "回访已登记" in replies[-1] and "满意度 2 分" in replies[-1]
    alert = (await zheng.replies())[-1]
    assert "回访满意度低：2 分" in alert and "张桂芳（C001）" in alert
    assert "马秀英" in alert and "2026-11-25 09:00" in alert and "护理员态度冷淡" in alert
    saved = await app.db.read(
        lambda c: c.execute("SELECT visit_id, satisfaction FROM visit_followups").fetchall()
    )
    assert [tuple(r) for r in saved] == [(first, 2)]
    assert await audit(app, "visit", first) == ["followup"]

    # A good score is recorded without alarming anyone; then nothing is left.
    await sun.send("/followup")
    assert [label for label, _ in sun.last_buttons] == ["张桂芳 · 何桂兰 · 11-26 09:00"]
    await sun.press("何桂兰")
    await sun.press("5")
    assert "满意度 5 分" in (await sun.press("无意见"))[-1]
    assert await zheng.replies() == []
    assert "没有待回访" in (await sun.send("/followup"))[0]


# -- /visits --------------------------------------------------------------------------------------
async def test_visits_shows_the_week_to_worker_and_supervisor(
    person: MakePerson, app: App, org: dict[str, int], clock: FakeClock
) -> None:
    ma, sun = await person("马秀英"), await person("孙丽")
    client = await add_client(app)
    other = await add_client(app, name="李德福", number="C002")
    now = clock.now()  # Friday 09:00 in Shanghai
    await add_visit(app, client, org["马秀英"], now - timedelta(days=7))  # last week
    await add_visit(app, client, org["马秀英"], now - timedelta(days=3), minutes=50)
    far = await add_visit(app, other, org["马秀英"], now - timedelta(days=2), exception="far")
    await add_visit(app, client, org["何桂兰"], now - timedelta(days=1), minutes=30)
    await add_planned(app, other, org["马秀英"], now - timedelta(hours=2))  # missed
    await add_planned(app, client, org["马秀英"], now + timedelta(days=1), state="assigned")
    visited = await add_planned(app, client, org["马秀英"], now - timedelta(days=3))
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE visits SET request_id = ? WHERE checkin_at = ?",
            (visited, iso(now - timedelta(days=3))),
        )
    )
    await app.db.transaction(
        lambda c: c.execute(
            "INSERT INTO visit_notes (visit_id, kind, unusual_kind, text, at)"
            " VALUES (?, 'unusual', 'fall', '老人摔倒', ?)",
            (far, iso(now - timedelta(days=2))),
        )
    )

    text = (await ma.send("/visits"))[0]
    assert "本周（11-23 至 11-29）" in text
    assert "• 11-25 09:00 李德福 45 分钟 ⚠️" in text
    assert "• 11-24 09:00 张桂芳 50 分钟" in text
    assert "11-20" not in text  # last week's visit
    assert "待上门：\n• 11-28 09:00–10:00 张桂芳（待确认）" in text
    assert "未按时上门：\n• 11-27 07:00–08:00 李德福" in text

    text = (await sun.send("/visits"))[0]
    assert "完成 3 次，定位异常 1 次，未按时上门 1 次，异常情况报告 1 条" in text
    assert "定位异常：\n• 11-25 09:00 李德福 — 马秀英 45 分钟 ⚠️" in text
    assert "未按时上门：\n• 11-27 07:00–08:00 李德福 — 马秀英" in text
    assert "• 11-26 09:00 张桂芳 — 何桂兰 30 分钟" in text
    assert "第 " not in text  # one page holds it all

    zheng = await person("郑华")
    assert "完成 3 次" in (await zheng.send("/visits"))[0]
    assert "只有护理员" in (await (await person("张伟")).send("/visits"))[0]


async def test_english_worker_answers_and_reads_the_week_in_english(
    person: MakePerson, app: App, org: dict[str, int], clock: FakeClock
) -> None:
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE staff SET roles = 'care_worker', unit_id ="
            " (SELECT id FROM units WHERE path = ?) WHERE id = ?",
            (f"{CENTRE}/上门服务组", org["James Wilson"]),
        )
    )
    sun, james = await person("孙丽"), await person("James Wilson")
    await add_client(app, workers=(org["James Wilson"],))
    await file_request(sun, worker="James Wilson")
    told = (await james.replies())[-1]
    assert "孙丽 asks you to make home visit #1" in told
    assert "Meal help, Companionship" in told and "2026-11-28 09:00–11:00" in told
    assert "You accepted home visit #1" in (await james.press("Accept"))[-1]
    assert "already “accepted”" in (await james.send("/vr 1 accept"))[0]
    await add_visit(app, 1, org["James Wilson"], clock.now() - timedelta(days=1), minutes=40)
    text = (await james.send("/visits"))[0]
    assert "My home visits this week (11-23 to 11-29)" in text
    assert "• 11-26 09:00 张桂芳 40 min" in text
    assert "Coming:\n• 11-28 09:00–11:00 张桂芳" in text
