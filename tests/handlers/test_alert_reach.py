"""A ⚠️ answer alerts someone who exists: the supervisors of the nearest unit
up the tree other than the reporter, else the safety officers; and the
reporter is told who was told, never a supervisor who does not exist."""

from __future__ import annotations

import sqlite3

from bot.app import App


async def alerted(app: App, name: str) -> list[sqlite3.Row]:
    return await app.db.read(
        lambda conn: conn.execute(
            "SELECT o.text FROM outbox o JOIN staff s ON s.id = o.staff_id"
            " WHERE s.name = ? AND o.text LIKE '%隐患%'",
            (name,),
        ).fetchall()
    )


async def report_problem(someone, command: str) -> list[str]:
    await someone.send(command)
    await someone.press("有问题")
    await someone.send("应急照明不亮")
    return await someone.press("跳过")


async def test_a_problem_in_the_top_unit_reaches_the_safety_officer_and_says_so(
    person, app: App
) -> None:
    admin = await person("王建国")  # 物业服务中心, the top unit: no supervisor anywhere above
    replies = await report_problem(admin, "/specialist")
    assert any("已通知 安全员 李静" in r for r in replies), replies
    assert not any("主管" in r for r in replies if "已登记隐患" in r)
    assert await alerted(app, "李静")


async def test_a_supervisors_own_problem_goes_up_not_to_himself(person, app: App) -> None:
    supervisor = await person("刘强")  # the only supervisor of 保安部
    replies = await report_problem(supervisor, "/daily")
    assert any("已通知 安全员 李静" in r for r in replies), replies
    assert await alerted(app, "李静")


async def test_a_worker_is_told_the_name_of_the_supervisor_who_was_alerted(
    person, app: App
) -> None:
    worker = await person("张伟")
    replies = await report_problem(worker, "/check")
    assert any("已通知 主管 刘强" in r for r in replies), replies
    assert await alerted(app, "刘强")
    assert not await alerted(app, "李静")  # a general hazard stays with the unit


async def test_in_english_the_reporter_reads_who_was_told(person, app: App) -> None:
    worker = await person("James Wilson")  # 餐饮部/厨房, supervisor 周芳
    await worker.send("/check")
    await worker.press("Problem")
    await worker.send("Grease on the floor")
    replies = await worker.press("Skip")
    assert any("told: supervisor 周芳" in r for r in replies), replies
