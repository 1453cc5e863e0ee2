"""Group chats as units' alert groups: who may bind one, and that a group
bound to one unit is not quietly taken over by another unit's supervisor."""

from __future__ import annotations

from conftest import CHANNEL, Person

from bot.app import App
from bot.model import InboundKind

GROUP = "-100200"


async def in_group(someone: Person, text: str, chat: str = GROUP) -> list[str]:
    """`someone` writes `text` in the group chat; returns what the bot said there."""
    before = await _group_seen(someone.app, chat)
    await someone.deliver(InboundKind.COMMAND, text, data={"group": True, "chat": chat})
    return (await _group_texts(someone.app, chat))[before:]


async def _group_texts(app: App, chat: str) -> list[str]:
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT text FROM outbox WHERE channel = ? AND address = ? ORDER BY id", (CHANNEL, chat)
        ).fetchall()
    )
    return [row["text"] for row in rows]


async def _group_seen(app: App, chat: str) -> int:
    return len(await _group_texts(app, chat))


async def bound_to(app: App, chat: str = GROUP) -> tuple[str, str] | None:
    row = await app.db.read(
        lambda c: c.execute(
            "SELECT u.path, s.name FROM alert_groups g JOIN units u ON u.id = g.unit_id"
            " JOIN staff s ON s.id = g.bound_by WHERE g.channel = ? AND g.chat_id = ?",
            (CHANNEL, chat),
        ).fetchone()
    )
    return (row[0], row[1]) if row else None


async def make_supervisor(app: App, staff_id: int) -> None:
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET roles = 'supervisor' WHERE id = ?", (staff_id,))
    )


async def test_a_supervisor_binds_a_free_group_and_staff_may_not(person, app) -> None:
    zhang, liu = await person("张伟"), await person("刘强")
    assert "只有主管或管理员" in (await in_group(zhang, "/bindgroup"))[0]
    assert await bound_to(app) is None
    assert "物业服务中心/保安部" in (await in_group(liu, "/bindgroup"))[0]
    assert await bound_to(app) == ("物业服务中心/保安部", "刘强")
    assert await liu.replies() == []  # binding it again himself: nobody to tell
    await in_group(liu, "/bindgroup")
    assert await liu.replies() == []


async def test_another_units_supervisor_cannot_take_over_a_bound_group(person, app) -> None:
    liu, zhao = await person("刘强"), await person("赵敏")
    await in_group(liu, "/bindgroup")
    replies = await in_group(zhao, "/bindgroup@frontline_bot")
    assert "已是「物业服务中心/保安部」的告警群" in replies[0]
    assert await bound_to(app) == ("物业服务中心/保安部", "刘强")
    told = await liu.replies()
    assert len(told) == 1 and "赵敏" in told[0] and "已拒绝" in told[0]


async def test_a_team_head_cannot_take_over_his_departments_group(person, app, org) -> None:
    await make_supervisor(app, org["张伟"])  # 张伟 heads 保安部/一班 for this test
    liu, zhang = await person("刘强"), await person("张伟")
    await in_group(liu, "/bindgroup")
    assert "已是「物业服务中心/保安部」的告警群" in (await in_group(zhang, "/bindgroup"))[0]
    assert await bound_to(app) == ("物业服务中心/保安部", "刘强")


async def test_a_supervisor_above_both_units_rebinds_and_the_binder_is_told(
    person, app, org
) -> None:
    await make_supervisor(app, org["张伟"])
    zhang, liu = await person("张伟"), await person("刘强")
    await in_group(zhang, "/bindgroup")
    assert await bound_to(app) == ("物业服务中心/保安部/一班", "张伟")
    assert "物业服务中心/保安部" in (await in_group(liu, "/bindgroup"))[0]
    assert await bound_to(app) == ("物业服务中心/保安部", "刘强")
    told = await zhang.replies()
    assert len(told) == 1 and "刘强" in told[0] and "「物业服务中心/保安部」" in told[0]


async def test_an_admin_rebinds_any_group_and_the_binder_is_told(person, app) -> None:
    zhao, wang = await person("赵敏"), await person("王建国")
    await in_group(zhao, "/bindgroup")
    assert "「物业服务中心」" in (await in_group(wang, "/bindgroup"))[0]
    assert await bound_to(app) == ("物业服务中心", "王建国")
    told = await zhao.replies()
    assert len(told) == 1 and "王建国" in told[0] and "物业服务中心/工程部" in told[0]


async def test_a_second_supervisor_of_the_same_unit_rebinds_and_the_first_is_told(
    person, app, org
) -> None:
    await make_supervisor(app, org["陈磊"])
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE staff SET unit_id = (SELECT unit_id FROM staff WHERE id = ?) WHERE id = ?",
            (org["刘强"], org["陈磊"]),
        )
    )
    liu, chen = await person("刘强"), await person("陈磊")
    await in_group(liu, "/bindgroup")
    await in_group(chen, "/bindgroup")
    assert await bound_to(app) == ("物业服务中心/保安部", "陈磊")
    assert any("陈磊" in text for text in await liu.replies())
