"""Incidents: reported from a phone, alerted at once to the people who must
act, investigated, turned into corrective actions, and chased until the
15-day report is recorded as submitted."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from conftest import START, Person

from bot.app import App
from bot.clock import FakeClock, iso
from bot.model import InboundKind, Role
from bot.store import incidents
from bot.store.incidents import NewIncident
from handlers.router import menu

NUMBER = "SG-2026-001"


async def report(
    worker: Person,
    *,
    kind: str = "受伤",
    when: str | None = None,
    hurt: str = "1",
    photos: int = 0,
) -> list[str]:
    """Walk the /incident flow in Chinese; returns the last replies."""
    await worker.send("/incident")
    await worker.send("一班巡逻时在楼梯间滑倒，扭伤脚踝")
    if when is None:
        await worker.press("刚刚")
    else:
        await worker.send(when)
    await worker.send("3号楼B座楼梯间")
    await worker.press(kind)
    if hurt == "0":
        await worker.press("无人受伤")
    else:
        await worker.send(hurt)
        await worker.send("陈磊")
    await worker.send("已送医，现场已拉警戒线")
    for index in range(photos):
        await worker.photo(f"media/scene{index}.jpg")
    return await worker.press("跳过" if photos == 0 else "完成")


async def incident_row(app: App, number: str = NUMBER) -> dict[str, object]:
    row = await app.db.read(lambda c: incidents.by_number(c, number))
    assert row is not None
    return dict(row)


async def audit_actions(app: App) -> list[str]:
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT action FROM audit_log WHERE entity = 'incident' ORDER BY id"
        ).fetchall()
    )
    return [row[0] for row in rows]


async def promote(app: App, name: str, role: Role) -> None:
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET roles = ? WHERE name = ?", (role.value, name))
    )


# -- reporting and alerts -------------------------------------------------------------
async def test_injury_alerts_the_whole_chain_the_officer_and_the_admin(person, app: App) -> None:
    zhang, liu, li, wang, zhao = [
        await person(name) for name in ("张伟", "刘强", "李静", "王建国", "赵敏")
    ]
    replies = await report(zhang, photos=2)
    assert f"事故 {NUMBER} 已登记" in replies[-1]
    assert "已通知 3 人" in replies[-1] and "2026-12-12 23:59" in replies[-1]
    for overseer in (liu, li, wang):
        alert = [t for t in await overseer.replies() if NUMBER in t]
        assert len(alert) == 1
        assert "受伤" in alert[0] and "陈磊" in alert[0] and "3号楼B座楼梯间" in alert[0]
        assert "报告人：张伟" in alert[0] and "照片：2 张" in alert[0]
        assert overseer.last_buttons == [("📋 查看事故", f"/incident {NUMBER}")]
    assert await zhao.replies() == []  # 工程部 is not up 一班's tree
    attachments = await app.db.read(
        lambda c: c.execute(
            "SELECT attachments FROM outbox WHERE idempotency_key LIKE 'incident:%:alert:%'"
        ).fetchall()
    )
    assert all(
        json.loads(row[0]) == ["media/scene0.jpg", "media/scene1.jpg"] for row in attachments
    )
    row = await incident_row(app)
    assert (row["kind"], row["hurt_count"], row["hurt_names"]) == ("injury", 1, "陈磊")
    assert row["occurred_at"] == iso(START) and row["unit_id"] is not None
    assert await audit_actions(app) == ["reported"]


async def test_near_miss_alerts_only_the_unit_supervisors_and_the_officers(person) -> None:
    zhang, liu, li, wang, zhao = [
        await person(name) for name in ("张伟", "刘强", "李静", "王建国", "赵敏")
    ]
    replies = await report(zhang, kind="未遂事件", hurt="0")
    assert "已通知 2 人" in replies[-1]
    assert any(NUMBER in t and "未遂事件" in t for t in await liu.replies())
    assert any(NUMBER in t for t in await li.replies())
    assert await wang.replies() == []
    assert await zhao.replies() == []


async def test_a_fire_reaches_every_supervisor_up_the_tree(person, app: App) -> None:
    await promote(app, "陈磊", Role.SUPERVISOR)  # now 一班 has its own head
    zhang, chen, liu = [await person(name) for name in ("张伟", "陈磊", "刘强")]
    await report(zhang, kind="未遂事件", hurt="0")
    assert any("SG-2026-001" in t for t in await chen.replies())
    assert await liu.replies() == []  # a near miss stays with the nearest head
    await report(zhang, kind="火灾", hurt="0")
    assert any("SG-2026-002" in t and "火灾" in t for t in await chen.replies())
    assert any("SG-2026-002" in t for t in await liu.replies())


async def test_a_redelivered_last_answer_registers_one_incident(person, app: App) -> None:
    zhang = await person("张伟")
    await zhang.send("/incident")
    await zhang.send("配电箱冒烟")
    await zhang.press("刚刚")
    await zhang.send("地下室配电房")
    await zhang.press("火灾")
    await zhang.press("无人受伤")
    await zhang.press("暂无")
    done = next(action for label, action in zhang.last_buttons if "跳过" in label)
    await zhang.deliver(InboundKind.ACTION, done, event_id="same")
    await zhang.deliver(InboundKind.ACTION, done, event_id="same")
    count = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM incidents").fetchone())
    assert count[0] == 1


async def test_bad_report_input_is_refused_and_asked_again(person, app: App) -> None:
    zhang = await person("张伟")
    await zhang.send("/incident")
    assert "太长" in (await zhang.send("长" * 2001))[0]
    await zhang.send("搬运时货架倒塌")
    assert "不能在将来" in (await zhang.send("2026-11-27 12:00"))[0]
    assert "已超过 30 天" in (await zhang.send("2026-10-01 10:00"))[0]
    assert "看不懂" in (await zhang.send("昨天下午"))[0]
    assert "没有这个日期" in (await zhang.send("2026-11-31 10:00"))[0]
    assert "哪里" in (await zhang.send("11-14 08:00"))[-1]  # 13 days ago
    await zhang.send("仓库")
    await zhang.press("财产损失")
    for bad in ("很多", "-1", "1001", "2.5"):
        replies = await zhang.send(bad)
        assert "不是有效的人数" in replies[0] and "几人受伤" in replies[-1]
    await zhang.send("2")
    await zhang.send("陈磊、杨洋")
    await zhang.press("暂无")
    for index in range(5):
        assert f"{index + 1}/5" in (await zhang.photo(f"media/p{index}.jpg"))[0]
    assert "最多 5 张" in (await zhang.photo("media/p5.jpg"))[0]
    assert "已登记" in (await zhang.press("完成"))[-1]
    row = await incident_row(app)
    assert len(json.loads(str(row["photos"]))) == 5
    assert row["occurred_at"] == "2026-11-14T00:00:00.000000+00:00"
    assert (row["hurt_count"], row["first_actions"]) == (2, None)
    # Reported 13 days late: only the day 14 and day 15 reminders are still ahead.
    keys = await app.db.read(
        lambda c: c.execute("SELECT idempotency_key FROM reminders ORDER BY due_at").fetchall()
    )
    assert [row[0] for row in keys] == ["incident:1:report:day14", "incident:1:report:day15"]


async def test_an_injury_with_nobody_hurt_is_refused_with_a_way_back_to_the_kind(
    person, app: App
) -> None:
    zhang = await person("张伟")
    await zhang.send("/incident")
    await zhang.send("叉车倒车时撞到货架")
    await zhang.press("刚刚")
    await zhang.send("仓库")
    replies = await zhang.press("重伤")
    assert not any("无人受伤" in label for label, _ in zhang.last_buttons)
    replies = await zhang.send("0")
    assert "至少有 1 人" in replies[0] and "几人受伤" in replies[-1]
    replies = await zhang.press("改选事故类型")
    assert "事故类型" in replies[-1]
    await zhang.press("未遂事件")
    await zhang.press("无人受伤")
    await zhang.press("暂无")
    assert "已登记" in (await zhang.press("跳过"))[-1]
    row = await incident_row(app)
    assert (row["kind"], row["hurt_count"]) == ("near_miss", 0)


async def test_an_injury_with_nobody_hurt_in_english(person, app: App, org) -> None:
    james = await person("James Wilson")
    await james.send("/incident")
    await james.send("Slipped on the kitchen floor")
    await james.press("Just now")
    await james.send("Kitchen")
    await james.press("Injury")
    replies = await james.send("0")
    assert "at least one person" in replies[0]


# -- the 15-day report --------------------------------------------------------------------
async def tick_at(app: App, clock: FakeClock, day: int) -> None:
    """Day N after an incident on 27 November, 09:00 Shanghai, just after."""
    clock.set(START + timedelta(days=day, seconds=1))
    await app.scheduler.tick()


async def test_report_reminders_on_days_7_12_14_and_15(person, app: App, clock: FakeClock) -> None:
    zhang, liu, li, wang, zhao = [
        await person(name) for name in ("张伟", "刘强", "李静", "王建国", "赵敏")
    ]
    await report(zhang)
    for someone in (liu, li, wang):
        await someone.replies()  # the alerts
    expected = {7: "还剩 8 天", 12: "还剩 3 天", 14: "还剩 1 天", 15: "今天是最后期限"}
    for day, words in expected.items():
        await tick_at(app, clock, day - 1)
        assert await liu.replies() == [] and await li.replies() == []
        await tick_at(app, clock, day)
        for told in (liu, li):
            texts = await told.replies()
            assert len(texts) == 1 and words in texts[0] and NUMBER in texts[0], (day, texts)
            assert "2026-12-12 23:59" in texts[0]
            assert ("📨 15日报告已提交", f"/incident {NUMBER} report") in told.last_buttons
        assert await wang.replies() == [] and await zhao.replies() == []
        assert await zhang.replies() == []


async def test_recording_the_report_stops_the_reminders(person, app: App, clock: FakeClock) -> None:
    zhang, liu, li = [await person(name) for name in ("张伟", "刘强", "李静")]
    await report(zhang)
    await tick_at(app, clock, 7)
    assert any("还剩 8 天" in t for t in await li.replies())
    await liu.replies()
    clock.set(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
    await liu.press("15日报告已提交")  # the reminder's button
    replies = await liu.send("劳社受字〔2026〕118号")
    assert "15日报告已提交" in replies[-1] and "提醒已停止" in replies[-1]
    assert any("刘强" in t and "118号" in t for t in await li.replies())
    for day in (12, 14, 15, 16):
        await tick_at(app, clock, day)
    assert await liu.replies() == [] and await li.replies() == []
    row = await incident_row(app)
    assert row["report_reference"] == "劳社受字〔2026〕118号"
    assert await audit_actions(app) == ["reported", "report_submitted"]
    card = (await li.send(f"/incident {NUMBER}"))[0]
    assert "已提交，文号 劳社受字〔2026〕118号" in card and "刘强 登记15日报告已提交" in card


async def test_a_reminder_checks_the_report_is_still_outstanding(
    person, app: App, clock: FakeClock
) -> None:
    zhang, li = [await person(name) for name in ("张伟", "李静")]
    await report(zhang)
    await li.replies()
    # Recorded by some other way that left the reminders in place.
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE incidents SET report_submitted_at = ?, report_reference = 'X'", (iso(START),)
        )
    )
    await tick_at(app, clock, 7)
    assert await li.replies() == []


async def test_the_report_is_recorded_once(person, app: App) -> None:
    zhang, liu, li = [await person(name) for name in ("张伟", "刘强", "李静")]
    await report(zhang)
    await liu.send(f"/incident {NUMBER} report")
    await li.send(f"/incident {NUMBER} report")  # both started before either finished
    assert "不能为空" in (await liu.send("   "))[0]
    assert "太长" in (await liu.send("号" * 101))[0]
    assert "提醒已停止" in (await liu.send("劳社受 2026-118"))[-1]
    assert "无需重复登记" in (await li.send("劳社受 2026-119"))[-1]
    assert "无需重复登记" in (await li.send(f"/incident {NUMBER} report"))[0]
    row = await incident_row(app)
    assert row["report_reference"] == "劳社受 2026-118"
    assert (await audit_actions(app)).count("report_submitted") == 1
    flows = await app.db.read(
        lambda c: c.execute("SELECT flow FROM conversations WHERE flow != ''").fetchall()
    )
    assert flows == []  # nobody is left inside a flow


# -- investigation and corrective actions ---------------------------------------------
async def test_overseer_investigates_and_a_corrective_action_becomes_a_hazard(
    person, app: App
) -> None:
    zhang, liu = [await person(name) for name in ("张伟", "刘强")]
    await report(zhang)
    await liu.replies()  # the alert
    card = (await liu.send(f"/incident {NUMBER}"))[0]
    assert "待调查" in card and "报告人：张伟" in card and "未提交（期限 2026-12-12 23:59）" in card
    assert [label for label, _ in liu.last_buttons] == [
        "🔎 记录调查",
        "🛠 添加整改措施",
        "📨 15日报告已提交",
        "📄 SG-2026-001 PDF",
    ]
    await liu.press("记录调查")
    await liu.press("调查中")
    await liu.send("张伟")
    replies = await liu.send("楼梯间地面有积水，清洁后未放警示牌")
    assert "调查已记录：调查中" in replies[-1]

    await liu.send(f"/incident {NUMBER} action")
    await liu.send("楼梯间加装防滑条")
    assert "看不懂这个日期" in (await liu.send("下周"))[0]
    assert "最早今天" in (await liu.send("2026-11-01"))[0]
    replies = await liu.send("2026-12-10")
    assert "隐患 YH-2026-0001" in replies[-1] and "2026-12-10 23:59" in replies[-1]
    await liu.send(f"/incident {NUMBER} action")
    await liu.send("清洁后放置警示牌")
    assert "隐患 YH-2026-0002" in (await liu.press("今天"))[-1]

    hazards = await app.db.read(
        lambda c: c.execute(
            "SELECT number, source, severity, deadline_at FROM hazards ORDER BY id"
        ).fetchall()
    )
    assert [tuple(row) for row in hazards] == [
        ("YH-2026-0001", "incident:1", "general", "2026-12-10T15:59:59+00:00"),
        ("YH-2026-0002", "incident:1", "general", "2026-11-27T15:59:59+00:00"),
    ]
    chased = await app.db.read(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM reminders WHERE kind LIKE 'hazard_%' AND state = 'pending'"
        ).fetchone()
    )
    assert chased[0] >= 2  # each hazard's deadline is chased
    card = (await liu.send(f"/incident {NUMBER}"))[0]
    assert "调查中" in card and "楼梯间地面有积水" in card and "责任人 张伟" in card
    assert "YH-2026-0001 楼梯间加装防滑条" in card
    history = card.split("记录：")[1]
    assert history.count("刘强 添加整改措施") == 2 and "张伟 报告事故" in history
    assert "刘强 记录调查 → 调查中" in history
    assert await audit_actions(app) == [
        "reported",
        "investigation",
        "corrective_action",
        "corrective_action",
    ]


async def test_non_overseers_are_refused_and_nothing_changes(person, app: App) -> None:
    zhang, zhao, chen = [await person(name) for name in ("张伟", "赵敏", "陈磊")]
    await report(zhang)
    for action in ("report", "investigate", "action", "pdf"):
        replies = await zhang.send(f"/incident {NUMBER} {action}")
        assert "只有事故单位或其上级单位的主管" in replies[0], action
        replies = await zhao.send(f"/incident {NUMBER} {action}")
        assert "没有找到事故" in replies[0], action
    own = (await zhang.send(f"/incident {NUMBER}"))[0]
    assert NUMBER in own and "记录：" in own  # the reporter sees the card ...
    assert not any(a.endswith(("report", "investigate", "action")) for _, a in zhang.last_buttons)
    assert "没有找到事故" in (await chen.send(f"/incident {NUMBER}"))[0]  # ... a colleague does not
    assert "没有找到事故" in (await zhao.send(f"/incident {NUMBER}"))[0]
    row = await incident_row(app)
    assert (row["investigation"], row["report_submitted_at"]) == ("reported", None)
    assert await audit_actions(app) == ["reported"]


async def test_an_outsider_cannot_tell_an_incident_from_a_missing_one(person, app: App) -> None:
    zhang, zhao, chen = [await person(name) for name in ("张伟", "赵敏", "陈磊")]
    await report(zhang)
    for outsider in (zhao, chen):  # another department's supervisor; a colleague
        for wanted in ("", " investigate", " action", " report", " pdf", " explode"):
            there = await outsider.send(f"/incident {NUMBER}{wanted}")
            missing = await outsider.send(f"/incident SG-2026-999{wanted}")
            assert there == [text.replace("SG-2026-999", NUMBER) for text in missing], (
                outsider.name,
                wanted,
                there,
            )
    assert await audit_actions(app) == ["reported"]


async def test_an_overseer_demoted_mid_flow_cannot_finish(person, app: App) -> None:
    zhang, liu = [await person(name) for name in ("张伟", "刘强")]
    await report(zhang)
    await liu.send(f"/incident {NUMBER} report")
    await promote(app, "刘强", Role.STAFF)
    assert "只有事故单位" in (await liu.send("劳社受 2026-118"))[0]
    assert (await incident_row(app))["report_submitted_at"] is None


# -- the register ---------------------------------------------------------------------
async def test_register_lists_newest_first_by_scope_ten_at_a_time(
    person, app: App, org: dict[str, int]
) -> None:
    li, liu, zhao, zhang = [await person(name) for name in ("李静", "刘强", "赵敏", "张伟")]

    def seed(conn: sqlite3.Connection) -> None:
        units = {row[1]: row[0] for row in conn.execute("SELECT id, path FROM units")}
        for n in range(12):
            engineering = n == 5
            incidents.create(
                conn,
                NewIncident(
                    unit_id=units[
                        "物业服务中心/工程部" if engineering else "物业服务中心/保安部/一班"
                    ],
                    reported_by=org["黄海" if engineering else "张伟"],
                    occurred_at=iso(START - timedelta(hours=12 - n)),
                    place="某处",
                    kind="near_miss",
                    description=f"第 {n + 1} 起",
                    hurt_count=0,
                    hurt_names=None,
                    first_actions=None,
                    photos=[],
                    report_due_at=iso(START + timedelta(days=15)),
                ),
                year=2026,
                now=iso(START),
            )

    await app.db.transaction(seed)
    first = (await li.send("/incidents"))[0]
    lines = first.splitlines()[1:]
    assert len(lines) == 10 and lines[0].startswith("SG-2026-012") and "报告未交" in lines[0]
    assert lines[-1].startswith("SG-2026-003")
    assert ("SG-2026-012", "/incident SG-2026-012") in li.last_buttons
    second = (await li.press("下一页"))[0]
    assert [line[:11] for line in second.splitlines()[1:]] == ["SG-2026-002", "SG-2026-001"]
    mine = (await liu.send("/incidents"))[0]
    assert "SG-2026-006" not in mine and "SG-2026-012" in mine  # 工程部's is not his
    theirs = (await zhao.send("/incidents"))[0].splitlines()[1:]
    assert len(theirs) == 1 and theirs[0].startswith("SG-2026-006")
    own = (await zhang.send("/incidents 2"))[0]  # what he reported: 11, so one on page 2
    assert own.splitlines()[1:2] == [line for line in own.splitlines() if "SG-2026-001" in line]


def test_everyone_has_incident_in_the_menu_and_overseers_the_register() -> None:
    worker = [name for name, _ in menu(frozenset({Role.STAFF}), "zh-CN")]
    assert "incident" in worker and "incidents" not in worker
    for role in (Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ADMIN):
        assert "incidents" in [name for name, _ in menu(frozenset({role}), "en")]


# -- English ---------------------------------------------------------------------------
async def test_english_speaker_reports_and_reads_in_english(person, app: App) -> None:
    james, zhou, li = [await person(name) for name in ("James Wilson", "周芳", "李静")]
    await li.send("/lang en")
    assert "What happened?" in (await james.send("/incident"))[0]
    await james.send("Hot oil splashed on my hand at the fryer")
    await james.press("Just now")
    await james.send("Kitchen, fryer station")
    await james.press("Injury")
    assert "not a number of people" in (await james.send("one"))[0]
    await james.send("1")
    await james.send("James Wilson")
    await james.send("Cooled with water, first aid kit used")
    replies = await james.press("Skip")
    assert f"Incident {NUMBER} registered" in replies[-1] and "2026-12-12 23:59" in replies[-1]
    assert any(NUMBER in t and "受伤" in t for t in await zhou.replies())  # her language
    alert = [t for t in await li.replies() if NUMBER in t]
    assert alert and "Injury" in alert[0] and "Reported by: James Wilson" in alert[0]
    card = (await james.send(f"/incident {NUMBER}"))[0]
    assert "awaiting investigation" in card and "History:" in card
    assert "reported the incident" in card and "not submitted (due 2026-12-12 23:59)" in card
    refused = await james.send(f"/incident {NUMBER} report")
    assert "Only a supervisor of the incident's unit" in refused[0]
