"""Notices with read receipts, as a sender, a recipient and an auditor see them."""

from __future__ import annotations

from datetime import timedelta

from conftest import Person

from bot.app import App
from bot.clock import FakeClock


async def send_notice(sender: Person, audience: str, text: str, names: str = "") -> list[str]:
    await sender.send("/notice")
    replies = await sender.press(audience)
    if names:
        replies = await sender.send(names)
    assert "请输入通知内容" in replies[-1], replies
    await sender.send(text)
    await sender.press("跳过")
    return await sender.press("发送")


async def test_supervisor_notice_reaches_the_unit_with_read_receipts(
    person, app: App, clock: FakeClock
) -> None:
    liu = await person("刘强")
    zhang, chen = await person("张伟"), await person("陈磊")
    cook = await person("吴刚")
    replies = await send_notice(liu, "本单位及下级", "今晚消防演练前请清理通道")
    assert "已发给 3 人" in replies[-1]  # 刘强's 保安部 but himself: 张伟, 陈磊, 杨洋
    assert not any("今晚消防演练" in text for text in replies)  # not sent to himself
    message = (await zhang.replies())[-1]
    assert "今晚消防演练前请清理通道" in message and "刘强" in message
    assert await cook.replies() == []  # 厨房 is not under 保安部
    assert "已阅读" in (await zhang.press("已读"))[-1]
    assert "之前" in (await zhang.press("已读"))[-1]
    status = (await liu.send("/notices"))[-1]
    assert "已读 1/3" in status and "陈磊" in status and "张伟" not in status.split("未读")[1]
    assert "刘强" not in status  # the sender is not someone who has not read it
    clock.advance(timedelta(hours=24, seconds=1))
    await app.scheduler.tick()
    assert any("还有一条通知未确认阅读" in t for t in await chen.replies())
    assert not any("未确认阅读" in t for t in await zhang.replies())


async def test_named_notice_is_confidential_and_limited(person, app: App) -> None:
    liu = await person("刘强")
    zhang, chen = await person("张伟"), await person("陈磊")
    replies = await send_notice(liu, "指定人员", "个人安全谈话通知", names="张伟")
    assert "已发给 1 人" in replies[-1]
    assert "个人安全谈话通知" in (await zhang.replies())[-1]
    assert await chen.replies() == []
    confidential = await app.db.read(
        lambda c: c.execute("SELECT confidential FROM notices").fetchone()[0]
    )
    assert confidential == 1
    # 陈磊 cannot confirm a notice that was not his.
    assert "不是发给您的" in (await chen.send("/read 1"))[-1]


async def test_named_people_outside_the_senders_scope_are_refused(person) -> None:
    liu = await person("刘强")
    await liu.send("/notice")
    await liu.press("指定人员")
    replies = await liu.send("吴刚, 张伟")  # 吴刚 works in the kitchen, not 保安部
    assert "吴刚" in replies[0] and "找不到" in replies[0]


async def test_workers_cannot_send_notices(person) -> None:
    zhang = await person("张伟")
    assert "只有主管或管理员" in (await zhang.send("/notice"))[0]


async def test_admin_can_notify_a_role_across_the_organisation(person) -> None:
    admin = await person("王建国")
    officer = await person("李静")
    replies = await send_notice(admin, "安全员", "季度专业检查下周开始")
    assert "已发给 1 人" in replies[-1]
    assert "季度专业检查下周开始" in (await officer.replies())[-1]


async def test_the_sender_is_never_a_recipient(person, app: App) -> None:
    admin = await person("王建国")
    everyone = await app.db.read(
        lambda c: c.execute("SELECT COUNT(*) FROM staff WHERE active = 1").fetchone()[0]
    )
    assert f"已发给 {everyone - 1} 人" in (await send_notice(admin, "全体人员", "元旦放假安排"))[-1]
    assert "已发给 1 人" in (await send_notice(admin, "指定人员", "谈话", names="王建国, 李静"))[-1]
    recipients = await app.db.read(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM notice_recipients WHERE staff_id = ?", (admin.staff_id,)
        ).fetchone()[0]
    )
    assert recipients == 0
    await admin.send("/notice")
    await admin.press("指定人员")
    assert "没有可发送的人" in (await admin.send("王建国"))[0]


async def test_an_english_notice_counts_people_as_english_does(person) -> None:
    liu, zhang, chen = await person("刘强"), await person("张伟"), await person("陈磊")
    await liu.send("/lang en")
    await liu.send("/notice")
    await liu.press("Named people")
    assert (await liu.send("张伟"))[-1] == "It will go to 1 person. Type the notice."
    await liu.send("Please clear the corridor")
    assert (await liu.press("Skip"))[-1] == "Send it to 1 person?\n“Please clear the corridor”"
    await liu.press("Discard")
    await liu.send("/notice")
    replies = await liu.press("My unit and below")
    assert replies[-1] == "It will go to 3 people. Type the notice."
    await liu.send("Drill tonight")
    await liu.press("Skip")
    replies = await liu.press("Send")
    assert replies[-1].startswith("Notice #1 sent to 3 people.")
    await zhang.replies()
    await zhang.press("已读")
    status = (await liu.send("/notices"))[-1]
    assert status.startswith("#1 “Drill tonight”: read by 1 of 3; not read yet by: ")
    assert "陈磊, 杨洋" in status and "、" not in status
    assert "Drill tonight" in (await chen.replies())[-1]


async def test_a_notice_can_carry_a_file(person, app: App) -> None:
    liu = await person("刘强")
    zhang = await person("张伟")
    await liu.send("/notice")
    await liu.press("指定人员")
    await liu.send("张伟")
    await liu.send("请查看附件中的疏散图")
    await liu.photo("ab/plan.png")
    await liu.press("发送")
    await zhang.replies()
    attachments = await app.db.read(
        lambda c: c.execute(
            "SELECT attachments FROM outbox WHERE staff_id = ? AND idempotency_key LIKE 'notice:%'",
            (zhang.staff_id,),
        ).fetchone()[0]
    )
    assert attachments == '["ab/plan.png"]'
