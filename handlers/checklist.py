"""The one checklist conversation that runs every checklist file: ask each
item with ✅ / ⚠️ / ➖, take a problem's description and optional photo,
record a hazard and alert the supervisors, then sum up. Channel-blind.

A question asked right after a button press takes the pressed one's place,
the answers so far above it (`Ctx.ask`): one message edit per tap."""

from __future__ import annotations

from datetime import date

from bot.checklists import Checklist, load_all
from bot.clock import local_date
from bot.engine import Ctx, Flow
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, UserError
from bot.store import checklists as runs
from handlers.hazard_report import Draft, file_hazard
from handlers.text import clean_text, shorten
from schedules import duties as duty_book

FLOW = "checklist"
ANSWERS = ("ok", "problem", "na")
MAX_DESCRIPTION = 2000
# How much of an item's text a line of the answers so far shows (a CJK character is 2).
RECAP_WIDTH = 36


# -- starting ---------------------------------------------------------------------
def start(ctx: Ctx, checklist: Checklist) -> None:
    """The checklist's command: refuse who may not run it, offer a redo when
    this period's check is done, else begin at the first item."""
    if not checklist.may_run(ctx.staff.roles):
        raise UserError("check.not_allowed", title=checklist.title.get(ctx.lang))
    today = local_date(ctx.now, ctx.timezone)
    done = runs.latest_completed(
        ctx.conn, ctx.staff.id, checklist.id, period_start(checklist, today)
    )
    if done is not None:
        show_result(ctx, checklist, done["id"])
        ctx.goto(FLOW, "confirm_redo", checklist=checklist.id, previous=done["id"])
        ask_redo(ctx)
        return
    begin(ctx, checklist, redo_of=None)


def period_start(checklist: Checklist, today: date) -> str:
    """The first local date of the period a run counts for."""
    if checklist.period == "quarter":
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1).isoformat()
    return today.isoformat()


def begin(ctx: Ctx, checklist: Checklist, redo_of: int | None) -> None:
    run_id = runs.start_run(
        ctx.conn,
        checklist=checklist.id,
        staff_id=ctx.staff.id,
        unit_id=ctx.staff.unit_id,
        local_date=local_date(ctx.now, ctx.timezone).isoformat(),
        redo_of=redo_of,
        now=ctx.now_iso,
    )
    ctx.goto(FLOW, "item", checklist=checklist.id, run=run_id, index=0, given=[])
    ctx.say("check.intro", title=checklist.title.get(ctx.lang), count=len(checklist.items))
    ask_item(ctx)


# -- the questions ----------------------------------------------------------------
def ask_item(ctx: Ctx) -> None:
    checklist = current(ctx)
    index = ctx.data["index"]
    item = checklist.items[index]
    section = f" 【{item.section.get(ctx.lang)}】" if item.section else ""
    ctx.ask(
        "check.item",
        recap=answers_so_far(ctx, checklist),
        number=index + 1,
        count=len(checklist.items),
        section=section,
        text=item.text.get(ctx.lang),
        buttons=[[Button(ctx.text(f"check.answer_{a}"), a) for a in ANSWERS]],
    )


def ask_description(ctx: Ctx) -> None:
    checklist = current(ctx)
    answering = (ctx.data["index"], "problem")
    recap = answers_so_far(ctx, checklist, answering)
    ctx.ask("check.ask_problem", recap=recap, item=current_item_text(ctx))


def answers_so_far(ctx: Ctx, checklist: Checklist, answering: tuple[int, str] | None = None) -> str:
    """One short line per item answered in this run (and the one being answered)."""
    numbers = {item.key: n for n, item in enumerate(checklist.items)}
    given = [(numbers[key], answer) for key, answer in _given(ctx) if key in numbers]
    return "\n".join(
        ctx.text(
            f"check.recap_{answer}",
            number=index + 1,
            text=shorten(checklist.items[index].text.get(ctx.lang), RECAP_WIDTH),
        )
        for index, answer in [*given, *([answering] if answering else [])]
    )


def _given(ctx: Ctx) -> list[tuple[str, str]]:
    """The run's answers in the order given, as (item key, answer): kept in the
    conversation as record() records them, so that a step need not read them back
    (a round trip of its own on PostgreSQL); read from the register for a run
    begun before the conversation kept them."""
    kept = ctx.data.get("given")
    if isinstance(kept, list):
        return [(str(key), str(answer)) for key, answer in kept]
    return [(row["item"], row["answer"]) for row in runs.answers(ctx.conn, ctx.data["run"])]


def ask_photo(ctx: Ctx) -> None:
    ctx.say("check.ask_photo", buttons=[[Button(ctx.text("check.skip_photo"), "skip")]])


def ask_redo(ctx: Ctx) -> None:
    ctx.say(
        "check.ask_redo",
        buttons=[[Button(ctx.text("check.redo"), "redo"), Button(ctx.text("check.keep"), "keep")]],
    )


# -- the answers ------------------------------------------------------------------
def on_item(ctx: Ctx, inbound: Inbound) -> None:
    answer = choice(ctx, inbound, {a: ctx.text(f"check.answer_{a}") for a in ANSWERS})
    if answer is None:
        ctx.say("check.use_buttons")
        ask_item(ctx)
        return
    if answer == "problem":
        ctx.step_to("problem_text")
        ask_description(ctx)
        return
    record(ctx, answer, note=None, hazard_id=None)


