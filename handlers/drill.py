"""Fire and evacuation drills (REGULATIONS §4): a safety officer or admin
plans one (`/drill`: when, which area, what kind), everyone in the area is
told in advance and the organiser reminded; afterwards the organiser records
it (`/drilldone`: participants, duration, problems — which become a hazard —
and a photo), or records a drill that was held without a plan."""

from __future__ import annotations

import sqlite3

from bot.calendar import parse_local
from bot.clock import local_time_text, parse_iso
from bot.engine import Ctx, Flow
from bot.model import Button, Inbound, InboundKind, Role, UserError
from bot.numbers import parse_number
from bot.store import drills, hazards, people
from handlers.hazard_report import Draft, file_hazard
from handlers.text import clean_text
from schedules import drills as drill_reminders

PLAN = "drill"
RECORD = "drill_record"
KINDS = ("fire", "evacuation", "other")
MAX_TEXT = 2000


def _may_organise(ctx: Ctx) -> None:
    if not ctx.staff.has(Role.SAFETY_OFFICER, Role.ADMIN):
        raise UserError("drill.not_allowed")


# -- planning ------------------------------------------------------------------------
def start(ctx: Ctx, args: str) -> None:
    _may_organise(ctx)
    ctx.goto(PLAN, "when")
    ctx.say("drill.ask_when")


