"""The WeCom transport against the fake WeCom server: how an outbox row
becomes messages and cards, how WeCom's errors reach the sender, and alerts
that pile up beyond a person's limit merged into one message."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import import_demo

from bot.app import App
from bot.channels.wecom.api import WeComAPI
from bot.channels.wecom.transport import CHANNEL, RobotTransport, WeComTransport
from bot.clock import FakeClock, iso
from bot.model import Button, Outbound
from bot.sender import TransientError, Unreachable
from bot.store import outbox, people
from bot.store.outbox import NewMessage
from tests.wecom.fakewecom import AGENT_ID, CORP_ID, SECRET, FakeWeCom

USER = "zhangwei"


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID) as server:
        yield server


@pytest.fixture
async def api(wecom: FakeWeCom) -> AsyncIterator[WeComAPI]:
    async with WeComAPI(wecom.base_url, CORP_ID, SECRET, AGENT_ID) as client:
        yield client


def row(text: str, buttons: list[list[tuple[str, str]]] | None = None, n: int = 1) -> Outbound:
    return Outbound(
        id=n,
        staff_id=1,
        channel=CHANNEL,
        address=USER,
        text=text,
        buttons=tuple(tuple(Button(label, action) for label, action in r) for r in buttons or []),
    )


async def test_a_long_text_goes_in_parts_of_at_most_2048_bytes(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    transport = WeComTransport(api, tmp_path, {})
    await transport.deliver(row("安全第一。" * 300), None)  # 4,500 bytes
    parts = [m.text or "" for m in wecom.messages_to(USER)]
    assert len(parts) == 3 and "".join(parts) == "安全第一。" * 300
    assert all(len(part.encode()) <= 2048 for part in parts)


async def test_a_question_is_a_card_and_more_than_six_choices_are_numbered(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    transport = WeComTransport(api, tmp_path, {})
    task = await transport.deliver(row("第 1/6 项\n设备完好", [[("✅ 正常", "v1:ok")]]), None)
    card = wecom.messages_to(USER)[-1]
    assert card.msgtype == "template_card" and card.content["task_id"] == task
    assert card.content["button_list"][0]["key"] == "v1:ok"
    many = [[(f"类别{n}", f"v2:c{n}") for n in range(9)]]
    await transport.deliver(row("请选择类别：", many, n=2), None)
    text = wecom.messages_to(USER)[-1]
    assert (
        text.msgtype == "text"
        and "1. 类别0" in (text.text or "")
        and "9. 类别8" in (text.text or "")
    )


async def test_a_location_request_becomes_words(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    transport = WeComTransport(api, tmp_path, {})
    question = row(
        "签到：请发送位置。", [[("📍 发送位置", "@location")], [("🚫 无法发送位置", "noloc")]]
    )
    await transport.deliver(question, None)
    card = wecom.messages_to(USER)[-1]
    assert [b["key"] for b in card.content["button_list"]] == ["noloc"]
    assert "📍 发送位置" in card.content["main_title"]["title"] + card.content["sub_title_text"]


async def test_wecom_errors_reach_the_sender_as_retry_or_unreachable(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    transport = WeComTransport(api, tmp_path, {})
    wecom.fail_next("message/send", -1)
    with pytest.raises(TransientError):
        await transport.deliver(row("hi"), None)
    wecom.fail_next("message/send", 45009)
    with pytest.raises(TransientError) as limited:
        await transport.deliver(row("hi"), None)
    assert limited.value.retry_after and limited.value.retry_after >= 30
    wecom.fail_next("message/send", 81013)
    with pytest.raises(Unreachable):
        await transport.deliver(row("hi"), None)


class Quick(WeComTransport):
    """WeCom with a tiny per-person limit, so a pile-up happens at once."""

    def limit(self, address: str | None) -> tuple[float, float]:
        return 0.5, 2.0


async def test_alerts_that_pile_up_go_as_one_message(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    app = await App.open(tmp_path / "f.db", {CHANNEL: Quick(api, tmp_path, {})}, clock=clock)
    try:
        org = await import_demo(app)

        def queue(conn: sqlite3.Connection) -> None:
            people.bind_identity(conn, CHANNEL, USER, org["刘强"], iso(clock.now()))
            for n in range(12):
                outbox.enqueue(
                    conn,
                    NewMessage(
                        staff_id=org["刘强"],
                        channel=CHANNEL,
                        address=USER,
                        text=f"⚠️ 隐患报告 {n}",
                        idempotency_key=f"alert:{n}",
                    ),
                    iso(clock.now()),
                )

        await app.db.transaction(queue)
        assert await app.sender.drain(CHANNEL) == 12
        sent = [m.text or "" for m in wecom.messages_to(USER)]
        assert sent[:2] == ["⚠️ 隐患报告 0", "⚠️ 隐患报告 1"]
        assert len(sent) == 3 and all(f"隐患报告 {n}" in sent[2] for n in range(2, 12))
        states = await app.db.read(lambda c: {r[0] for r in c.execute("SELECT status FROM outbox")})
        assert states == {"sent"}
    finally:
        await app.close()


async def test_a_group_robot_posts_to_its_key(wecom: FakeWeCom, api: WeComAPI) -> None:
    key = wecom.add_robot()
    await RobotTransport(api).deliver(
        Outbound(id=1, staff_id=None, channel="wecom_robot", address=key, text="⚠️ 隐患报告"),
        None,
    )
    assert [m.content for m in wecom.robot_messages] == ["⚠️ 隐患报告"]


async def test_a_printable_pdf_goes_as_a_file(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    (tmp_path / "documents" / "ab12").mkdir(parents=True)
    (tmp_path / "documents" / "ab12" / "ZG-2026-001.pdf").write_bytes(b"%PDF-1.4 order")
    transport = WeComTransport(api, tmp_path, {})
    message = replace(
        row("整改通知书 ZG-2026-001"), attachments=("documents/ab12/ZG-2026-001.pdf",)
    )
    await transport.deliver(message, None)
    file, text = wecom.messages_to(USER)
    assert file.msgtype == "file" and text.text == "整改通知书 ZG-2026-001"
    upload = wecom.uploads[file.content["media_id"]]
    assert (upload.filename, upload.content) == ("ZG-2026-001.pdf", b"%PDF-1.4 order")
