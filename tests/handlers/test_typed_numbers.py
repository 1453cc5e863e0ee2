"""Ids and numbers people type or buttons carry: superscripts, other scripts'
digits, numbers longer than a database integer. Each gets "not found" or the
question again, never the apology for a bug."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import START, Outcome, Person
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.clock import iso
from bot.i18n import t
from bot.model import InboundKind
from bot.numbers import MAX_ID, parse_number
from bot.store import conversations, people
from handlers.router import build_router

HUGE = "99999999999999999999999"
INTERNAL = {t(lang, "errors.internal") for lang in ("zh-CN", "en")}
PEOPLE = ("张伟", "刘强", "李静", "王建国", "马秀英", "孙丽", "郑华")
COMMANDS = sorted(build_router().commands)


async def add_hazard(worker: Person) -> None:
    await worker.send("/hazard")
    await worker.send("二楼消防通道被纸箱堵住")
    await worker.send("二楼东侧通道")
    await worker.press("跳过")
    await worker.press("消防")
    await worker.press("一般隐患")


async def add_client(app: App, worker_id: int) -> int:
    def insert(conn: Any) -> int:
        cursor = conn.execute(
            "INSERT INTO clients (number, name, address, lat, lon, phone, emergency_contact,"
            " unit_id, services, created_at, updated_at)"
            " VALUES ('K001', '陈奶奶', '幸福路 8 号', 31.23, 121.47, '13900000000', '女儿',"
            " ?, ?, ?, ?)",
            (
                people.unit_id(conn, "物业服务中心/长者服务中心/上门服务组"),
                json.dumps(["meal"]),
                iso(START),
                iso(START),
            ),
        )
        conn.execute(
            "INSERT INTO client_workers (client_id, staff_id) VALUES (?, ?)",
            (cursor.lastrowid, worker_id),
        )
        return int(cursor.lastrowid)

    return int(await app.db.transaction(insert))


def test_a_number_is_ascii_digits_within_bounds() -> None:
    assert parse_number(" 42 ") == 42
    assert parse_number(str(MAX_ID)) == MAX_ID
    for text in ("²", "٣", "４２", "1²", "-1", "+1", "1.0", "", " ", HUGE, "1" * 5000):
        assert parse_number(text) is None, text
    assert parse_number("0", low=1) is None
    assert parse_number("10", high=9) is None


@given(st.text(max_size=30))
def test_parse_number_agrees_with_ascii_int(text: str) -> None:
    stripped = text.strip()
    expected = (
        int(stripped)
        if stripped.isascii() and stripped.isdigit() and int(stripped) <= MAX_ID
        else None
    )
    assert parse_number(text) == expected


@pytest.mark.parametrize("typed", ["²", HUGE, "1" * 200])
async def test_odd_ids_get_not_found(person, typed: str) -> None:
    zhang = await person("张伟")
    shown = typed[:20]
    expected = {
        f"/hz {typed}": t("zh-CN", "hazard.no_such"),  # an id is never quoted back
        f"/read {typed}": t("zh-CN", "notice.no_such"),
        f"/done {typed}": t("zh-CN", "duty.no_such"),
        f"/vr {typed}": t("zh-CN", "visit_admin.request_not_found", request=shown),
    }
    for command, answer in expected.items():
        assert await zhang.send(command) == [answer], command
        assert zhang.outcome is Outcome.REFUSED
    # The same lines from a button (a callback) answer the same.
    for command, answer in expected.items():
        assert await zhang.deliver(InboundKind.ACTION, command) == [answer], command


@pytest.mark.parametrize("typed", ["²", HUGE])
async def test_odd_page_numbers_show_the_first_page(person, typed: str) -> None:
    zhang, ma = await person("张伟"), await person("马秀英")
    assert await zhang.send(f"/hazards {typed}") == await zhang.send("/hazards")
    assert zhang.outcome is Outcome.HANDLED
    assert await ma.send(f"/visits {typed}") == await ma.send("/visits")
    assert ma.outcome is Outcome.HANDLED


@pytest.mark.parametrize("typed", ["²", HUGE])
async def test_visit_with_an_odd_client_number_is_not_found(person, typed: str) -> None:
    ma = await person("马秀英")
    assert await ma.send(f"/visit {typed}") == [t("zh-CN", "visit.no_such_client", text=typed[:20])]


async def test_a_long_number_on_a_button_asks_again(person, app: App) -> None:
    zhang, liu = await person("张伟"), await person("刘强")
    await add_hazard(zhang)
    await liu.send("/hz 1 assign")
    question = await liu.deliver(InboundKind.ACTION, "v1:s" + "1" * 200)
    assert liu.outcome is Outcome.HANDLED
    # The same refusal as any choice outside the hazard's units, then the question again.
    assert question == [t("zh-CN", "hazard.not_assignable"), t("zh-CN", "hazard.ask_who")]
    await liu.deliver(InboundKind.ACTION, "v1:s²")
    assert liu.outcome is Outcome.HANDLED


digits = st.one_of(
    st.integers(min_value=0, max_value=10**30).map(str),
    st.just("1" * 200),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=25),
)
# The words after an id that start an action (/hz 1 assign, /vr 1 decline, ...).
words = st.sampled_from(
    (
        "",
        *("assign", "start", "submit", "extend", "accept", "back", "order", "pdf"),
        *("decline", "reassign", "investigate", "action", "report", "pause", "resume"),
    )
)
arguments = st.one_of(
    st.text(max_size=40),
    digits,
    st.builds(lambda n, w: f"{n} {w}".strip(), st.one_of(digits, st.sampled_from("12")), words),
)
payloads = st.one_of(
    st.text(max_size=40),
    digits,
    st.builds(
        lambda prefix, n: prefix + n,
        st.sampled_from(["s", "c", "w", "f", "p", "d", "u", "/hz ", "/vr ", "/read "]),
        digits,
    ),
)


@pytest.fixture
async def cast(app: App, person) -> dict[str, Person]:
    """Everyone who reaches a different part of the commands, with a hazard
    and a client on record so that ids can name something."""
    everyone = {name: await person(name) for name in PEOPLE}
    await add_hazard(everyone["张伟"])
    await add_client(app, everyone["马秀英"].staff_id)
    return everyone


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    who=st.sampled_from(PEOPLE),
    args=arguments,
    payload=payloads,
    typed=st.one_of(st.text(max_size=30), digits),
)
async def test_every_command_takes_any_arguments_and_buttons(
    app: App, cast: dict[str, Person], who: str, args: str, payload: str, typed: str
) -> None:
    sender = cast[who]
    for command in COMMANDS:
        await sender.send("/cancel")
        for kind, text in [
            (InboundKind.COMMAND, f"/{command} {args}"),
            (InboundKind.ACTION, f"/{command} {payload}"),
            (InboundKind.COMMAND, f"/{command} {args}"),
            (InboundKind.ACTION, None),  # a button of the question the command asked
            (InboundKind.TEXT, typed),
        ]:
            if text is None:
                version = await app.db.read(
                    lambda conn: conversations.load(conn, sender.staff_id).version
                )
                text = f"v{version}:{payload}"
            replies = await sender.deliver(kind, text)
            assert sender.outcome is not Outcome.ERROR, (command, kind, text)
            assert not INTERNAL & set(replies), (command, kind, text)
