"""Urgent reports interrupt: an injury or a hazard is never behind a checklist.
The flow they interrupt waits and resumes where it was; /cancel says which
flow was left and what became of what was entered."""

from __future__ import annotations

from bot.app import App
from bot.i18n import catalog
from handlers.router import build_router


async def test_an_incident_report_starts_in_the_middle_of_a_check_and_the_check_resumes(
    person, app: App
) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    await worker.press("正常")
    replies = await worker.send("/incident")
    assert not any("先完成" in r for r in replies), replies
    assert any("⏸ 检查已暂停" in r for r in replies)
    state = await app.db.read(
        lambda c: c.execute(
            "SELECT flow FROM conversations WHERE staff_id = ?", (worker.staff_id,)
        ).fetchone()[0]
    )
    assert state == "incident"
    replies = await worker.send("/cancel")
    assert replies[0].startswith("已退出事故上报。刚才填写的内容没有保存。")
    assert "▶️ 继续检查" in replies[1] and "第 2/" in replies[-1]
    # The check carries on from item 2, with working buttons.
    replies = await worker.press("正常")
    assert "第 3/" in replies[-1]


async def test_a_hazard_report_interrupts_a_check_and_hands_back_when_filed(
    person, app: App
) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    replies = await worker.send("/hazard")
    assert any("⏸" in r for r in replies)
    flow = await app.db.read(
        lambda c: c.execute(
            "SELECT flow FROM conversations WHERE staff_id = ?", (worker.staff_id,)
        ).fetchone()[0]
    )
    assert flow == "hazard_report"


async def test_in_english_the_pause_and_the_resume_name_the_check(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/lang en")
    await worker.send("/check")
    replies = await worker.send("/incident")
    assert any(r.startswith("⏸ Paused: the check.") for r in replies)
    replies = await worker.send("/cancel")
    assert replies[0] == "You have left the incident report. What you had entered was not saved."
    assert replies[1] == "▶️ Back to the check:"


async def test_cancel_names_the_check_and_what_happens_to_it(person, app: App) -> None:
    worker = await person("张伟")
    await worker.send("/check")
    replies = await worker.send("/cancel")
    assert replies[0].startswith("已退出检查。未完成的检查不计入结果")


def test_every_flow_has_a_name_in_both_languages() -> None:
    flows = build_router().flows
    for language in ("zh-CN", "en"):
        names = catalog(language)
        assert [f for f in flows if f"flows.{f}" not in names] == [], language
