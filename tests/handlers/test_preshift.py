"""The pre-shift check and the commands around it, as a worker, a supervisor
and an auditor would see them."""

from __future__ import annotations

from datetime import timedelta

from conftest import START, Person

from bot.app import App
from bot.clock import FakeClock
from bot.engine import Outcome
from bot.model import InboundKind


async def answer_all(worker: Person, label: str = "正常", count: int = 6) -> list[str]:
    replies: list[str] = []
    for _ in range(count):
        replies = await worker.press(label)
    return replies


async def test_worker_completes_check_and_gets_summary(person, app: App) -> None:
    worker = await person("张伟")
    replies = await worker.send("/check")
    assert "岗前安全自查" in replies[0] and "6" in replies[0]
    assert "设备安全状态" in replies[1]
    assert [label.split(" ")[0] for label, _ in worker.last_buttons] == ["✅", "⚠️", "➖"]
    replies = await answer_all(worker)
    assert "已完成：✅ 6 项，⚠️ 0 项，➖ 0 项" in replies[-1]
    runs = await app.db.read(
        lambda c: c.execute("SELECT id, completed_at, local_date FROM checklist_runs").fetchall()
    )
    assert len(runs) == 1 and runs[0]["completed_at"] and runs[0]["local_date"] == "2026-11-27"
    answers = await app.db.read(
        lambda c: c.execute("SELECT item, answer FROM checklist_answers").fetchall()
    )
    assert [a["answer"] for a in answers] == ["ok"] * 6
    assert len({a["item"] for a in answers}) == 6


async def test_problem_records_hazard_and_alerts_unit_supervisor(person, app: App) -> None:
    worker = await person("张伟")
    supervisor = await person("刘强")
    await worker.send("/check")
    await worker.press("正常")
    replies = await worker.press("有问题")
    assert "有什么问题" in replies[0]
    replies = await worker.send("消防通道被纸箱堵住了 🚒")
    assert "照片" in replies[0]
    replies = await worker.press("跳过")
    assert "隐患 YH-2026-0001" in replies[0]
    hazard = await app.db.read(lambda c: c.execute("SELECT * FROM hazards").fetchone())
    assert hazard["severity"] == "general" and hazard["status"] == "open"
    assert hazard["description"] == "消防通道被纸箱堵住了 🚒"
    # Due at the end of the local (Shanghai) day: 23:59:59 +08:00 is 15:59:59 UTC.
    assert hazard["deadline_at"].startswith("2026-11-27T15:59:59")
    alert = (await supervisor.replies())[0]
    assert "张伟" in alert and "消防通道被纸箱堵住了 🚒" in alert and "YH-2026-0001" in alert
    assert "规定的安全措施已落实" in alert
    audit = await app.db.read(
        lambda c: c.execute("SELECT action FROM audit_log WHERE entity = 'hazard'").fetchall()
    )
    assert [row["action"] for row in audit] == ["reported"]
    replies = await answer_all(worker, count=4)
    assert "⚠️ YH-2026-0001" in replies[-1]


async def test_the_summary_names_the_problem_as_the_worker_typed_it(person) -> None:
    async def check_with_one_problem(worker: Person, problem: str, skip: str) -> str:
        await worker.send("/check")
        await worker.press("✅")
        await worker.press("⚠️")
        await worker.send(problem)
        await worker.press(skip)
        return (await answer_all(worker, "✅", count=4))[-1]

    zhang, james = await person("张伟"), await person("James Wilson")
    summary = await check_with_one_problem(zhang, "消防通道被纸箱堵住了", "跳过")
    assert "\n⚠️ YH-2026-0001 规定的安全措施已落实：“消防通道被纸箱堵住了”" in summary
    summary = await check_with_one_problem(james, "The fire door is wedged open", "Skip")
    assert (
        "\n⚠️ YH-2026-0002 The prescribed safety measures are in place:"
        " “The fire door is wedged open”"
    ) in summary


async def test_supervisor_without_channel_gets_alert_held(person) -> None:
    worker = await person("陈磊")
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("护栏松动")
    await worker.press("跳过")
    # 刘强 has no channel identity in this test: the alert waits for him.
    supervisor = Person(worker.app, await _staff_id(worker.app, "刘强"), "刘强")
    held = await supervisor.held()
    assert len(held) == 1 and "护栏松动" in held[0]


