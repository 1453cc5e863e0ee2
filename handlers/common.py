"""The commands every person has: /start, /help, /cancel, /lang, and the
hint for anything the bot did not expect."""

from __future__ import annotations

from dataclasses import replace

from bot.engine import Ctx, Flow
from bot.model import LANGUAGES, Button, Inbound, InboundKind, Role
from bot.store import people
from handlers import checklist

LANG_FLOW = "language"
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}
ROLE_ORDER = tuple(Role)


def start(ctx: Ctx, args: str) -> None:
    roles = ctx.text("common.list_separator").join(
        ctx.text(f"roles.{role.value}") for role in ROLE_ORDER if role in ctx.staff.roles
    )
    ctx.say(
        "common.welcome",
        name=ctx.staff.name,
        unit=people.unit_path(ctx.conn, ctx.staff.unit_id),
        roles=roles,
    )
    help_(ctx, args)


def help_(ctx: Ctx, args: str) -> None:
    """What this person can do, by role: the commands of their chat menu."""
    from handlers.router import menu  # the router imports this module

    lines = [
        ctx.text("common.help_checklist", command=command, title=title)
        for command, title in menu(ctx.staff.roles, ctx.lang)
    ]
    ctx.say("common.help", checklists="\n".join(lines))


def cancel(ctx: Ctx, args: str) -> None:
    """Leave the current flow, saying which and what becomes of what was entered."""
    flow, step = ctx.conversation.flow, ctx.conversation.step
    if not flow:
        ctx.say("common.nothing_to_cancel")
        return
    if flow == checklist.FLOW:
        checklist.cancel(ctx)
    ctx.end()
    ctx.say(
        "common.cancelled", flow=ctx.text(f"flows.{flow}"), effect=ctx.text(left_key(flow, step))
    )


# Visit steps before the check-in is recorded: leaving them records nothing.
_BEFORE_CHECKIN = frozenset({"client", "checkin", "checkin_reason", "checkin_note"})


def left_key(flow: str, step: str) -> str:
    """The catalog key saying what leaving `flow` at `step` keeps and drops."""
    if flow == "checklist":
        return "flows.left_check"
    if flow == "visit":
        return "flows.left_visit_before" if step in _BEFORE_CHECKIN else "flows.left_visit_open"
    return "flows.left_nothing_saved"


def lang(ctx: Ctx, args: str) -> None:
    wanted = pick_language(args)
    if wanted is not None:
        set_language(ctx, wanted)
        return
    ctx.goto(LANG_FLOW, "choose", back=None)
    ask_language(ctx)


def ask_language(ctx: Ctx) -> None:
    ctx.say(
        "common.ask_language",
        buttons=[[Button(LANGUAGE_NAMES[code], code) for code in LANGUAGES]],
    )


def on_language(ctx: Ctx, inbound: Inbound) -> None:
    wanted = (
        pick_language(inbound.text)
        if inbound.kind in (InboundKind.TEXT, InboundKind.ACTION)
        else None
    )
    if wanted is None:
        ask_language(ctx)
        return
    ctx.end()
    set_language(ctx, wanted)


def pick_language(text: str) -> str | None:
    typed = text.strip().casefold()
    for code, name in LANGUAGE_NAMES.items():
        if typed in {code.casefold(), name.casefold()} or (
            typed and code.casefold().startswith(typed)
        ):
            return code
    return None


def set_language(ctx: Ctx, language: str) -> None:
    people.set_language(ctx.conn, ctx.staff.id, language, ctx.now_iso)
    ctx.staff = replace(ctx.staff, language=language)
    ctx.say("common.language_set")


def fallback(ctx: Ctx, inbound: Inbound) -> None:
    """Anything outside a flow that no command took: a short hint, never silence."""
    ctx.say("common.hint")


language_flow = Flow(name=LANG_FLOW, steps={"choose": on_language}, reprompt=ask_language)