def on_when(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT:
        ctx.say("drill.ask_when")
        return
    moment = parse_local(inbound.text, ctx.timezone, ctx.now)
    ctx.step_to("area", at=moment.isoformat())
    ask_area(ctx)


def ask_area(ctx: Ctx) -> None:
    ctx.say(
        "drill.ask_area",
        buttons=[[Button(row["path"], f"u{row['id']}")] for row in drills.units(ctx.conn)],
    )


def _chosen_unit(ctx: Ctx, inbound: Inbound) -> int | None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    known = {f"u{row['id']}": int(row["id"]) for row in drills.units(ctx.conn)}
    return known.get(choice)


def on_area(ctx: Ctx, inbound: Inbound) -> None:
    unit = _chosen_unit(ctx, inbound)
    if unit is None:
        ask_area(ctx)
        return
    ctx.step_to("kind", unit=unit)
    ask_kind(ctx)


def ask_kind(ctx: Ctx) -> None:
    ctx.say(
        "drill.ask_kind",
        buttons=[[Button(ctx.text(f"drill.kind_{kind}"), kind) for kind in KINDS]],
    )


def on_kind(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in KINDS:
        ask_kind(ctx)
        return
    at = parse_iso(ctx.data["at"])
    if at <= ctx.now:  # the conversation took so long the time has passed
        raise UserError("time.in_the_past", text=local_time_text(at, ctx.timezone))
    drill_id = drills.plan(
        ctx.conn,
        unit_id=int(ctx.data["unit"]),
        kind=inbound.text,
        at=ctx.data["at"],
        organiser_id=ctx.staff.id,
        now=ctx.now_iso,
    )
    announced = drill_reminders.plan(ctx, drill_id, at)
    unit = people.unit_path(ctx.conn, int(ctx.data["unit"]))
    ctx.end()
    ctx.say(
        "drill.planned",
        drill=drill_id,
        when=local_time_text(at, ctx.timezone),
        unit=unit,
        notices=_announcement_text(ctx, announced),
    )


def _announcement_text(ctx: Ctx, announced: drill_reminders.Announcement) -> str:
    """Who was told, and when the others will be (the unit's local time)."""
    times = ctx.text("drill.separator").join(
        local_time_text(moment, ctx.timezone) for moment in announced.later
    )
    parts = []
    if announced.told_now:
        parts.append(ctx.text("drill.notices_now", count=announced.told_now))
        if times:
            parts.append(ctx.text("drill.notices_again", times=times))
    elif times:
        parts.append(ctx.text("drill.notices_later", count=announced.audience, times=times))
    else:
        parts.append(ctx.text("drill.notices_nobody"))
    return " ".join(parts)


# -- recording ----------------------------------------------------------------------
def record_start(ctx: Ctx, args: str) -> None:
    """`/drilldone`: one of the organiser's planned drills whose time has come,
    or a drill held without a plan (it counts for the year all the same)."""
    _may_organise(ctx)
    if drills.awaiting_record(ctx.conn, ctx.staff.id, ctx.now_iso):
        ctx.goto(RECORD, "which")
        ask_which(ctx)
        return
    ctx.say("drill.none_planned")
    ctx.goto(RECORD, "held_when")
    ctx.say("drill.ask_held_when")


def ask_which(ctx: Ctx) -> None:
    rows = drills.awaiting_record(ctx.conn, ctx.staff.id, ctx.now_iso)
    ctx.say(
        "drill.ask_which",
        buttons=[
            [
                Button(
                    f"#{row['id']} {local_time_text(parse_iso(row['at']), ctx.timezone)}"
                    f" {people.unit_path(ctx.conn, int(row['unit_id']))}",
                    f"d{row['id']}",
                )
            ]
            for row in rows[:10]
        ]
        + [[Button(ctx.text("drill.btn_unplanned"), "unplanned")]],
    )


def on_which(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "unplanned":
        ctx.step_to("held_when")
        ctx.say("drill.ask_held_when")
        return
    rows = {
        f"d{row['id']}": int(row["id"])
        for row in drills.awaiting_record(ctx.conn, ctx.staff.id, ctx.now_iso)
    }
    if inbound.kind is not InboundKind.ACTION or inbound.text not in rows:
        ask_which(ctx)
        return
    ctx.step_to("participants", drill=rows[inbound.text])
    ctx.say("drill.ask_participants")


def on_held_when(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT:
        ctx.say("drill.ask_held_when")
        return
    moment = parse_local(inbound.text, ctx.timezone, ctx.now, past=True)
    ctx.step_to("held_area", at=moment.isoformat())
    ask_area(ctx)


def on_held_area(ctx: Ctx, inbound: Inbound) -> None:
    unit = _chosen_unit(ctx, inbound)
    if unit is None:
        ask_area(ctx)
        return
    ctx.step_to("held_kind", unit=unit)
    ask_kind(ctx)


def on_held_kind(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in KINDS:
        ask_kind(ctx)
        return
    ctx.step_to("participants", kind=inbound.text)
    ctx.say("drill.ask_participants")


def _number(inbound: Inbound, low: int, high: int) -> int | None:
    text = inbound.text if inbound.kind is InboundKind.TEXT else ""
    return parse_number(text, low=low, high=high)


def on_participants(ctx: Ctx, inbound: Inbound) -> None:
    count = _number(inbound, 1, 100_000)
    if count is None:
        ctx.say("drill.ask_participants")
        return
    ctx.step_to("minutes", participants=count)
    ctx.say("drill.ask_minutes")


def on_minutes(ctx: Ctx, inbound: Inbound) -> None:
    minutes = _number(inbound, 1, 24 * 60)
    if minutes is None:
        ctx.say("drill.ask_minutes")
        return
    ctx.step_to("problems", minutes=minutes)
    ask_problems(ctx)


def ask_problems(ctx: Ctx) -> None:
    ctx.say("drill.ask_problems", buttons=[[Button(ctx.text("drill.no_problems"), "none")]])


def on_problems(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.ACTION and inbound.text == "none":
        problems = None
    elif inbound.kind is InboundKind.TEXT and clean_text(inbound.text):
        problems = clean_text(inbound.text)
        if len(problems) > MAX_TEXT:
            raise UserError("check.too_long", limit=MAX_TEXT, length=len(problems))
    else:
        ask_problems(ctx)
        return
    ctx.step_to("photo", problems=problems)
    ask_photo(ctx)


def ask_photo(ctx: Ctx) -> None:
    ctx.say("check.ask_photo", buttons=[[Button(ctx.text("check.skip_photo"), "skip")]])


def on_photo(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        photo: str | None = inbound.text
    elif inbound.kind is InboundKind.ACTION and inbound.text == "skip":
        photo = None
    else:
        ask_photo(ctx)
        return
    finish(ctx, photo)


def _drill_to_record(ctx: Ctx) -> sqlite3.Row | None:
    """The planned drill chosen, or the one held without a plan, entered now."""
    if "drill" in ctx.data:
        return drills.get(ctx.conn, int(ctx.data["drill"]))
    drill_id = drills.enter_held(
        ctx.conn,
        unit_id=int(ctx.data["unit"]),
        kind=str(ctx.data["kind"]),
        at=str(ctx.data["at"]),
        organiser_id=ctx.staff.id,
        now=ctx.now_iso,
    )
    return drills.get(ctx.conn, drill_id)


def finish(ctx: Ctx, photo: str | None) -> None:
    drill = _drill_to_record(ctx)
    if drill is None or drill["state"] != "planned":  # recorded meanwhile from another phone
        ctx.end()
        ctx.say("drill.none_to_record")
        return
    problems = ctx.data.get("problems")
    hazard_id = None
    if problems:
        # A problem found in a drill is a hazard of the drill's area like any
        # other (REGULATIONS §2): numbered, chased, its supervisors alerted.
        hazard_id, _ = file_hazard(
            ctx,
            Draft(
                description=problems,
                source=f"drill:{drill['id']}",
                category="evacuation" if drill["kind"] == "evacuation" else "fire",
                photos=[photo] if photo else [],
                unit_id=int(drill["unit_id"]),
            ),
            reply=None,
        )
    drills.record(
        ctx.conn,
        int(drill["id"]),
        participants=int(ctx.data["participants"]),
        minutes=int(ctx.data["minutes"]),
        problems=problems,
        photo=photo,
        hazard_id=hazard_id,
        actor_id=ctx.staff.id,
        now=ctx.now_iso,
    )
    ctx.end()
    if hazard_id:
        number = hazards.numbers(ctx.conn, [hazard_id])[hazard_id]
        ctx.say("drill.recorded_with_hazard", drill=drill["id"], hazard=number)
    else:
        ctx.say("drill.recorded", drill=drill["id"])


def reprompt_plan(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "when":
        ctx.say("drill.ask_when")
    elif step == "area":
        ask_area(ctx)
    elif step == "kind":
        ask_kind(ctx)


def reprompt_record(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "which":
        ask_which(ctx)
    elif step == "held_when":
        ctx.say("drill.ask_held_when")
    elif step == "held_area":
        ask_area(ctx)
    elif step == "held_kind":
        ask_kind(ctx)
    elif step == "participants":
        ctx.say("drill.ask_participants")
    elif step == "minutes":
        ctx.say("drill.ask_minutes")
    elif step == "problems":
        ask_problems(ctx)
    elif step == "photo":
        ask_photo(ctx)


plan_flow = Flow(
    name=PLAN,
    steps={"when": on_when, "area": on_area, "kind": on_kind},
    reprompt=reprompt_plan,
)
record_flow = Flow(
    name=RECORD,
    steps={
        "which": on_which,
        "held_when": on_held_when,
        "held_area": on_held_area,
        "held_kind": on_held_kind,
        "participants": on_participants,
        "minutes": on_minutes,
        "problems": on_problems,
        "photo": on_photo,
    },
    reprompt=reprompt_record,
)
