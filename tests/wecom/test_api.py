"""The WeCom API client against the fake WeCom server: the shared access token,
errors the sender can act on, media, the directory, group robots, and the text
splitting that keeps messages within WeCom's byte limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.wecom.api import (
    BAD_ANSWER,
    MAX_TEXT_BYTES,
    NO_ANSWER,
    TOKEN_MARGIN,
    TOO_LARGE,
    Department,
    WeComAPI,
    WeComError,
    delivery_error,
    split_utf8,
)
from bot.sender import PermanentError, TransientError, Unreachable
from tests.wecom.fakewecom import AGENT_ID, CORP_ID, SECRET, FakeWeCom


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(wecom: FakeWeCom, clock: Clock) -> AsyncIterator[WeComAPI]:
    async with WeComAPI(wecom.base_url, CORP_ID, SECRET, AGENT_ID, clock=clock) as client:
        yield client


# -- the access token ----------------------------------------------------------------------


async def test_one_token_serves_many_sends(wecom: FakeWeCom, api: WeComAPI) -> None:
    for n in range(5):
        await api.send_text("zhangsan", f"第{n}条")
    assert wecom.count("gettoken") == 1
    assert [m.text for m in wecom.messages_to("zhangsan")] == [f"第{n}条" for n in range(5)]


async def test_the_token_is_renewed_before_it_expires(
    wecom: FakeWeCom, api: WeComAPI, clock: Clock
) -> None:
    await api.send_text("zhangsan", "one")
    clock.now += wecom.expires_in - TOKEN_MARGIN - 1
    await api.send_text("zhangsan", "two")
    assert wecom.count("gettoken") == 1
    clock.now += 2
    await api.send_text("zhangsan", "three")
    assert wecom.count("gettoken") == 2


async def test_concurrent_senders_share_one_refresh(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.delay(0.05, "gettoken")  # long enough for every sender to find no token yet
    await asyncio.gather(*(api.send_text(f"user{n}", "hi") for n in range(20)))
    assert wecom.count("gettoken") == 1
    assert len(wecom.messages) == 20


async def test_an_expired_token_is_refreshed_once_and_the_call_retried(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    await api.send_text("zhangsan", "before")
    wecom.expire_token()
    await api.send_text("zhangsan", "after")
    assert wecom.count("gettoken") == 2
    assert [m.text for m in wecom.messages] == ["before", "after"]
    sends = [call for call in wecom.calls if call.endpoint == "message/send"]
    assert len(sends) == 3  # the one refused with 42001 and its retry


async def test_concurrent_calls_refused_with_42001_share_one_refresh(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    await api.send_text("zhangsan", "warm up")
    wecom.expire_token()
    await asyncio.gather(*(api.send_text(f"user{n}", "hi") for n in range(10)))
    assert wecom.count("gettoken") == 2
    assert len(wecom.messages) == 11


async def test_a_token_refused_twice_is_not_retried_forever(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    wecom.fail_next("message/send", 40014, times=2)
    with pytest.raises(WeComError) as caught:
        await api.send_text("zhangsan", "hi")
    assert caught.value.errcode == 40014
    assert wecom.count("message/send") == 2
    assert wecom.count("gettoken") == 2


async def test_a_wrong_secret_is_a_permanent_error(wecom: FakeWeCom) -> None:
    async with WeComAPI(wecom.base_url, CORP_ID, "wrong", AGENT_ID) as client:
        with pytest.raises(WeComError) as caught:
            await client.send_text("zhangsan", "hi")
    assert caught.value.errcode == 40001
    assert not caught.value.retryable
    assert isinstance(delivery_error(caught.value), PermanentError)
    assert not wecom.messages


async def test_a_failed_refresh_fails_every_waiting_caller_with_one_call(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    wecom.delay(0.05, "gettoken")
    wecom.fail_next("gettoken", -1)
    results = await asyncio.gather(
        *(api.send_text(f"user{n}", "hi") for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, WeComError) and r.retryable for r in results)
    assert wecom.count("gettoken") == 1
    await api.send_text("user0", "later")  # the next call tries again
    assert wecom.count("gettoken") == 2


# -- errors the sender acts on -------------------------------------------------------------


@pytest.mark.parametrize("errcode", [-1, 45009, 45033])
async def test_busy_and_rate_limits_are_retryable(
    wecom: FakeWeCom, api: WeComAPI, errcode: int
) -> None:
    wecom.fail_next("message/send", errcode)
    with pytest.raises(WeComError) as caught:
        await api.send_text("zhangsan", "hi")
    assert caught.value.errcode == errcode
    assert caught.value.retryable and not caught.value.unreachable
    assert isinstance(delivery_error(caught.value), TransientError)
    await api.send_text("zhangsan", "hi")  # one-shot: the next call goes through
    assert [m.text for m in wecom.messages] == ["hi"]


async def test_a_frequency_limit_waits_out_the_minute(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.fail_next("message/send", 45009)
    with pytest.raises(WeComError) as caught:
        await api.send_text("zhangsan", "hi")
    error = delivery_error(caught.value)
    assert isinstance(error, TransientError) and error.retry_after == 60.0


async def test_no_valid_recipient_is_unreachable(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.fail_next("message/send", 81013)
    with pytest.raises(WeComError) as caught:
        await api.send_text("lisi", "hi")
    assert caught.value.unreachable and not caught.value.retryable
    assert isinstance(delivery_error(caught.value), Unreachable)


async def test_a_member_who_left_is_unreachable(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.block("lisi")
    with pytest.raises(WeComError) as caught:
        await api.send_text("lisi", "hi")
    assert caught.value.errcode == 81013
    sent = await api.send_text(["lisi", "zhangsan"], "hi")
    assert sent.invalid_users == ("lisi",)
    assert [m.text for m in wecom.messages_to("zhangsan")] == ["hi"]
    assert wecom.messages_to("lisi") == []


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (503, True), (404, False)])
async def test_http_errors_are_retryable_only_when_the_server_is_at_fault(
    wecom: FakeWeCom, api: WeComAPI, status: int, retryable: bool
) -> None:
    wecom.fail_next("message/send", http_status=status)
    with pytest.raises(WeComError) as caught:
        await api.send_text("zhangsan", "hi")
    assert (caught.value.errcode, caught.value.http_status) == (NO_ANSWER, status)
    assert caught.value.retryable is retryable


async def test_a_dead_server_is_retryable(wecom: FakeWeCom) -> None:
    url = wecom.base_url
    await wecom.stop()
    async with WeComAPI(url, CORP_ID, SECRET, AGENT_ID) as client:
        with pytest.raises(WeComError) as caught:
            await client.send_text("zhangsan", "hi")
    assert caught.value.errcode == NO_ANSWER and caught.value.retryable
    assert "access_token" not in str(caught.value) and SECRET not in str(caught.value)


async def test_a_timeout_is_retryable(wecom: FakeWeCom) -> None:
    wecom.delay(0.25, "message/send")
    async with WeComAPI(wecom.base_url, CORP_ID, SECRET, AGENT_ID, timeout=0.05) as client:
        with pytest.raises(WeComError) as caught:
            await client.send_text("zhangsan", "hi")
    assert caught.value.errcode == NO_ANSWER and caught.value.retryable


async def test_an_answer_that_is_not_json_is_not_retried(wecom: FakeWeCom) -> None:
    async def html(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="<html>portal</html>", content_type="text/html")

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", html)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with WeComAPI(f"http://127.0.0.1:{port}", CORP_ID, SECRET, AGENT_ID) as client:
            with pytest.raises(WeComError) as caught:
                await client.send_text("zhangsan", "hi")
    finally:
        await runner.cleanup()
    assert caught.value.errcode == BAD_ANSWER and not caught.value.retryable


# -- messages and cards --------------------------------------------------------------------


async def test_markdown_and_images_reach_the_member(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    photo = tmp_path / "hazard.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 fake jpeg")
    media_id = await api.upload_image(photo)
    await api.send_markdown("zhangsan", "**隐患** 已上报")
    await api.send_image("zhangsan", media_id)
    markdown, image = wecom.messages_to("zhangsan")
    assert (markdown.msgtype, markdown.text) == ("markdown", "**隐患** 已上报")
    assert (image.msgtype, image.content) == ("image", {"media_id": media_id})
    assert wecom.uploads[media_id].content == b"\xff\xd8\xff\xe0 fake jpeg"
    assert wecom.uploads[media_id].content_type == "image/jpeg"


def _card(task_id: str) -> dict[str, object]:
    return {
        "card_type": "button_interaction",
        "main_title": {"title": "隐患确认", "desc": "一号楼三层"},
        "task_id": task_id,
        "button_list": [
            {"text": "接受", "style": 1, "key": "hazard:accept:42"},
            {"text": "驳回", "style": 2, "key": "hazard:reject:42"},
        ],
    }


async def test_a_card_is_answered_with_a_code_that_updates_it_once(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    sent = await api.send_template_card("zhangsan", _card("task-42"))
    assert sent.msgid and sent.response_code
    await api.update_template_card(["zhangsan"], sent.response_code, replace_name="已接受")
    assert wecom.message(sent.msgid).updates[0]["button"] == {"replace_name": "已接受"}
    with pytest.raises(WeComError):
        await api.update_template_card(["zhangsan"], sent.response_code, replace_name="again")


async def test_a_button_press_gives_a_fresh_code_for_the_update(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    sent = await api.send_template_card("zhangsan", _card("task-43"))
    code = wecom.click(sent.msgid)
    new_card = {**_card("task-43"), "button_list": [{"text": "已接受", "key": "noop"}]}
    await api.update_template_card(["zhangsan"], code, card=new_card)
    assert wecom.message(sent.msgid).updates[0]["template_card"] == new_card


async def test_a_card_without_task_id_is_refused(api: WeComAPI) -> None:
    card = _card("x")
    del card["task_id"]
    with pytest.raises(WeComError) as caught:
        await api.send_template_card("zhangsan", card)
    assert not caught.value.retryable


async def test_a_recalled_message_is_marked(wecom: FakeWeCom, api: WeComAPI) -> None:
    sent = await api.send_text("zhangsan", "oops")
    await api.recall(sent.msgid)
    assert wecom.message(sent.msgid).recalled


async def test_a_long_chinese_text_goes_out_in_parts_within_2048_bytes(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    lines = [f"第{n}项检查：消防通道畅通，灭火器压力正常，应急照明完好。" for n in range(120)]
    text = "\n".join(lines)
    assert len(text.encode()) > 3 * MAX_TEXT_BYTES
    with pytest.raises(WeComError) as caught:  # WeCom refuses it whole
        await api.send_markdown("zhangsan", text)
    assert caught.value.errcode == 45002
    for part in split_utf8(text):
        await api.send_markdown("zhangsan", part)
    parts = [m.text or "" for m in wecom.messages_to("zhangsan")]
    assert len(parts) >= 4
    assert all(len(p.encode()) <= MAX_TEXT_BYTES for p in parts)
    assert all(p.endswith("\n") for p in parts[:-1])  # cut between lines, not inside one
    assert "".join(parts) == text


# -- media ---------------------------------------------------------------------------------


async def test_a_photo_a_member_sent_is_downloaded(wecom: FakeWeCom, api: WeComAPI) -> None:
    media_id = wecom.add_media(b"\x89PNG photo bytes", content_type="image/png")
    assert await api.download_media(media_id) == b"\x89PNG photo bytes"


async def test_an_unknown_media_id_is_a_permanent_error(api: WeComAPI) -> None:
    with pytest.raises(WeComError) as caught:
        await api.download_media("nope")
    assert caught.value.errcode == 40007 and not caught.value.retryable


async def test_a_download_after_token_expiry_is_retried(wecom: FakeWeCom, api: WeComAPI) -> None:
    media_id = wecom.add_media(b"jpeg")
    await api.access_token()
    wecom.expire_token()
    assert await api.download_media(media_id) == b"jpeg"
    assert wecom.count("gettoken") == 2


async def test_media_over_the_limit_is_refused(wecom: FakeWeCom, api: WeComAPI) -> None:
    media_id = wecom.add_media(b"x" * 2000)
    with pytest.raises(WeComError) as caught:
        await api.download_media(media_id, limit=1000)
    assert caught.value.errcode == TOO_LARGE and not caught.value.retryable


async def test_an_oversized_image_is_not_uploaded(
    wecom: FakeWeCom, api: WeComAPI, tmp_path: Path
) -> None:
    photo = tmp_path / "huge.jpg"
    photo.write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    with pytest.raises(WeComError) as caught:
        await api.upload_image(photo)
    assert caught.value.errcode == TOO_LARGE
    assert wecom.count("media/upload") == 0


async def test_an_upload_after_token_expiry_is_sent_again_whole(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    await api.access_token()
    wecom.expire_token()
    media_id = await api.upload_media("file", b"report body", "report.pdf")
    assert wecom.uploads[media_id].content == b"report body"
    assert wecom.uploads[media_id].content_type == "application/pdf"


# -- directory -----------------------------------------------------------------------------

DEPARTMENTS = [
    {"id": 1, "name": "总公司", "parentid": 0, "order": 1},
    {"id": 2, "name": "物业分公司", "parentid": 1, "order": 2},
    {"id": 3, "name": "保安队", "parentid": 2, "order": 1},
    {"id": 4, "name": "财务部", "parentid": 1, "order": 3},
]
USERS = [
    {"userid": "zhangsan", "name": "张三", "department": [3], "mobile": "13800000001", "status": 1},
    {"userid": "lisi", "name": "李四", "department": [2], "mobile": "13800000002", "status": 1},
    {"userid": "wangwu", "name": "王五", "department": [4], "status": 5},
]


async def test_the_department_tree_is_listed(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.set_directory(DEPARTMENTS, USERS)
    assert await api.departments() == [Department.model_validate(d) for d in DEPARTMENTS]
    below = await api.departments(2)
    assert [(d.id, d.parentid) for d in below] == [(2, 1), (3, 2)]


async def test_members_are_listed_with_sub_departments(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.set_directory(DEPARTMENTS, USERS)
    everyone = await api.users(1)
    assert {(m.userid, m.status) for m in everyone} == {
        ("zhangsan", 1),
        ("lisi", 1),
        ("wangwu", 5),
    }
    branch = await api.users(2)
    assert {m.userid: m.department for m in branch} == {"zhangsan": (3,), "lisi": (2,)}
    assert [m.userid for m in await api.users(2, fetch_child=False)] == ["lisi"]
    simple = await api.users(2, simple=True)
    assert {m.userid: m.mobile for m in simple} == {"zhangsan": None, "lisi": None}
    assert {m.name for m in simple} == {"张三", "李四"}


async def test_an_unknown_department_is_an_error(wecom: FakeWeCom, api: WeComAPI) -> None:
    wecom.set_directory(DEPARTMENTS, USERS)
    with pytest.raises(WeComError) as caught:
        await api.users(99)
    assert caught.value.errcode == 60123


async def test_with_a_directory_only_its_active_members_receive(
    wecom: FakeWeCom, api: WeComAPI
) -> None:
    wecom.set_directory(DEPARTMENTS, USERS)
    with pytest.raises(WeComError) as caught:
        await api.send_text("wangwu", "hi")  # left the company (status 5)
    assert caught.value.unreachable
    await api.send_text("zhangsan", "hi")
    assert len(wecom.messages_to("zhangsan")) == 1


# -- group robots --------------------------------------------------------------------------


async def test_a_group_robot_posts_text_and_markdown(wecom: FakeWeCom, api: WeComAPI) -> None:
    key = wecom.add_robot()
    await api.robot_send(key, text="今日巡检完成", mentioned_mobiles=["13800000001"])
    await api.robot_send(key, markdown="# 日报\n> 隐患 **2** 项")
    text, markdown = wecom.robot_messages
    assert (text.msgtype, text.content) == ("text", "今日巡检完成")
    assert text.body["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert (markdown.msgtype, markdown.content) == ("markdown", "# 日报\n> 隐患 **2** 项")
    assert wecom.count("gettoken") == 0  # robots need no access token


async def test_an_unknown_robot_key_is_a_permanent_error(api: WeComAPI) -> None:
    with pytest.raises(WeComError) as caught:
        await api.robot_send("no-such-key", text="hi")
    assert caught.value.errcode == 93000 and not caught.value.retryable


async def test_a_rate_limited_robot_is_retryable(wecom: FakeWeCom, api: WeComAPI) -> None:
    key = wecom.add_robot()
    wecom.fail_next("webhook/send", 45009)
    with pytest.raises(WeComError) as caught:
        await api.robot_send(key, markdown="**hi**")
    assert caught.value.retryable


# -- split_utf8 ----------------------------------------------------------------------------


def test_a_short_text_is_one_part() -> None:
    assert split_utf8("你好") == ["你好"]
    assert split_utf8("") == [""]


def test_a_cut_never_splits_a_character() -> None:
    parts = split_utf8("安全" * 2000, limit=2048)
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert [len(p.encode()) for p in parts[:-1]] == [2046] * (len(parts) - 1)  # 682 characters
    assert "".join(parts) == "安全" * 2000


def test_a_line_break_in_the_second_half_is_preferred() -> None:
    text = "a" * 1500 + "\n" + "b" * 1000
    assert split_utf8(text) == ["a" * 1500 + "\n", "b" * 1000]
    early = "a" * 100 + "\n" + "b" * 3000
    assert split_utf8(early)[0] == "a" * 100 + "\n" + "b" * 1947


@given(
    text=st.text(alphabet=st.sampled_from("a\n 安全隐患👷‍♀️🧯é") | st.characters(), max_size=3000),
    limit=st.integers(min_value=4, max_value=600),
)
def test_parts_rejoin_to_the_text_and_fit_the_limit(text: str, limit: int) -> None:
    parts = split_utf8(text, limit)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-8", "surrogatepass")) <= limit for p in parts)
    assert all(parts) or parts == [""]
