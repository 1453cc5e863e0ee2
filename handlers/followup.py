"""Following up home visits (REGULATIONS §5: the centre tracks the quality of
the service): a supervisor picks a completed visit of their units from the
last 14 days, records the family's satisfaction (1–5) and comments. A score
of 1 or 2 goes at once to the service-centre leaders above the client."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from bot.clock import iso, local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.model import Button, Inbound, InboundKind, Role, Staff, UserError
from bot.store import followups, people
from handlers.text import button_number, clean_text

FLOW = "followup"
WINDOW = timedelta(days=14)
PAGE = 8
SCORES = range(1, 6)
LOW_SCORE = 2
MAX_TEXT = 2000


# -- pure rules -------------------------------------------------------------------------
def is_low(score: int) -> bool:
    """A score the centre's leaders hear about at once."""
    return score <= LOW_SCORE


def nearest_first(chain: list[int], people_found: list[Staff]) -> list[Staff]:
    """The people of these units, ordered by how near their unit is (chain
    order, the client's unit first)."""
    rank = {unit_id: depth for depth, unit_id in enumerate(chain)}
    return sorted(
        (p for p in people_found if p.unit_id in rank), key=lambda p: (rank[p.unit_id], p.id)
    )


def leaders_for(conn: sqlite3.Connection, unit_id: int) -> list[Staff]:
    """Who hears of a poor score: the centre leaders of the client's unit and
    the units above it, nearest first; if there are none, the supervisors."""
    chain = [int(u["id"]) for u in people.unit_chain(conn, unit_id)]
    found = nearest_first(chain, people.with_role(conn, Role.CENTRE_LEADER))
    return found or people.supervisors_for_unit(conn, unit_id)


# -- the steps ------------------------------------------------------------------------------
def _scope(ctx: Ctx) -> list[int]:
    return people.subtree_units(ctx.conn, ctx.staff.unit_id)


def _since(ctx: Ctx) -> str:
    return iso(ctx.now - WINDOW)


def _label(ctx: Ctx, row: sqlite3.Row) -> str:
    when = local_time_text(parse_iso(row["checkin_at"]), ctx.timezone)[5:]
    return f"{row['client']} · {row['worker']} · {when}"


def start(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SUPERVISOR):
        raise UserError("visit_admin.followup_not_allowed")
    if not followups.awaiting(ctx.conn, _scope(ctx), _since(ctx), 1, 0):
        ctx.say("visit_admin.followup_none")
        return
    ctx.goto(FLOW, "visit", page=0)
    ask_visit(ctx)


def ask_visit(ctx: Ctx) -> None:
    page = int(ctx.data.get("page", 0))
    rows = followups.awaiting(ctx.conn, _scope(ctx), _since(ctx), PAGE + 1, page * PAGE)
    buttons = [[Button(_label(ctx, row), f"f{row['id']}")] for row in rows[:PAGE]]
    nav = []
    if page > 0:
        nav.append(Button(ctx.text("hazard.page_prev"), "prev"))
    if len(rows) > PAGE:
        nav.append(Button(ctx.text("hazard.page_next"), "next"))
    if nav:
        buttons.append(nav)
    ctx.say("visit_admin.ask_followup_visit", buttons=buttons)


def _awaiting_visit(ctx: Ctx, visit_id: int) -> sqlite3.Row | None:
    row = followups.visit(ctx.conn, visit_id)
    if row is None or int(row["unit_id"]) not in _scope(ctx):
        return None
    return row if followups.is_awaiting(ctx.conn, visit_id, _since(ctx)) else None


def on_visit(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text in ("next", "prev"):
        page = max(0, int(ctx.data.get("page", 0)) + (1 if inbound.text == "next" else -1))
        ctx.step_to("visit", page=page)
        ask_visit(ctx)
        return
    picked = button_number(inbound, "f")
    row = _awaiting_visit(ctx, picked) if picked is not None else None
    if row is None:
        ask_visit(ctx)
        return
    ctx.step_to("score", visit=int(row["id"]))
    ask_score(ctx)


def ask_score(ctx: Ctx) -> None:
    row = followups.visit(ctx.conn, int(ctx.data["visit"]))
    assert row is not None
    ctx.say(
        "visit_admin.ask_score",
        visit=_label(ctx, row),
        buttons=[[Button(str(score), str(score)) for score in SCORES]],
    )


def on_score(ctx: Ctx, inbound: Inbound) -> None:
    text = inbound.text.strip()
    if inbound.kind not in (InboundKind.ACTION, InboundKind.TEXT) or text not in {
        str(score) for score in SCORES
    }:
        ask_score(ctx)
        return
    ctx.step_to("comments", score=int(text))
    ask_comments(ctx)


def ask_comments(ctx: Ctx) -> None:
    ctx.say(
        "visit_admin.ask_comments",
        buttons=[[Button(ctx.text("visit_admin.btn_no_comments"), "skip")]],
    )


def on_comments(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "skip":
        comments = None
    elif inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        comments = clean_text(inbound.text)
        if len(comments) > MAX_TEXT:
            raise UserError("check.too_long", limit=MAX_TEXT, length=len(comments))
    else:
        ask_comments(ctx)
        return
    finish(ctx, comments)


def finish(ctx: Ctx, comments: str | None) -> None:
    visit_id, score = int(ctx.data["visit"]), int(ctx.data["score"])
    ctx.end()
    row = _awaiting_visit(ctx, visit_id)
    if row is None:  # followed up meanwhile by another supervisor
        ctx.say("visit_admin.followup_taken")
        return
    followups.record(
        ctx.conn,
        visit_id,
        by_id=ctx.staff.id,
        satisfaction=score,
        comments=comments,
        now=ctx.now_iso,
    )
    ctx.say("visit_admin.followup_recorded", visit=_label(ctx, row), score=score)
    if is_low(score):
        flag(ctx, row, score, comments)


def flag(ctx: Ctx, row: sqlite3.Row, score: int, comments: str | None) -> None:
    tz = ctx.unit_timezone(int(row["unit_id"]))
    for leader in leaders_for(ctx.conn, int(row["unit_id"])):
        if leader.id == ctx.staff.id:
            continue
        ctx.notify(
            leader,
            "visit_admin.low_score",
            idempotency_key=f"followup:{row['id']}:low:{leader.id}",
            client=row["client"],
            number=row["client_number"],
            worker=row["worker"],
            date=local_time_text(parse_iso(row["checkin_at"]), tz),
            score=score,
            comments=comments or "—",
            by=ctx.staff.name,
        )


def reprompt(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "visit":
        ask_visit(ctx)
    elif step == "score":
        ask_score(ctx)
    elif step == "comments":
        ask_comments(ctx)


flow = Flow(
    name=FLOW,
    steps={"visit": on_visit, "score": on_score, "comments": on_comments},
    reprompt=reprompt,
)
