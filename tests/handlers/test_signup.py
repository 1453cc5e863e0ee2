"""Sign-up, channel-blind: own number, someone else's, unknown numbers, and
one-time invitations with their expiry."""

from __future__ import annotations

from datetime import timedelta

from conftest import START, Person

from bot.app import App
from bot.clock import FakeClock, iso
from bot.engine import Outcome
from bot.model import InboundKind
from bot.store import invites


def stranger(app: App, user_id: str = "new-1") -> Person:
    someone = Person(app, 0, "stranger")
    someone.user_id = user_id
    return someone


async def identities(app: App) -> list[tuple[str, int]]:
    rows = await app.db.read(
        lambda c: c.execute(
            "SELECT user_id, staff_id FROM channel_identities WHERE channel = 'test'"
        ).fetchall()
    )
    return [(row["user_id"], row["staff_id"]) for row in rows]


async def test_stranger_is_asked_for_their_phone(app: App, org) -> None:
    someone = stranger(app)
    replies = await someone.send("你好")
    assert "手机号" in replies[0] and someone.last_buttons[0][1] == "@contact"


async def test_own_number_signs_in(app: App, org) -> None:
    someone = stranger(app)
    replies = await someone.deliver(
        InboundKind.CONTACT, "", data={"phone": "8613800000003", "own": True}
    )
    assert "张伟" in replies[0]
    assert await identities(app) == [("new-1", org["张伟"])]
    someone.staff_id = org["张伟"]
    replies = await someone.send("/check")
    assert "岗前安全自查" in replies[0]


async def test_someone_elses_number_is_refused(app: App, org) -> None:
    someone = stranger(app)
    replies = await someone.deliver(
        InboundKind.CONTACT, "", data={"phone": "13800000003", "own": False}
    )
    assert "本人" in replies[0] and await identities(app) == []


async def test_unknown_and_deactivated_numbers_are_refused_admins_told_once(app: App, org) -> None:
    await app.db.transaction(
        lambda c: c.execute("UPDATE staff SET active = 0 WHERE id = ?", (org["陈磊"],))
    )
    for phone in ["13912345678", "13912345678", "13800000005"]:
        replies = await stranger(app).deliver(
            InboundKind.CONTACT, "", data={"phone": phone, "own": True}
        )
        assert "管理员" in replies[0]
    admin = Person(app, org["王建国"], "王建国")
    held = await admin.held()
    assert len(held) == 2 and "139 1234 5678" in held[0] and "138 0000 0005" in held[1]
    assert await identities(app) == []


async def test_invite_signs_in_once_and_expires(app: App, org, clock: FakeClock) -> None:
    expires = iso(START + timedelta(days=7))
    for code in ("good", "late"):
        await app.db.transaction(
            lambda c, code=code: invites.create(c, code, org["刘强"], iso(START), expires)
        )
    replies = await stranger(app, "a").send("/start good")
    assert "刘强" in replies[0]
    replies = await stranger(app, "b").send("/start good")
    assert "无效" in replies[0]
    clock.advance(timedelta(days=8))
    someone = stranger(app, "c")
    replies = await someone.send("/start late")
    assert "无效" in replies[0] and someone.outcome is Outcome.UNKNOWN_PERSON
    assert await identities(app) == [("a", org["刘强"])]