async def _staff_id(app: App, name: str) -> int:
    row = await app.db.read(
        lambda c: c.execute("SELECT id FROM staff WHERE name = ?", (name,)).fetchone()
    )
    return int(row["id"])


async def test_unit_without_supervisor_alerts_parent_supervisor(person, app: App) -> None:
    # 吴刚 works in 餐饮部/厨房, which has no supervisor; 周芳 heads 餐饮部.
    worker = await person("吴刚")
    head = await person("周芳")
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("燃气味道很重")
    await worker.press("跳过")
    assert any("燃气味道很重" in text for text in await head.replies())


async def test_photo_is_linked_to_hazard(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("配电箱门坏了")
    await worker.photo("ab/abcdef.jpg")
    hazard = await app.db.read(lambda c: c.execute("SELECT photo FROM hazards").fetchone())
    assert hazard["photo"] == "ab/abcdef.jpg"


async def test_second_check_same_day_shows_result_and_redo_links(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await answer_all(worker)
    replies = await worker.send("/check")
    assert "已完成" in replies[0] and "重新" in replies[1]
    await worker.press("重新检查")
    await answer_all(worker, "不适用")
    runs = await app.db.read(
        lambda c: c.execute("SELECT id, redo_of FROM checklist_runs ORDER BY id").fetchall()
    )
    assert [r["redo_of"] for r in runs] == [None, runs[0]["id"]]
    first = await app.db.read(
        lambda c: c.execute(
            "SELECT answer FROM checklist_answers WHERE run_id = ?", (runs[0]["id"],)
        ).fetchall()
    )
    assert [a["answer"] for a in first] == ["ok"] * 6  # the first record is untouched


async def test_next_local_day_starts_a_fresh_check(person, clock: FakeClock) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await answer_all(worker)
    clock.advance(timedelta(hours=16))  # 01:00 the next day in Shanghai
    replies = await worker.send("/check")
    assert "开始" in replies[0]


async def test_cancel_leaves_nothing_half_saved(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await worker.press("正常")
    await worker.press("有问题")
    await worker.send("地面湿滑")
    replies = await worker.send("/cancel")
    assert "已退出" in replies[0]
    hazards = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM hazards").fetchone())
    assert hazards[0] == 0
    run = await app.db.read(
        lambda c: c.execute("SELECT completed_at, cancelled_at FROM checklist_runs").fetchone()
    )
    assert run["completed_at"] is None and run["cancelled_at"]
    replies = await worker.send("/check")
    assert "开始" in replies[0]  # a cancelled run does not count as done


async def test_stale_button_changes_nothing(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    old_buttons = list(worker.last_buttons)
    await worker.press("正常")
    worker.last_buttons = old_buttons
    replies = await worker.press("有问题")
    assert worker.outcome is Outcome.STALE and "失效" in replies[0]
    answers = await app.db.read(
        lambda c: c.execute("SELECT answer FROM checklist_answers").fetchall()
    )
    assert [a["answer"] for a in answers] == ["ok"]


async def test_forged_button_payload_is_refused(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    for forged in ["v999:ok", "v1:drop table", "garbage", "v1:", ":", "/nosuch"]:
        await worker.deliver(InboundKind.ACTION, forged)
        assert worker.outcome in (Outcome.STALE, Outcome.REFUSED, Outcome.HANDLED)
    count = await app.db.read(
        lambda c: c.execute("SELECT COUNT(*) FROM checklist_answers").fetchone()[0]
    )
    assert count == 0


async def test_same_event_twice_changes_nothing(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check", event_id="tg-1")
    replies = await worker.send("/check", event_id="tg-1")
    assert worker.outcome is Outcome.DUPLICATE and replies == []
    runs = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM checklist_runs").fetchone())
    assert runs[0] == 1


async def test_typed_label_answers_like_a_button(person) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    replies = await worker.send("正常")
    assert "第 2/6 项" in replies[0]
    replies = await worker.send("随便说点什么")
    assert "请点按钮" in replies[0] and "第 2/6 项" in replies[1]


async def test_english_speaker_gets_english(person) -> None:
    worker = await person("James Wilson")
    replies = await worker.send("/check")
    assert "Pre-shift safety check" in replies[0]
    assert [label for label, _ in worker.last_buttons] == ["✅ OK", "⚠️ Problem", "➖ N/A"]


async def test_lang_switches_language(person) -> None:
    worker = await person("张伟")
    await worker.send("/lang")
    replies = await worker.press("English")
    assert replies == ["Language set to English."]
    replies = await worker.send("/help")
    assert "/check Pre-shift safety check" in replies[0]


async def test_help_lists_what_the_role_may_do(person) -> None:
    worker = await person("张伟")
    supervisor = await person("刘强")
    officer = await person("李静")
    assert "/daily" not in (await worker.send("/help"))[0]
    assert "/daily" in (await supervisor.send("/help"))[0]
    assert "/specialist" in (await officer.send("/help"))[0]
    replies = await worker.send("/specialist")
    assert "不能" in replies[0]


async def test_start_greets_by_name_and_unit(person) -> None:
    worker = await person("张伟")
    replies = await worker.send("/start")
    assert (
        "张伟" in replies[0] and "物业服务中心/保安部/一班" in replies[0] and "员工" in replies[0]
    )


async def test_help_mid_check_shows_question_again(person) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    replies = await worker.send("/help")
    assert "第 1/6 项" in replies[-1]
    replies = await worker.send("/patrol")
    assert "/cancel" in replies[0] and "第 1/6 项" in replies[1]


async def test_unknown_person_is_told_to_ask_admin(app: App, org) -> None:
    stranger = Person(app, 0, "stranger")
    stranger.user_id = "someone-new"
    replies = await stranger.send("/check")
    assert stranger.outcome is Outcome.UNKNOWN_PERSON and "管理员" in replies[0]
    runs = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM checklist_runs").fetchone())
    assert runs[0] == 0


async def test_deactivated_person_loses_access_at_once(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET active = 0 WHERE id = ?", (worker.staff_id,))
    )
    replies = await worker.press("正常")
    assert worker.outcome is Outcome.UNKNOWN_PERSON and "管理员" in replies[0]


async def test_unexpected_input_gets_hint(person) -> None:
    worker = await person("张伟")
    assert "/help" in (await worker.send("你好"))[0]
    assert "/help" in (await worker.send("/nosuchcommand"))[0]
    replies = await worker.deliver(InboundKind.LOCATION, "", data={"lat": 1.0, "lon": 2.0})
    assert replies and "/help" in replies[0]


async def test_overlong_description_is_refused_and_step_kept(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await worker.press("有问题")
    replies = await worker.send("很" * 100_000)
    assert worker.outcome is Outcome.REFUSED and "太长" in replies[0]
    assert "有什么问题" in replies[1]
    replies = await worker.send("短描述")
    assert "照片" in replies[0]


async def test_daily_inspection_is_data_driven(person, app: App) -> None:
    supervisor = await person("刘强")
    replies = await supervisor.send("/daily")
    assert "日常安全检查" in replies[0] and "员工反映的安全问题" in replies[1]
    for _ in range(5):
        replies = await supervisor.press("正常")
    assert "已完成" in replies[-1]


async def test_start_time_is_utc_in_register(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    run = await app.db.read(lambda c: c.execute("SELECT started_at FROM checklist_runs").fetchone())
    assert run["started_at"] == START.isoformat(timespec="microseconds")


async def test_hazards_are_numbered_per_local_year(person, app: App, clock: FakeClock) -> None:
    worker = await person("张伟")
    for day in range(2):
        await worker.send("/check")
        if day:
            await worker.press("重新检查")
        await worker.press("有问题")
        await worker.send(f"问题{day}")
        await worker.press("跳过")
        await answer_all(worker, count=5)
    # 16:00 UTC on 31 December is already 1 January in Shanghai.
    from datetime import UTC, datetime

    clock.set(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    await worker.send("/check")
    await worker.press("有问题")
    await worker.send("新年的问题")
    await worker.press("跳过")
    numbers = await app.db.read(
        lambda c: [row[0] for row in c.execute("SELECT number FROM hazards ORDER BY id")]
    )
    assert numbers == ["YH-2026-0001", "YH-2026-0002", "YH-2027-0001"]
