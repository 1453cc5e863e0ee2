"""The hazard register's actions called directly (bot/hazards.py), as both
the chat and the desk call them: every action by every role in every state
(allowed ones move the state and write one audit row, the rest are refused
with the chat's catalog keys and write nothing), who each outcome says must
be told, and the refusals a form or a late answer can meet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from conftest import START

from bot import hazards as register
from bot.app import App
from bot.clock import iso
from bot.hazard_rules import RESPONSIBLE, TRANSITIONS, Action, Status
from bot.model import UserError
from bot.store import hazards, people

ZONE = "Asia/Shanghai"
DEADLINE = "2026-11-28T15:59:59+00:00"  # 23:59:59 tomorrow in Shanghai
PEOPLE = ("张伟", "陈磊", "刘强", "赵敏", "李静", "王建国")
OVERSIGHT = {"刘强", "李静"}  # 保安部's supervisor and the safety officer
WHO_MAY = {
    Action.ASSIGN: OVERSIGHT,
    Action.START: {"陈磊"},
    Action.SUBMIT: {"陈磊"},
    Action.REQUEST_EXTENSION: {"陈磊"},
    Action.APPROVE_EXTENSION: OVERSIGHT,
    Action.REFUSE_EXTENSION: OVERSIGHT,
    Action.ACCEPT: OVERSIGHT,
    Action.SEND_BACK: OVERSIGHT,
    Action.ORDER: OVERSIGHT,
}


class Undo(Exception):
    """Raised at the end of an attempt: the transaction is rolled back, the
    result comes out with it, so every attempt starts from the same hazard."""

    def __init__(self, result: Any) -> None:
        super().__init__("undo")
        self.result = result


def call(action: Action, org: dict[str, int]) -> Callable[[register.Acting, Any], Any]:
    """The action with inputs that are fine for it."""
    later = START + timedelta(days=5)
    return {
        Action.ASSIGN: lambda act, h: register.assign(
            act,
            h,
            responsible_id=org["陈磊"],
            measure="换锁",
            deadline=START + timedelta(days=2),
            funding=Decimal("300"),
        ),
        Action.START: register.start,
        Action.SUBMIT: lambda act, h: register.submit(act, h, text="锁已换", photos=["x.jpg"]),
        Action.REQUEST_EXTENSION: lambda act, h: register.request_extension(
            act, h, measures="已设围挡", photo=None, deadline=later
        ),
        Action.APPROVE_EXTENSION: register.approve,
        Action.REFUSE_EXTENSION: register.refuse,
        Action.ACCEPT: register.accept,
        Action.SEND_BACK: lambda act, h: register.send_back(act, h, reason="锁还是坏的"),
        Action.ORDER: lambda act, h: register.order(
            act, h, deadline=START + timedelta(days=3), requirement=""
        ),
    }[action]


async def seed(app: App, org: dict[str, int], state: Status, responsible: str = "陈磊") -> int:
    def file(conn: Any) -> int:
        hazard_id = hazards.create(
            conn,
            unit_id=people.staff_by_id(conn, org["张伟"]).unit_id,  # type: ignore[union-attr]
            reported_by=org["张伟"],
            source="report",
            description="配电箱门锁损坏",
            photo="before.jpg",
            severity="general",
            deadline_at=DEADLINE,
            now=iso(START),
        )
        conn.execute(
            "UPDATE hazards SET status = ?, responsible_id = ?, proposed_deadline_at = ?,"
            " measure = '换锁' WHERE id = ?",
            (
                state.value,
                None if state is Status.OPEN else org[responsible],
                "2026-12-03T15:59:59+00:00" if state is Status.EXTENSION else None,
                hazard_id,
            ),
        )
        return hazard_id

    return await app.db.transaction(file)


async def attempt(
    app: App, staff_id: int, hazard_id: int, action: Callable[[register.Acting, Any], Any]
) -> Any:
    """Run an action and undo it: the outcome (with the audit rows it wrote
    and the reminders left), or the refusal's key."""

    def run(conn: Any) -> None:
        staff = people.staff_by_id(conn, staff_id)
        assert staff is not None
        hazard = hazards.get(conn, hazard_id)
        before = len(hazards.history(conn, hazard_id))
        try:
            outcome = action(register.Acting(conn, staff, START, ZONE), hazard)
        except UserError as refusal:
            written = len(hazards.history(conn, hazard_id)) - before
            raise Undo(("refused", refusal.key, written)) from None
        trail = hazards.history(conn, hazard_id)[before:]
        pending = conn.execute(
            "SELECT COUNT(*) FROM reminders WHERE state = 'pending' AND idempotency_key LIKE ?",
            (f"hazard:{hazard_id}:%",),
        ).fetchone()[0]
        raise Undo(("done", outcome, trail, pending))

    with pytest.raises(Undo) as undone:
        await app.db.transaction(run)
    return undone.value.result


