"""The hazard closed loop through the engine: report → four fixes → rectify →
accept, with every other path a person can take, and every refusal."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import Person

from bot.app import App
from bot.clock import FakeClock, iso
from bot.model import InboundKind


async def report(
    worker: Person,
    what: str = "二楼消防通道被纸箱堵住",
    where: str = "二楼东侧通道",
    category: str = "消防",
    severity: str = "一般隐患",
    photos: int = 1,
) -> list[str]:
    await worker.send("/hazard")
    await worker.send(what)
    await worker.send(where)
    for n in range(photos):
        await worker.photo(f"ab/photo{n}.jpg")
    await worker.press("完成" if photos else "跳过")
    await worker.press(category)
    return await worker.press(severity)


async def hazard(app: App, hazard_id: int = 1) -> dict[str, Any]:
    row = await app.db.read(
        lambda c: c.execute("SELECT * FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
    )
    return dict(row)


async def actions(app: App, hazard_id: int = 1) -> list[tuple[str, str | None, str | None]]:
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT a.action, a.detail, s.name FROM audit_log a LEFT JOIN staff s"
            " ON s.id = a.actor_id WHERE entity = 'hazard' AND entity_id = ? ORDER BY a.id",
            (hazard_id,),
        ).fetchall()
    )
    return [(row[0], json.loads(row[1]).get("to") if row[1] else None, row[2]) for row in rows]


async def assign(
    supervisor: Person, to: str = "陈磊", deadline: str = "明天", funding: str = "1200.50"
) -> list[str]:
    await supervisor.send("/hz 1 assign")
    await supervisor.press(to)
    await supervisor.send("清理纸箱，张贴禁止堆放标识")
    await supervisor.press(deadline)
    return await supervisor.send(funding)


async def test_report_assign_rectify_accept_closes_the_hazard(
    person, app: App, clock: FakeClock
) -> None:
    zhang, liu, chen, li = [await person(n) for n in ("张伟", "刘强", "陈磊", "李静")]
    replies = await report(zhang, photos=2)
    assert "已登记隐患 YH-2026-0001" in replies[-1]
    alert = (await liu.replies())[-1]
    assert "隐患报告 YH-2026-0001" in alert and "二楼消防通道被纸箱堵住" in alert
    assert "二楼东侧通道" in alert and "📷2" in alert
    assert ("👤 指派（四定）", "/hz 1 assign") in liu.last_buttons
    assert await li.replies() == []  # a general hazard stays in the unit

    replies = await assign(liu)
    assert "由 陈磊 负责" in replies[-1] and "2026-11-28 23:59" in replies[-1]
    row = await hazard(app)
    assert row["status"] == "assigned" and row["funding"] == "1200.50"
    assert row["measure"] == "清理纸箱，张贴禁止堆放标识"
    told = (await chen.replies())[-1]
    assert "刘强 指派您整改隐患 YH-2026-0001" in told
    assert ("▶️ 开始整改", "/hz 1 start") in chen.last_buttons

    assert "已开始整改" in (await chen.press("开始整改"))[-1]
    await chen.send("/hz 1 submit")
    await chen.send("纸箱已清走，贴了标识")
    assert "至少一张" in (await chen.send("好了"))[-1]  # no photo yet: asked again
    await chen.photo("cd/after.jpg")
    replies = await chen.press("完成")
    assert "等待验收" in replies[-1]
    request = (await liu.replies())[-1]
    assert "陈磊 已完成隐患 YH-2026-0001 的整改，请验收" in request
    assert "纸箱已清走" in request

    # The responsible person cannot accept their own work; the supervisor can.
    assert "没有权限" in (await chen.send("/hz 1 accept"))[0]
    assert "已销号" in (await liu.press("验收通过"))[-1]
    row = await hazard(app)
    assert row["status"] == "closed" and row["closed_at"] == iso(clock.now())
    assert any("已验收销号" in t for t in await zhang.replies())
    assert await actions(app) == [
        ("reported", None, "张伟"),
        ("assign", "assigned", "刘强"),
        ("start", "in_progress", "陈磊"),
        ("submit", "submitted", "陈磊"),
        ("accept", "closed", "刘强"),
    ]
    card = (await zhang.send("/hazard YH-2026-0001"))[0]
    for line in ("已销号", "张伟 报告\n", "刘强 指派给 陈磊"):
        assert line in card
    assert "陈磊 提交整改：“纸箱已清走，贴了标识”" in card
    assert card.endswith("刘强 验收通过，销号")
    await chen.send("/lang en")
    card = (await chen.send("/hazard YH-2026-0001"))[0]
    assert "刘强 assigned it to 陈磊" in card
    assert "陈磊 submitted the rectification: “纸箱已清走，贴了标识”" in card
    # No reminders left to chase a closed hazard.
    pending = await app.db.read(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM reminders WHERE state = 'pending' AND idempotency_key"
            " LIKE 'hazard:1:%'"
        ).fetchone()[0]
    )
    assert pending == 0


# -- who may do what, in which state ---------------------------------------------------------
PEOPLE = ("张伟", "陈磊", "刘强", "赵敏", "李静", "王建国")
OVERSIGHT = {"刘强", "李静"}  # 保安部's supervisor and the safety officer
STATES = {
    "open": dict(responsible=None),
    "assigned": {},
    "in_progress": {},
    "extension_requested": dict(proposed="2026-12-03T15:59:59+00:00"),
    "submitted": {},
    "closed": {},
}
# Action word -> the states it applies in, and who may take it.
RULES = {
    "assign": ({"open", "assigned"}, OVERSIGHT),
    "start": ({"assigned"}, {"陈磊"}),
    "submit": ({"assigned", "in_progress"}, {"陈磊"}),
    "extend": ({"assigned", "in_progress"}, {"陈磊"}),
    "approve": ({"extension_requested"}, OVERSIGHT),
    "refuse": ({"extension_requested"}, OVERSIGHT),
    "accept": ({"submitted"}, OVERSIGHT),
    "back": ({"submitted"}, OVERSIGHT),
    "order": ({"assigned", "in_progress", "extension_requested"}, OVERSIGHT),
}


async def _hazard_in(app: App, org: dict[str, int], state: str) -> None:
    responsible = None if state == "open" else org["陈磊"]
    proposed = STATES[state].get("proposed")

    def seed(conn: Any) -> None:
        from bot.store import hazards

        hazards.create(
            conn,
            unit_id=conn.execute(
                "SELECT unit_id FROM staff WHERE id = ?", (org["张伟"],)
            ).fetchone()[0],
            reported_by=org["张伟"],
            source="report",
            description="配电箱门锁损坏",
            photo=None,
            severity="general",
            deadline_at="2026-11-28T15:59:59+00:00",
            now="2026-11-27T01:00:00+00:00",
        )
        conn.execute(
            "UPDATE hazards SET status = ?, responsible_id = ?, proposed_deadline_at = ?,"
            " measure = '换锁'",
            (state, responsible, proposed),
        )

    await app.db.transaction(seed)


@pytest.mark.parametrize("state", list(STATES))
async def test_every_action_by_every_role_in_every_state(person, app: App, org, state) -> None:
    await _hazard_in(app, org, state)
    people = {name: await person(name) for name in PEOPLE}
    for word, (states, allowed) in RULES.items():
        for name, someone in people.items():
            before = await hazard(app)
            await someone.replies()  # what earlier rounds told them
            replies = await someone.send(f"/hz 1 {word}")
            after = await hazard(app)
            may = name in allowed and state in states
            if may:
                assert "没有权限" not in replies[0] and "不能进行" not in replies[0], (
                    word,
                    name,
                    replies,
                )
                await someone.send("/cancel")  # leave any flow it opened
                if after != before:  # an immediate action: put the hazard back
                    await app.db.transaction(
                        lambda c, before=before: c.execute(
                            "UPDATE hazards SET status = ?, proposed_deadline_at = ?,"
                            " deadline_at = ? WHERE id = 1",
                            (
                                before["status"],
                                before["proposed_deadline_at"],
                                before["deadline_at"],
                            ),
                        )
                    )
            else:
                assert after == before, (word, name)
                visible = name in {"张伟", "刘强", "李静", "王建国"} or (
                    name == "陈磊" and state != "open"
                )
                if not visible:
                    assert "找不到这个隐患" in replies[0], (word, name, replies)
                elif name in allowed:  # the right person, the wrong moment
                    assert "不能进行这个操作" in replies[0], (word, name, replies)
                else:
                    assert "没有权限" in replies[0], (word, name, replies)


async def test_outsiders_cannot_see_a_hazard_and_buttons_cannot_be_forged(person, app, org) -> None:
    await _hazard_in(app, org, "submitted")
    zhao = await person("赵敏")  # supervisor of another department
    liu = await person("刘强")
    # A button's internal id is never shown, nor is whether that hazard exists.
    nothing = "找不到这个隐患，或您无权查看。"
    assert (await zhao.send("/hz 1"))[0] == nothing
    assert (await liu.send("/hz 999 accept"))[0] == nothing
    assert (await liu.send("/hz abc accept"))[0] == nothing
    assert (await zhao.send("/hazard YH-2026-0001"))[0] == "找不到隐患 YH-2026-0001，或您无权查看。"
    assert "没有权限" in (await liu.send("/hz 1 explode"))[0]
    assert (await hazard(app))["status"] == "submitted"


async def test_nobody_accepts_their_own_rectification(person, app, org) -> None:
    await _hazard_in(app, org, "submitted")
    liu = await person("刘强")
    await app.db.transaction(
        lambda c: c.execute("UPDATE hazards SET responsible_id = ?", (org["刘强"],))
    )
    assert "没有权限" in (await liu.send("/hz 1 accept"))[0]
    assert (await hazard(app))["status"] == "submitted"


async def _make_responsible(app: App, staff_id: int) -> None:
    await app.db.transaction(
        lambda c: c.execute("UPDATE hazards SET responsible_id = ?", (staff_id,))
    )


async def test_a_supervisor_does_not_decide_on_his_own_extension_request(person, app, org) -> None:
    await _hazard_in(app, org, "in_progress")
    await _make_responsible(app, org["刘强"])
    liu, li = await person("刘强"), await person("李静")
    await liu.send("/hz 1 extend")
    await liu.send("已设置警戒线")
    await liu.press("跳过")
    replies = await liu.send("2026-12-03")
    assert "等待主管审批" in replies[-1]
    # No buttons to decide on his own request, and a typed or forged one is refused.
    assert not any(a.endswith(("approve", "refuse")) for _, a in liu.last_buttons)
    for forged in ("/hz 1 approve", "/hz 1 refuse"):
        assert "没有权限" in (await liu.deliver(InboundKind.ACTION, forged))[0]
    assert (await hazard(app))["status"] == "extension_requested"
    # 保安部 has no other supervisor and the centre none at all: the safety officer decides.
    request = (await li.replies())[-1]
    assert "刘强 申请隐患 YH-2026-0001 延期" in request
    assert ("👍 同意延期", "/hz 1 approve") in li.last_buttons
    assert "已同意隐患 YH-2026-0001 延期" in (await li.press("同意延期"))[-1]
    assert [(a, who) for a, _, who in await actions(app)][-1] == ("approve_extension", "李静")


async def test_a_supervisor_does_not_send_back_his_own_rectification(person, app, org) -> None:
    await _hazard_in(app, org, "submitted")
    await _make_responsible(app, org["刘强"])
    liu = await person("刘强")
    card = await liu.send("/hz 1")
    assert not any(a.endswith(("accept", "back")) for _, a in liu.last_buttons), card
    assert "没有权限" in (await liu.deliver(InboundKind.ACTION, "/hz 1 back"))[0]
    await liu.send("没有贴标识")  # had a send-back flow opened, this would be its reason
    assert (await hazard(app))["status"] == "submitted"
    assert "send_back" not in [a for a, _, _ in await actions(app)]


async def test_an_extension_request_goes_up_the_tree_past_the_responsible_supervisor(
    person, app, org
) -> None:
    await _hazard_in(app, org, "in_progress")
    await _make_responsible(app, org["刘强"])
    # 王建国 heads the centre above 保安部 for this test.
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE staff SET roles = 'admin,supervisor' WHERE id = ?", (org["王建国"],)
        )
    )
    liu, wang, li = await person("刘强"), await person("王建国"), await person("李静")
    await liu.send("/hz 1 extend")
    await liu.send("已设置警戒线")
    await liu.press("跳过")
    await liu.send("2026-12-03")
    assert "刘强 申请隐患 YH-2026-0001 延期" in (await wang.replies())[-1]
    assert await li.replies() == []
    assert "已同意" in (await wang.press("同意延期"))[-1]


async def test_a_supervisors_own_rectification_reaches_someone_who_may_accept_it(
    person, app, org
) -> None:
    await _hazard_in(app, org, "in_progress")
    await _make_responsible(app, org["刘强"])
    liu, li = await person("刘强"), await person("李静")
    await liu.send("/hz 1 submit")
    await liu.send("换了新锁")
    await liu.photo("cd/lock.jpg")
    assert "等待验收" in (await liu.press("完成"))[-1]
    assert not any(a.endswith("accept") for _, a in liu.last_buttons)
    request = (await li.replies())[-1]
    assert "刘强 已完成隐患 YH-2026-0001 的整改，请验收" in request
    assert "已销号" in (await li.press("验收通过"))[-1]
    row = await hazard(app)
    assert row["status"] == "closed" and row["accepted_by"] == org["李静"]


async def test_the_same_button_pressed_twice_quickly_acts_once(person, app, org) -> None:
    await _hazard_in(app, org, "submitted")
    liu = await person("刘强")
    first, second = (liu.inbound(InboundKind.ACTION, "/hz 1 accept") for _ in range(2))
    await asyncio.gather(app.engine.handle(first), app.engine.handle(second))
    texts = await liu.replies()
    assert sum("验收通过，已销号" in t for t in texts) == 1
    assert sum("不能进行这个操作" in t for t in texts) == 1
    assert [a for a, _, _ in await actions(app)].count("accept") == 1


# -- what people type ----------------------------------------------------------------------------
@pytest.mark.parametrize("amount", ["一万", "1e9", "-5", "12.345", "1000000001"])
async def test_bad_amounts_are_refused_and_nothing_is_saved(person, app, org, amount) -> None:
    await _hazard_in(app, org, "open")
    liu = await person("刘强")
    replies = await assign(liu, funding=amount)
    assert "金额" in replies[0]
    assert (await hazard(app))["status"] == "open"
    # Still at the funding question: a good amount finishes.
    assert "由 陈磊 负责" in (await liu.send("¥3,000"))[-1]
    assert (await hazard(app))["funding"] == "3000"


async def test_funding_reads_as_money_on_the_card(person, app, org) -> None:
    await _hazard_in(app, org, "open")
    liu, chen = await person("刘强"), await person("陈磊")
    await assign(liu, funding="1200.5")
    assert (await hazard(app))["funding"] == "1200.5"  # stored as typed, shown as money
    told = (await chen.replies())[-1]
    assert "资金：1,200.50 元" in told
    assert "资金：1,200.50 元" in (await liu.send("/hz 1"))[0]
    await chen.send("/lang en")
    assert "Funding: CNY 1,200.50" in (await chen.send("/hz 1"))[0]


async def test_deadline_in_the_past_and_unreadable_dates_are_refused(person, app, org) -> None:
    await _hazard_in(app, org, "open")
    liu = await person("刘强")
    await liu.send("/hz 1 assign")
    await liu.press("陈磊")
    await liu.send("换锁")
    # Quoted as typed, not as the parser rewrote it ('下周 23:59').
    assert (await liu.send("2026-11-01"))[0] == "这个时间已经过去了：“2026-11-01”。"
    assert (await liu.send(" 下周 "))[0].startswith("看不懂这个时间：“下周”。")
    assert (await liu.send("2026/02/30"))[0] == "没有这个日期或时间：“2026/02/30”。"
    await liu.send("2026-12-05")
    await liu.press("无需资金")
    row = await hazard(app)
    assert row["deadline_at"] == "2026-12-05T15:59:59.000000+00:00" and row["funding"] == "0"


async def test_responsible_person_deactivated_meanwhile(person, app, org) -> None:
    await _hazard_in(app, org, "open")
    liu = await person("刘强")
    await liu.send("/hz 1 assign")
    await liu.press("陈磊")
    await liu.send("换锁")
    await liu.press("明天")
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET active = 0 WHERE id = ?", (org["陈磊"],))
    )
    replies = await liu.send("500")
    assert "陈磊 已不在职" in replies[0]
    assert (await hazard(app))["status"] == "open"
    assert "陈磊" not in [label for label, _ in liu.last_buttons]
    await liu.press("杨洋")  # the rest of the answers are kept
    assert (await hazard(app))["responsible_id"] == org["杨洋"]


async def test_search_by_name_and_paging(person, app, org) -> None:
    await _hazard_in(app, org, "open")
    liu = await person("刘强")
    await liu.send("/hz 1 assign")
    assert "没有找到" in (await liu.send("不存在的人"))[0]
    await liu.send("杨")
    assert [label for label, _ in liu.last_buttons] == ["杨洋"]
    assert "责任人：杨洋" in (await liu.press("杨洋"))[-1]


async def test_the_responsible_person_comes_from_the_hazards_unit_and_below(
    person, app, org
) -> None:
    await _hazard_in(app, org, "open")  # a hazard of 保安部/一班
    liu, li = await person("刘强"), await person("李静")
    await li.send("/hz 1 assign")
    assert [label for label, _ in li.last_buttons] == ["张伟", "陈磊", "杨洋"]
    for elsewhere in ("赵敏", "王建国", "李静"):  # 工程部, and the centre above
        assert "没有找到" in (await li.send(elsewhere))[0], elsewhere
    await li.send("/cancel")
    # 保安部's supervisor may also pick from the units he heads, himself included.
    await liu.send("/hz 1 assign")
    assert [label for label, _ in liu.last_buttons] == ["张伟", "陈磊", "杨洋", "刘强"]
    assert "没有找到" in (await liu.send("赵敏"))[0]
    assert "没有找到" in (await liu.send("13800000007"))[0]  # 赵敏's phone
    assert (await hazard(app))["status"] == "open"


async def test_a_forged_choice_of_someone_elsewhere_is_refused(person, app, org) -> None:
    await _hazard_in(app, org, "open")
    liu = await person("刘强")
    await liu.send("/hz 1 assign")
    version = liu.last_buttons[0][1].partition(":")[0]
    for forged in (org["赵敏"], org["王建国"], 99999):
        replies = await liu.deliver(InboundKind.ACTION, f"{version}:s{forged}")
        assert "只能从隐患所在单位" in replies[0], (forged, replies)
        assert "请选择整改责任人" in replies[-1]
    row = await hazard(app)
    assert row["status"] == "open" and row["responsible_id"] is None


async def test_someone_moved_to_another_unit_while_being_assigned_is_refused(
    person, app, org
) -> None:
    await _hazard_in(app, org, "open")
    liu = await person("刘强")
    await liu.send("/hz 1 assign")
    await liu.press("陈磊")
    await liu.send("换锁")
    await liu.press("明天")
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE staff SET unit_id = (SELECT unit_id FROM staff WHERE id = ?) WHERE id = ?",
            (org["赵敏"], org["陈磊"]),
        )
    )
    replies = await liu.send("500")
    assert "只能从隐患所在单位" in replies[0]
    assert (await hazard(app))["status"] == "open"
    assert "陈磊" not in [label for label, _ in liu.last_buttons]
    await liu.press("杨洋")  # the rest of the answers are kept
    row = await hazard(app)
    assert row["responsible_id"] == org["杨洋"] and row["funding"] == "500"


async def test_closed_by_someone_else_while_typing(person, app, org) -> None:
    await _hazard_in(app, org, "submitted")
    li, liu = await person("李静"), await person("刘强")
    await li.send("/hz 1 back")
    await liu.send("/hz 1 accept")
    replies = await li.send("照片看不清")
    assert "已被他人处理" in replies[0] and "不能进行" in replies[1]
    assert (await hazard(app))["status"] == "closed"
    assert "send_back" not in [a for a, _, _ in await actions(app)]
    assert "隐患 YH-2026-0001" in (await li.send("/hz 1"))[0]  # the flow is over


# -- more time, orders, sending back -------------------------------------------------------------
async def test_extension_with_interim_measures_is_approved_and_moves_the_deadline(
    person, app, org
) -> None:
    await _hazard_in(app, org, "in_progress")
    chen, liu = await person("陈磊"), await person("刘强")
    await chen.send("/hz 1 extend")
    await chen.send("已设置警戒线，安排专人看守")
    await chen.photo("ef/cordon.jpg")
    assert "必须晚于" in (await chen.send("2026-11-28 10:00"))[0]
    assert "等待主管审批" in (await chen.send("2026-12-03"))[-1]
    request = (await liu.replies())[-1]
    assert "申请隐患 YH-2026-0001 延期" in request and "已设置警戒线" in request
    assert "已同意隐患 YH-2026-0001 延期至 2026-12-03 23:59" in (await liu.press("同意延期"))[-1]
    row = await hazard(app)
    assert (
        row["status"] == "in_progress" and row["deadline_at"] == "2026-12-03T15:59:59.000000+00:00"
    )
    assert any("新期限 2026-12-03 23:59" in t for t in await chen.replies())
    keys = await app.db.read(
        lambda c: [
            r[0]
            for r in c.execute(
                "SELECT idempotency_key FROM reminders WHERE state = 'pending'"
                " AND idempotency_key LIKE 'hazard:1:%'"
            )
        ]
    )
    assert keys and all(key.endswith("2026-12-03T15:59:59.000000+00:00") for key in keys)


async def test_send_back_with_reason_then_order(person, app, org) -> None:
    await _hazard_in(app, org, "submitted")
    chen, liu = await person("陈磊"), await person("刘强")
    await liu.send("/hz 1 back")
    await liu.send("标识没有贴")
    assert any("退回：标识没有贴" in t for t in await chen.replies())
    assert (await hazard(app))["status"] == "in_progress"
    await liu.send("/hz 1 order")
    await liu.press("3 天内")
    replies = await liu.press("沿用整改措施")
    assert "整改通知书 ZG-2026-001" in replies[-1]
    order = (await chen.replies())[-1]
    assert "整改通知书 ZG-2026-001" in order and "换锁" in order
    orders = await app.db.read(
        lambda c: c.execute("SELECT number, requirement FROM rectification_orders").fetchall()
    )
    assert [tuple(o) for o in orders] == [("ZG-2026-001", "换锁")]
    assert "ZG-2026-001" in (await liu.send("/hz 1"))[0]


async def test_an_order_earlier_than_the_assigned_deadline_is_confirmed(person, app, org) -> None:
    await _hazard_in(app, org, "in_progress")  # due 2026-11-28 23:59
    chen, liu = await person("陈磊"), await person("刘强")
    await liu.send("/hz 1 order")
    replies = await liu.press("今天")
    assert "2026-11-27 23:59 早于原定的整改期限 2026-11-28 23:59" in replies[-1]
    replies = await liu.press("重新选择期限")
    assert "下达整改通知书：整改期限" in replies[-1]
    await liu.press("今天")
    replies = await liu.press("确认提前")
    assert "整改要求" in replies[-1]
    replies = await liu.press("沿用整改措施")
    assert "期限 2026-11-27 23:59" in replies[-1]
    assert "2026-11-27 23:59 前完成" in (await chen.replies())[-1]
    assert (await hazard(app))["deadline_at"].startswith("2026-11-27T15:59:59")


# -- reporting -------------------------------------------------------------------------------------
async def test_major_hazard_is_reported_up_at_once(person, app, org) -> None:
    zhang, liu, li, wang, zhao = [
        await person(n) for n in ("张伟", "刘强", "李静", "王建国", "赵敏")
    ]
    # 王建国 heads the centre above 保安部 for this test.
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE staff SET roles = 'admin,supervisor' WHERE id = ?", (org["王建国"],)
        )
    )
    await report(zhang, what="配电房漏水", category="电气", severity="重大隐患")
    for someone in (liu, li, wang):
        assert any("重大隐患报告 YH-2026-0001" in t for t in await someone.replies()), someone.name
    assert await zhao.replies() == []


async def test_location_and_bad_location(person, app) -> None:
    zhang = await person("张伟")
    await zhang.send("/hazard")
    await zhang.send("灭火器过期")
    replies = await zhang.deliver(InboundKind.LOCATION, "", data={"lat": 95.0, "lon": 10.0})
    assert "位置无效" in replies[0]
    await zhang.deliver(InboundKind.LOCATION, "", data={"lat": 31.2304, "lon": 121.4737})
    await zhang.press("跳过")
    await zhang.press("消防")
    await zhang.press("一般隐患")
    row = await hazard(app)
    assert (row["lat"], row["lon"], row["place"]) == (31.2304, 121.4737, None)


async def test_at_most_five_photos(person, app) -> None:
    zhang = await person("张伟")
    await zhang.send("/hazard")
    await zhang.send("灭火器过期")
    await zhang.send("一楼大厅")
    for n in range(5):
        replies = await zhang.photo(f"ab/{n}.jpg")
    assert "达到上限" in replies[0] and "类别" in replies[-1]
    await zhang.press("消防")
    await zhang.press("一般隐患")
    assert len(json.loads((await hazard(app))["photos"])) == 5


async def test_a_repeat_report_can_be_added_to_the_open_hazard(person, app) -> None:
    zhang, chen = await person("张伟"), await person("陈磊")
    await report(zhang)
    replies = await report(chen, what="二楼消防通道堆满纸箱", photos=0)
    assert "已有相似的隐患 YH-2026-0001" in replies[-1]
    assert "补充到隐患 YH-2026-0001" in (await chen.press("补充到"))[-1]
    count = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM hazards").fetchone()[0])
    assert count == 1
    assert [a for a, _, _ in await actions(app)] == ["reported", "added"]
    # The reporter may also insist it is a new problem.
    await report(chen, what="二楼消防通道堆满纸箱", photos=0)
    await chen.press("新问题")
    assert (await hazard(app, 2))["repeat_of"] == 1


async def test_a_hazard_back_within_30_days_is_a_failed_rectification(
    person, app, org, clock: FakeClock
) -> None:
    await _hazard_in(app, org, "closed")
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE hazards SET category = 'electrical', place = '配电房', closed_at = ?",
            (iso(clock.now()),),
        )
    )
    zhang, li = await person("张伟"), await person("李静")
    clock.advance(timedelta(days=10))
    await report(zhang, what="配电箱门锁又坏了", where="配电房", category="电气", photos=0)
    flagged = [t for t in await li.replies() if "整改失效" in t]
    assert flagged and "YH-2026-0001" in flagged[0] and "YH-2026-0002" in flagged[0]
    assert (await hazard(app, 1))["failed_rectification"] == 1
    assert (await hazard(app, 2))["repeat_of"] == 1
    # Closed more than 30 days ago: simply a new hazard.
    clock.advance(timedelta(days=25))
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE hazards SET status = 'closed', closed_at = ? WHERE id = 2",
            (iso(clock.now() - timedelta(days=31)),),
        )
    )
    await report(zhang, what="配电箱门锁又坏了", where="配电房", category="电气", photos=0)
    assert (await hazard(app, 3))["repeat_of"] is None


async def test_english_report(person, app) -> None:
    james = await person("James Wilson")
    await james.send("/hazard")
    await james.send("Gas smell near the stove")
    await james.send("Kitchen")
    await james.press("Skip")
    await james.press("Kitchen")
    replies = await james.press("General")
    assert "Hazard YH-2026-0001 recorded" in replies[-1]
    assert "Hazard YH-2026-0001" in (await james.send("/hazard YH-2026-0001"))[0]


# -- views -----------------------------------------------------------------------------------------
async def test_hazard_lists_and_overdue(person, app, org, clock: FakeClock) -> None:
    zhang, liu, zhao, li = [await person(n) for n in ("张伟", "刘强", "赵敏", "李静")]
    await report(zhang)
    await report(zhang, what="楼梯扶手松动", where="三楼楼梯", category="设备", photos=0)
    mine = (await zhang.send("/hazards"))[0]
    assert "YH-2026-0001" in mine and "YH-2026-0002" in mine
    assert mine.index("YH-2026-0002") < mine.index("YH-2026-0001")  # newest first
    assert "YH-2026-0001" in (await liu.send("/hazards"))[0]
    assert "没有要显示" in (await zhao.send("/hazards"))[0]
    assert "只有主管" in (await zhang.send("/overdue"))[0]
    assert "没有逾期" in (await liu.send("/overdue"))[0]
    clock.advance(timedelta(days=1))
    overdue = (await li.send("/overdue"))[0]
    assert "YH-2026-0001" in overdue and "YH-2026-0002" in overdue
    assert "没有逾期" in (await zhao.send("/overdue"))[0]