def on_description(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT:
        ctx.say("check.need_text")
        ask_description(ctx)
        return
    description = clean_text(inbound.text)
    if not description:
        ctx.say("check.need_text")
        ask_description(ctx)
        return
    if len(description) > MAX_DESCRIPTION:
        raise UserError("check.too_long", limit=MAX_DESCRIPTION, length=len(description))
    ctx.step_to("problem_photo", description=description)
    ask_photo(ctx)


def on_photo(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.PHOTO and inbound.text:
        report_hazard(ctx, photo=inbound.text)
    elif choice(ctx, inbound, {"skip": ctx.text("check.skip_photo")}) == "skip":
        report_hazard(ctx, photo=None)
    else:
        ctx.say("check.need_photo")
        ask_photo(ctx)


def on_redo(ctx: Ctx, inbound: Inbound) -> None:
    picked = choice(ctx, inbound, {"redo": ctx.text("check.redo"), "keep": ctx.text("check.keep")})
    if picked == "redo":
        begin(ctx, current(ctx), redo_of=ctx.data["previous"])
    elif picked == "keep":
        ctx.end()
        ctx.say("check.kept")
    else:
        ctx.say("check.use_buttons")
        ask_redo(ctx)


# -- what an answer does ----------------------------------------------------------
def report_hazard(ctx: Ctx, photo: str | None) -> None:
    """A ⚠️ answer: a general hazard of the worker's unit, due the end of the
    local day (REGULATIONS §2), filed like any report (numbered, chased, the
    unit's supervisors alerted with the "assign" button)."""
    checklist = current(ctx)
    item = checklist.items[ctx.data["index"]]
    description = ctx.data["description"]
    draft = Draft(
        description=description,
        source=f"checklist:{checklist.id}:{item.key}",
        category=item.category or checklist.category,
        photos=[photo] if photo else [],
    )
    hazard_id, _ = file_hazard(
        ctx,
        draft,
        detail_text=lambda language: t(
            language,
            "check.alert_item",
            checklist=checklist.title.get(language),
            item=item.text.get(language),
        ),
        reply="check.hazard_recorded",
    )
    record(ctx, "problem", note=description, hazard_id=hazard_id)


def record(ctx: Ctx, answer: str, note: str | None, hazard_id: int | None) -> None:
    checklist = current(ctx)
    index = ctx.data["index"]
    key = checklist.items[index].key
    runs.record_answer(
        ctx.conn,
        run_id=ctx.data["run"],
        item=key,
        answer=answer,
        note=note,
        hazard_id=hazard_id,
        now=ctx.now_iso,
    )
    if isinstance(ctx.data.get("given"), list):
        ctx.data["given"] = [*ctx.data["given"], [key, answer]]
    if index + 1 < len(checklist.items):
        ctx.step_to("item", index=index + 1, description=None)
        ask_item(ctx)
        return
    runs.complete_run(ctx.conn, ctx.data["run"], ctx.staff.id, ctx.now_iso)
    duty_book.checklist_done(ctx.conn, checklist.id, ctx.staff.id, ctx.now_iso)
    run_id = ctx.data["run"]
    ctx.end()
    show_result(ctx, checklist, run_id)


def show_result(ctx: Ctx, checklist: Checklist, run_id: int) -> None:
    answers = runs.answers_with_numbers(ctx.conn, run_id)
    counts = {a: sum(1 for row in answers if row["answer"] == a) for a in ANSWERS}
    texts = {item.key: item.text.get(ctx.lang) for item in checklist.items}
    problems = "".join(
        ctx.text(
            "check.summary_problem",
            hazard=row["number"] or "",
            item=texts.get(row["item"], ""),
            note=_shortened(str(row["note"] or "")),
        )
        for row in answers
        if row["answer"] == "problem"
    )

    ctx.say(
        "check.summary",
        title=checklist.title.get(ctx.lang),
        ok=counts["ok"],
        problem=counts["problem"],
        na=counts["na"],
        problems=problems,
    )


def _shortened(text: str, limit: int = 60) -> str:
    """What the worker typed, as much of it as a summary line holds."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cancel(ctx: Ctx) -> None:
    """Leave the checklist: the run is marked cancelled; what was reported stays."""
    if "run" in ctx.data:
        runs.cancel_run(ctx.conn, ctx.data["run"], ctx.staff.id, ctx.now_iso)


# -- helpers ----------------------------------------------------------------------
def current(ctx: Ctx) -> Checklist:
    return load_all()[ctx.data["checklist"]]


def current_item_text(ctx: Ctx) -> str:
    index: int = ctx.data["index"]
    return current(ctx).items[index].text.get(ctx.lang)


def choice(ctx: Ctx, inbound: Inbound, options: dict[str, str]) -> str | None:
    """The option a button press or a typed answer picks: a button's action, or
    text equal to an option's label with or without its leading symbol."""
    if inbound.kind is InboundKind.ACTION:
        return inbound.text if inbound.text in options else None
    if inbound.kind is not InboundKind.TEXT:
        return None
    typed = inbound.text.strip().casefold()
    for value, label in options.items():
        bare = label.split(" ", 1)[-1].strip().casefold()
        if typed in {label.casefold(), bare, value}:
            return value
    return None


def reprompt(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "item":
        ask_item(ctx)
    elif step == "problem_text":
        ask_description(ctx)
    elif step == "problem_photo":
        ask_photo(ctx)
    elif step == "confirm_redo":
        ask_redo(ctx)


flow = Flow(
    name=FLOW,
    steps={
        "item": on_item,
        "problem_text": on_description,
        "problem_photo": on_photo,
        "confirm_redo": on_redo,
    },
    reprompt=reprompt,
)