def names(outcome: register.Outcome) -> list[str]:
    return [notice.person.name for notice in outcome.notices]


# Who each action tells, when 刘强 acts (李静 acting: 刘强 is told of an order too).
TOLD = {
    Action.ASSIGN: ["陈磊"],
    Action.START: [],
    Action.SUBMIT: ["刘强"],
    Action.REQUEST_EXTENSION: ["刘强"],
    Action.APPROVE_EXTENSION: ["陈磊"],
    Action.REFUSE_EXTENSION: ["陈磊"],
    Action.ACCEPT: ["陈磊", "张伟"],
    Action.SEND_BACK: ["陈磊"],
    Action.ORDER: ["陈磊"],
}


@pytest.mark.parametrize("state", list(Status))
async def test_every_action_by_every_role_in_every_state(
    app: App, org: dict[str, int], state: Status
) -> None:
    hazard_id = await seed(app, org, state)
    for action in Action:
        for name in PEOPLE:
            result = await attempt(app, org[name], hazard_id, call(action, org))
            applies = (state, action) in TRANSITIONS
            # Before the four fixes nobody is the responsible person yet.
            may = name in WHO_MAY[action] and not (state is Status.OPEN and action in RESPONSIBLE)
            if may and applies:
                kind, outcome, trail, _ = result
                assert kind == "done", (action, name, result)
                assert outcome.hazard.status is TRANSITIONS[(state, action)]
                assert [entry.action for entry in trail] == [action.value]
                assert trail[0].actor == name
                detail = trail[0].detail
                assert (detail["from"], detail["to"]) == (state.value, outcome.hazard.status.value)
                told = names(outcome)
                assert name not in told  # nobody is told what they did themselves
                expected = TOLD[action] + (
                    ["刘强"] if action is Action.ORDER and name == "李静" else []
                )
                assert told == expected, (action, name)
            else:
                assert result[0] == "refused", (action, name, state)
                expected_key = "hazard.not_now" if may else "hazard.not_allowed"
                assert result[1] == expected_key, (action, name, state)
                assert result[2] == 0  # nothing written


async def test_the_responsible_person_never_decides_on_their_own_work(
    app: App, org: dict[str, int]
) -> None:
    """刘强 heads 保安部, but the hazard is his own to fix: 李静 decides."""
    for state, action in (
        (Status.SUBMITTED, Action.ACCEPT),
        (Status.SUBMITTED, Action.SEND_BACK),
        (Status.EXTENSION, Action.APPROVE_EXTENSION),
        (Status.EXTENSION, Action.REFUSE_EXTENSION),
        (Status.ASSIGNED, Action.ORDER),
        (Status.ASSIGNED, Action.ASSIGN),
    ):
        hazard_id = await seed(app, org, state, responsible="刘强")
        refused = await attempt(app, org["刘强"], hazard_id, call(action, org))
        assert refused[:2] == ("refused", "hazard.not_allowed"), action
        done = await attempt(app, org["李静"], hazard_id, call(action, org))
        assert done[0] == "done", action
    # Submitted by 刘强 himself: the next supervisors up the tree, else the officers.
    hazard_id = await seed(app, org, Status.IN_PROGRESS, responsible="刘强")
    submitted = await attempt(app, org["刘强"], hazard_id, call(Action.SUBMIT, org))
    assert "刘强" not in names(submitted[1]) and names(submitted[1])


async def test_assign_refuses_someone_from_elsewhere_or_deactivated_or_a_past_deadline(
    app: App, org: dict[str, int]
) -> None:
    hazard_id = await seed(app, org, Status.OPEN)

    def assign(**changes: Any) -> Callable[[register.Acting, Any], Any]:
        inputs: dict[str, Any] = dict(
            responsible_id=org["陈磊"],
            measure="换锁",
            deadline=START + timedelta(days=1),
            funding=Decimal("0"),
        )
        inputs.update(changes)
        return lambda act, h: register.assign(act, h, **inputs)

    for changes, key in (
        ({"responsible_id": org["黄海"]}, "hazard.not_assignable"),  # 工程部: not his to assign
        ({"responsible_id": 999_999}, "hazard.not_assignable"),  # nobody
        ({"deadline": START - timedelta(minutes=1)}, "time.in_the_past"),
        ({"measure": "  "}, "hazard.no_measure"),
        ({"measure": "x" * 2001}, "check.too_long"),
        ({"funding": Decimal("-1")}, "hazard.amount_too_large"),
    ):
        result = await attempt(app, org["刘强"], hazard_id, assign(**changes))
        assert result[:3] == ("refused", key, 0), changes
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE staff SET active = 0 WHERE id = ?", (org["陈磊"],))
    )
    result = await attempt(app, org["刘强"], hazard_id, assign())
    assert result[:3] == ("refused", "hazard.person_inactive", 0)
    # A safety officer may assign anyone of the hazard's unit, not of a unit elsewhere.
    result = await attempt(app, org["李静"], hazard_id, assign(responsible_id=org["杨洋"]))
    assert result[0] == "done" and result[1].hazard.responsible_id == org["杨洋"]


