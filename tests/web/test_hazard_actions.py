"""The hazard card's buttons on the desk, over HTTP: a supervisor's form
does what the chat does (the same audit row, the same message to the people
concerned), a person who may not act is refused and nothing changes, bad
input is named and kept in the form, and the routes want the CSRF token."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import START, Person
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.model import UserError
from bot.web.context import Desk
from bot.web.hazard_actions import read_deadline
from tests.web.deskkit import Browser, browser_fixture, desk_fixture, report  # noqa: F401

SECURITY = "物业服务中心/保安部/一班"
ASSIGN = {
    "measure": "清理纸箱，张贴禁止堆放标识",
    "deadline": "2026-11-28T23:59",
    "funding": "1200.50",
}


async def new_hazard(app: App, org: dict[str, int], state: str = "open", **columns: Any) -> str:
    number = await report(
        app, unit_path=SECURITY, reporter=org["张伟"], description="二楼消防通道被纸箱堵住"
    )
    if state != "open":
        sets = {"status": state, "responsible_id": org["陈磊"], "measure": "清理纸箱", **columns}
        assignments = ", ".join(f"{column} = ?" for column in sets)
        await app.db.transaction(
            lambda conn: conn.execute(
                f"UPDATE hazards SET {assignments} WHERE number = ?", (*sets.values(), number)
            )
        )
    return number


async def row(app: App, number: str) -> dict[str, Any]:
    found = await app.db.read(
        lambda conn: conn.execute("SELECT * FROM hazards WHERE number = ?", (number,)).fetchone()
    )
    return dict(found)


async def trail(app: App, number: str) -> list[tuple[str, str]]:
    rows = await app.db.read(
        lambda conn: conn.execute(
            "SELECT a.action, s.name FROM audit_log a JOIN hazards h ON h.id = a.entity_id"
            " LEFT JOIN staff s ON s.id = a.actor_id WHERE a.entity = 'hazard'"
            " AND h.number = ? ORDER BY a.id",
            (number,),
        ).fetchall()
    )
    return [(r[0], r[1]) for r in rows]


async def messages(app: App, staff_id: int) -> list[dict[str, Any]]:
    rows = await app.db.read(
        lambda conn: conn.execute(
            "SELECT text, buttons, attachments FROM outbox WHERE staff_id = ? ORDER BY id",
            (staff_id,),
        ).fetchall()
    )
    return [dict(r) for r in rows]


async def signed_in(browser: Callable[[], Any], staff_id: int) -> Browser:
    someone: Browser = await browser()
    await someone.sign_in(staff_id)
    return someone


async def test_a_supervisor_assigns_the_four_fixes_and_the_worker_is_told_as_from_chat(
    app: App, org: dict[str, int], browser: Callable[[], Any], person: Callable[[str], Any]
) -> None:
    on_desk = await new_hazard(app, org)
    in_chat = await new_hazard(app, org)
    liu = await signed_in(browser, org["刘强"])
    card = await (await liu.get(f"/hazards/{on_desk}")).text()
    assert f'action="/hazards/{on_desk}/assign"' in card
    offered = re.findall(r'<option value="(\d+)"', card)
    assert str(org["陈磊"]) in offered and str(org["刘强"]) in offered
    assert str(org["黄海"]) not in offered  # 工程部 is not his to assign

    response = await liu.post(
        f"/hazards/{on_desk}/assign", csrf=liu.csrf, responsible=str(org["陈磊"]), **ASSIGN
    )
    assert response.status == 303 and response.headers["Location"] == f"/hazards/{on_desk}"
    shown = await (await liu.get(f"/hazards/{on_desk}")).text()
    assert f"已指派隐患 {on_desk}，责任人已收到通知。" in shown
    assert "已指派隐患" not in await (await liu.get(f"/hazards/{on_desk}")).text()  # once
    stored = await row(app, on_desk)
    assert stored["status"] == "assigned" and stored["responsible_id"] == org["陈磊"]
    assert stored["funding"] == "1200.50" and stored["measure"] == ASSIGN["measure"]
    assert await trail(app, on_desk) == [("reported", "张伟"), ("assign", "刘强")]

    # The same four fixes set in chat, on the twin hazard.
    chat: Person = await person("刘强")
    await chat.send(f"/hz {(await row(app, in_chat))['id']} assign")
    await chat.press("陈磊")
    await chat.send(ASSIGN["measure"])
    await chat.send("2026-11-28 23:59")
    await chat.send(ASSIGN["funding"])
    assert (await row(app, in_chat))["status"] == "assigned"

    desk_message, chat_message = await messages(app, org["陈磊"])
    ids = (str((await row(app, on_desk))["id"]), str((await row(app, in_chat))["id"]))
    assert "刘强 指派您整改隐患" in desk_message["text"]
    assert desk_message["text"].replace(on_desk, in_chat) == chat_message["text"]
    assert (
        desk_message["buttons"].replace(f"/hz {ids[0]}", f"/hz {ids[1]}")
        == (chat_message["buttons"])
    )
    assert ["▶️ 开始整改", f"/hz {ids[0]} start"] in json.loads(desk_message["buttons"])[0]


async def test_accept_send_back_more_time_and_an_order_from_the_card(
    app: App, org: dict[str, int], browser: Callable[[], Any], desk: Desk
) -> None:
    liu = await signed_in(browser, org["刘强"])
    done = await new_hazard(app, org, "submitted", rectification="纸箱已清走")
    assert "✅ 验收通过" in await (await liu.get(f"/hazards/{done}")).text()
    assert (await liu.post(f"/hazards/{done}/accept", csrf=liu.csrf)).status == 303
    assert (await row(app, done))["status"] == "closed"
    assert await trail(app, done) == [("reported", "张伟"), ("accept", "刘强")]
    for name in ("陈磊", "张伟"):  # the responsible person and the reporter
        assert f"隐患 {done} 已验收销号" in (await messages(app, org[name]))[-1]["text"]

    redo = await new_hazard(app, org, "submitted")
    response = await liu.post(f"/hazards/{redo}/back", csrf=liu.csrf, reason="通道里还有两箱")
    assert response.status == 303 and (await row(app, redo))["status"] == "in_progress"
    assert "通道里还有两箱" in (await messages(app, org["陈磊"]))[-1]["text"]

    later = "2026-12-03T15:59:59.000000+00:00"
    for word, deadline in (("approve", later), ("refuse", "2026-11-27T01:00:00.000000+00:00")):
        asked = await new_hazard(
            app, org, "extension_requested", proposed_deadline_at=later, interim_measures="围挡"
        )
        assert (await liu.post(f"/hazards/{asked}/{word}", csrf=liu.csrf)).status == 303
        stored = await row(app, asked)
        assert stored["status"] == "in_progress" and stored["proposed_deadline_at"] is None
        assert stored["deadline_at"] == deadline, word
        told = (await messages(app, org["陈磊"]))[-1]["text"]
        assert ("已同意" if word == "approve" else "未获同意") in told

    slow = await new_hazard(app, org, "in_progress", deadline_at="2026-11-29T09:00:00+00:00")
    earlier = {"deadline": "2026-11-28T18:00", "requirement": "今天下班前清空通道"}
    refused = await liu.post(f"/hazards/{slow}/order", csrf=liu.csrf, **earlier)
    page = await refused.text()
    assert refused.status == 400 and "早于原定期限" in page
    assert "今天下班前清空通道" in page  # what he typed is still there
    assert 'name="earlier"' in page  # and now the box to confirm the shorter time
    assert 'name="earlier"' not in await (await liu.get(f"/hazards/{slow}")).text()
    response = await liu.post(f"/hazards/{slow}/order", csrf=liu.csrf, earlier="1", **earlier)
    assert response.status == 303
    orders = await app.db.read(
        lambda conn: conn.execute("SELECT number, requirement FROM rectification_orders").fetchall()
    )
    assert [tuple(o) for o in orders] == [("ZG-2026-001", "今天下班前清空通道")]
    # The order's PDF is made after the action commits, by the bot's documents worker.
    await app.preparer.drain()
    order = (await messages(app, org["陈磊"]))[-1]
    assert "ZG-2026-001" in order["text"] and "2026-11-28 18:00" in order["text"]
    assert json.loads(order["attachments"])[0].endswith(".pdf")
    assert (
        f"/hazards/{slow}/orders/ZG-2026-001.pdf"
        in await (await liu.get(f"/hazards/{slow}")).text()
    )


async def test_someone_who_may_not_act_is_refused_and_nothing_changes(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org, "submitted")
    before = await row(app, number)
    for name, status in (("张伟", 403), ("陈磊", 403), ("王建国", 403), ("赵敏", 404)):
        someone = await signed_in(browser, org[name])
        response = await someone.post(f"/hazards/{number}/accept", csrf=someone.csrf)
        assert response.status == status, name
        if status == 403:
            assert "您没有权限进行这个操作" in await response.text(), name
    assert await row(app, number) == before
    assert await trail(app, number) == [("reported", "张伟")]
    assert await messages(app, org["陈磊"]) == []

    # The role is the stored one at the moment of the action, not the one at sign-in.
    liu = await signed_in(browser, org["刘强"])
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE staff SET roles = 'staff' WHERE id = ?", (org["刘强"],))
    )
    response = await liu.post(f"/hazards/{number}/accept", csrf=liu.csrf)
    assert response.status == 404  # a worker elsewhere: he may not even see it now
    assert (await row(app, number))["status"] == "submitted"


async def test_a_hazard_that_moved_on_is_refused_with_why(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org, "closed")
    liu = await signed_in(browser, org["刘强"])
    assert "✅ 验收通过" not in await (await liu.get(f"/hazards/{number}")).text()
    response = await liu.post(f"/hazards/{number}/accept", csrf=liu.csrf)
    assert response.status == 409
    assert f"隐患 {number} 现在不能进行这个操作（当前状态：已销号）" in await response.text()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"measure": "   "}, "请写出整改措施。"),
        ({"responsible": "999999"}, "只能从隐患所在单位及其下属单位"),
        ({"responsible": "黄海"}, "只能从隐患所在单位及其下属单位"),
        ({"responsible": "abc"}, "只能从隐患所在单位及其下属单位"),
        ({"funding": "abc"}, "看不懂金额“abc”"),
        ({"funding": "-5"}, "看不懂金额“-5”"),
        ({"deadline": "2026-11-26T10:00"}, "这个时间已经过去了"),
        ({"deadline": "明天"}, "看不懂这个时间"),
        ({"deadline": "2026-02-31T10:00"}, "2026-02-31 10:00"),
        ({"deadline": ""}, "请填写期限。"),
    ],
)
async def test_bad_input_is_named_and_what_was_typed_is_kept(
    app: App, org: dict[str, int], browser: Callable[[], Any], changes: dict[str, str], says: str
) -> None:
    number = await new_hazard(app, org)
    liu = await signed_in(browser, org["刘强"])
    form = {"responsible": str(org["陈磊"]), **ASSIGN, **changes}
    if form["responsible"] == "黄海":
        form["responsible"] = str(org["黄海"])
    response = await liu.post(f"/hazards/{number}/assign", csrf=liu.csrf, **form)
    page = await response.text()
    assert response.status == 400 and says in page, page[-3000:]
    for field in ("measure", "funding"):
        if form[field].strip():
            assert form[field] in page, field  # nothing typed is lost
    assert (await row(app, number))["status"] == "open"
    assert await trail(app, number) == [("reported", "张伟")]
    assert await messages(app, org["陈磊"]) == []


async def test_a_forged_action_or_one_that_needs_the_chat_is_refused(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org, "in_progress")
    chen = await signed_in(browser, org["陈磊"])
    card = await (await chen.get(f"/hazards/{number}")).text()
    assert f"/hz {(await row(app, number))['id']} submit" in card  # with photos: in chat
    for word in ("destroy", "submit", "extend", "pdf"):
        response = await chen.post(f"/hazards/{number}/{word}", csrf=chen.csrf)
        assert response.status == 400 and "没有这个操作。" in await response.text(), word
    assert (await chen.post("/hazards/YH-2099-0001/accept", csrf=chen.csrf)).status == 404
    assert await trail(app, number) == [("reported", "张伟")]


async def test_the_actions_want_the_csrf_token(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org, "submitted")
    liu = await signed_in(browser, org["刘强"])
    assert (await liu.post(f"/hazards/{number}/accept")).status == 403
    assert (await liu.post(f"/hazards/{number}/accept", csrf="guessed")).status == 403
    assert (await row(app, number))["status"] == "submitted"


async def test_the_card_speaks_english_to_whoever_chose_it(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org)
    liu = await signed_in(browser, org["刘强"])
    await liu.post("/language", csrf=liu.csrf, language="en", back="/")
    card = await (await liu.get(f"/hazards/{number}")).text()
    assert "Assign and tell them" in card and "choose the responsible person" in card
    refused = await liu.post(
        f"/hazards/{number}/assign",
        csrf=liu.csrf,
        responsible=str(org["陈磊"]),
        **{**ASSIGN, "funding": "lots"},
    )
    assert "I cannot read the amount “lots”" in await refused.text()
    closed = await new_hazard(app, org, "closed")
    late = await liu.post(f"/hazards/{closed}/accept", csrf=liu.csrf)
    assert "cannot be done to hazard" in (text := await late.text()) and "(it is closed)" in text
    await liu.post(
        f"/hazards/{number}/assign", csrf=liu.csrf, responsible=str(org["陈磊"]), **ASSIGN
    )
    shown = await (await liu.get(f"/hazards/{number}")).text()
    assert f"Hazard {number} assigned; the responsible person has been told." in shown
    # 陈磊 reads Chinese: his message is in his language, whatever the desk's.
    assert "刘强 指派您整改隐患" in (await messages(app, org["陈磊"]))[-1]["text"]


HOSTILE = (
    "<script>alert(1)</script>",
    "\x00\x01",
    "🔥" * 3000,
    "1e9",
    "99999999999999999999999",
    "2026-11-28T18:00' OR 1=1 --",
    "../../etc/passwd",
)


async def test_hostile_input_in_every_field_changes_nothing_and_is_escaped(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org)
    liu = await signed_in(browser, org["刘强"])
    for nasty in HOSTILE:
        for field in ("responsible", "deadline", "funding"):
            form = {"responsible": str(org["陈磊"]), **ASSIGN, field: nasty}
            response = await liu.post(f"/hazards/{number}/assign", csrf=liu.csrf, **form)
            page = await response.text()
            assert response.status == 400, (field, nasty[:20])
            assert "<script>alert(1)</script>" not in page
    assert (await row(app, number))["status"] == "open"
    assert await trail(app, number) == [("reported", "张伟")]
    assert await messages(app, org["陈磊"]) == []
    # In words, anything is words: stored as typed, shown escaped.
    form = {"responsible": str(org["陈磊"]), **ASSIGN, "measure": HOSTILE[0]}
    assert (await liu.post(f"/hazards/{number}/assign", csrf=liu.csrf, **form)).status == 303
    card = await (await liu.get(f"/hazards/{number}")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card and HOSTILE[0] not in card


async def test_a_refused_forms_page_switches_language_back_to_the_card(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    number = await new_hazard(app, org)
    liu = await signed_in(browser, org["刘强"])
    refused = await liu.post(f"/hazards/{number}/back", csrf=liu.csrf, reason="x")
    assert refused.status == 409
    assert f'name="back" value="/hazards/{number}"' in await refused.text()


@given(
    st.one_of(
        st.text(max_size=60),
        st.from_regex(
            r"20[0-9]{2}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?)?", fullmatch=True
        ),
    )
)
def test_a_typed_deadline_is_a_moment_to_come_or_a_refusal(text: str) -> None:
    try:
        moment = read_deadline(text, "Asia/Shanghai", START)
    except UserError as refusal:
        assert refusal.key in (
            "web.need_deadline",
            "time.format",
            "time.no_such_date",
            "time.in_the_past",
        )
        return
    assert moment > START and moment.tzinfo is not None