async def test_the_refusal_classes_let_the_chat_ask_again(app: App, org: dict[str, int]) -> None:
    hazard_id = await seed(app, org, Status.OPEN)

    def run(conn: Any) -> list[type]:
        liu = people.staff_by_id(conn, org["刘强"])
        hazard = hazards.get(conn, hazard_id)
        assert liu is not None and hazard is not None
        act = register.Acting(conn, liu, START, ZONE)
        found = []
        for responsible, deadline in (
            (org["黄海"], START + timedelta(days=1)),
            (org["陈磊"], START),
        ):
            try:
                register.assign(
                    act,
                    hazard,
                    responsible_id=responsible,
                    measure="换锁",
                    deadline=deadline,
                    funding=Decimal(0),
                )
            except UserError as refusal:
                found.append(type(refusal))
        return found

    assert await app.db.transaction(run) == [register.NotAssignable, register.PastDeadline]


async def test_assign_plans_the_reminders_and_accept_stops_them(
    app: App, org: dict[str, int]
) -> None:
    open_id = await seed(app, org, Status.OPEN)
    _, outcome, trail, pending = await attempt(app, org["刘强"], open_id, call(Action.ASSIGN, org))
    assert pending == 3  # due soon, overdue, escalated
    assert outcome.done == "hazard.assigned" and outcome.done_params["name"] == "陈磊"
    assert outcome.done_params["deadline"] == "2026-11-29 09:00"
    detail = trail[0].detail
    assert detail["responsible"] == "陈磊" and detail["funding"] == "300"
    assert outcome.notices[0].params == {"supervisor": "刘强"}
    submitted_id = await seed(app, org, Status.SUBMITTED)

    def plan(conn: Any) -> None:
        register.plan(conn, submitted_id, "general", START + timedelta(days=1), START)

    await app.db.transaction(plan)
    _, outcome, trail, pending = await attempt(
        app, org["刘强"], submitted_id, call(Action.ACCEPT, org)
    )
    assert pending == 0 and outcome.hazard.closed_at == iso(START)


async def test_submit_needs_words_and_a_photo_and_extension_a_later_deadline(
    app: App, org: dict[str, int]
) -> None:
    hazard_id = await seed(app, org, Status.IN_PROGRESS)
    for action, key in (
        (lambda act, h: register.submit(act, h, text="锁已换", photos=[]), "hazard.ask_evidence"),
        (lambda act, h: register.submit(act, h, text=" ", photos=["a.jpg"]), "hazard.ask_done"),
        (
            lambda act, h: register.submit(act, h, text="锁已换", photos=["a.jpg"] * 6),
            "hazard.too_many_photos",
        ),
        (
            lambda act, h: register.request_extension(
                act, h, measures="围挡", photo=None, deadline=START + timedelta(hours=2)
            ),
            "hazard.not_later",
        ),
        (lambda act, h: register.send_back(act, h, reason="x"), "hazard.not_allowed"),
    ):
        result = await attempt(app, org["陈磊"], hazard_id, action)
        assert result[:3] == ("refused", key, 0)


async def test_an_order_is_numbered_attaches_its_pdf_and_tells_the_heads(
    app: App, org: dict[str, int]
) -> None:
    hazard_id = await seed(app, org, Status.ASSIGNED)
    _, outcome, trail, pending = await attempt(app, org["李静"], hazard_id, call(Action.ORDER, org))
    assert outcome.order == "ZG-2026-001" and pending == 3
    assert [(n.person.name, n.order) for n in outcome.notices] == [
        ("陈磊", "ZG-2026-001"),
        ("刘强", "ZG-2026-001"),
    ]
    assert outcome.notices[0].params["requirement"] == "换锁"  # empty: the measure set
    assert trail[0].detail["order"] == "ZG-2026-001"
    past = await attempt(
        app,
        org["李静"],
        hazard_id,
        lambda act, h: register.order(act, h, deadline=START, requirement="换"),
    )
    assert past[:3] == ("refused", "time.in_the_past", 0)


async def test_a_hazard_changed_meanwhile_is_refused_and_nothing_is_written(
    app: App, org: dict[str, int]
) -> None:
    """The register acts on the hazard as the caller read it; if it moved on
    since (another process), the one UPDATE finds nothing and the action says so."""
    hazard_id = await seed(app, org, Status.SUBMITTED)

    def stale(act: register.Acting, hazard: Any) -> Any:
        act.conn.execute("UPDATE hazards SET status = 'in_progress' WHERE id = ?", (hazard_id,))
        return register.accept(act, hazard)  # still says 'submitted'

    result = await attempt(app, org["刘强"], hazard_id, stale)
    assert result[:3] == ("refused", "hazard.changed_meanwhile", 0)
