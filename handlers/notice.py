"""Notices with read receipts (REGULATIONS §6): a supervisor or admin sends a
text (and optionally a file) to their unit subtree, a role, or named people —
confidential notices go to named people only. Every recipient gets a ✅ read
button; the sender sees who has read; non-readers get one reminder a day later."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import iso
from bot.engine import Ctx, Flow
from bot.i18n import t
from bot.model import Button, Inbound, InboundKind, Role, UserError
from bot.numbers import parse_number
from bot.store import notices, people, reminders
from handlers import recipients
from handlers.text import clean_text

FLOW = "notice"
MAX_TEXT = 2000
REMIND_AFTER = timedelta(hours=24)
ROLES = (Role.STAFF, Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.CARE_WORKER)


def start(ctx: Ctx, args: str) -> None:
    if not ctx.staff.has(Role.SUPERVISOR, Role.ADMIN):
        raise UserError("notice.not_allowed")
    ctx.goto(FLOW, "audience")
    ask_audience(ctx)


def ask_audience(ctx: Ctx) -> None:
    rows = [
        [Button(ctx.text("notice.to_unit"), "unit"), Button(ctx.text("notice.to_named"), "named")]
    ]
    rows.append([Button(ctx.text(f"notice.to_role_{r.value}"), f"role:{r.value}") for r in ROLES])
    if ctx.staff.has(Role.ADMIN):
        rows[0].insert(1, Button(ctx.text("notice.to_all"), "all"))
    ctx.say("notice.ask_audience", buttons=rows)


def on_audience(ctx: Ctx, inbound: Inbound) -> None:
    choice = inbound.text if inbound.kind is InboundKind.ACTION else ""
    if choice == "named":
        ctx.step_to("names")
        ctx.say("notice.ask_names")
        return
    if choice == "all" and ctx.staff.has(Role.ADMIN):
        chosen = notices.everyone(ctx.conn)
    elif choice == "unit":
        chosen = notices.subtree_staff(ctx.conn, ctx.staff.unit_id)
    elif choice.startswith("role:") and choice[5:] in {r.value for r in ROLES}:
        holders = set(notices.role_staff(ctx.conn, Role(choice[5:])))
        chosen = [staff_id for staff_id in recipients.scope(ctx) if staff_id in holders]
    else:
        ctx.say("check.use_buttons")
        ask_audience(ctx)
        return
    _to_text(ctx, {"kind": choice}, chosen, confidential=False)


def on_names(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.TEXT:
        ctx.say("notice.ask_names")
        return
    _to_text(ctx, {"kind": "named"}, recipients.named(ctx, inbound.text), confidential=True)


def _to_text(ctx: Ctx, audience: dict[str, str], chosen: list[int], confidential: bool) -> None:
    # Never the sender: they wrote it, and would show as 'not read' on their own
    # notice and be reminded to read it.
    recipients = [staff_id for staff_id in chosen if staff_id != ctx.staff.id]
    if not recipients:
        raise UserError("notice.nobody")
    ctx.step_to("text", audience=audience, recipients=recipients, confidential=confidential)
    ctx.say("notice.ask_text", count=len(recipients))


def on_text(ctx: Ctx, inbound: Inbound) -> None:
    text = clean_text(inbound.text) if inbound.kind is InboundKind.TEXT else ""
    if not text:
        ctx.say("notice.ask_text", count=len(ctx.data["recipients"]))
        return
    if len(text) > MAX_TEXT:
        raise UserError("check.too_long", limit=MAX_TEXT, length=len(text))
    ctx.step_to("file", text=text)
    ask_file(ctx)


def ask_file(ctx: Ctx) -> None:
    ctx.say("notice.ask_file", buttons=[[Button(ctx.text("check.skip_photo"), "skip")]])


def on_file(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind in (InboundKind.PHOTO, InboundKind.FILE) and inbound.text:
        ctx.step_to("confirm", attachment=inbound.text)
    elif inbound.kind is InboundKind.ACTION and inbound.text == "skip":
        ctx.step_to("confirm", attachment=None)
    else:
        ask_file(ctx)
        return
    ask_confirm(ctx)


def ask_confirm(ctx: Ctx) -> None:
    ctx.say(
        "notice.confirm",
        count=len(ctx.data["recipients"]),
        text=ctx.data["text"][:200],
        buttons=[
            [Button(ctx.text("notice.send"), "send"), Button(ctx.text("notice.discard"), "discard")]
        ],
    )


def on_confirm(ctx: Ctx, inbound: Inbound) -> None:
    if inbound.kind is not InboundKind.ACTION or inbound.text not in ("send", "discard"):
        ask_confirm(ctx)
        return
    if inbound.text == "discard":
        ctx.end()
        ctx.say("notice.discarded")
        return
    send(ctx)


def send(ctx: Ctx) -> None:
    data = ctx.data
    recipients: list[int] = data["recipients"]
    notice_id = notices.create(
        ctx.conn,
        sender_id=ctx.staff.id,
        text=data["text"],
        attachment=data.get("attachment"),
        audience=data["audience"],
        confidential=bool(data["confidential"]),
        recipients=recipients,
        now=ctx.now_iso,
    )
    for staff_id in recipients:
        person = people.staff_by_id(ctx.conn, staff_id)
        if person is None:
            continue
        ctx.notify(
            person,
            "notice.message",
            idempotency_key=f"notice:{notice_id}:{staff_id}",
            buttons=[[Button(_read_label(person.language), f"/read {notice_id}")]],
            attachments=(data["attachment"],) if data.get("attachment") else (),
            sender=ctx.staff.name,
            text=data["text"],
        )
    reminders.plan(
        ctx.conn,
        kind="notice_reread",
        due_at=iso(ctx.now + REMIND_AFTER),
        target={"notice": notice_id},
        key=f"notice:{notice_id}:reread",
        now=ctx.now_iso,
    )
    ctx.end()
    ctx.say("notice.sent", notice=notice_id, count=len(recipients))


def _read_label(language: str) -> str:
    return t(language, "notice.read_button")


def read(ctx: Ctx, args: str) -> None:
    """/read N: the ✅ button of a notice."""
    notice_id = parse_number(args)
    result = (
        notices.mark_read(ctx.conn, notice_id, ctx.staff.id, ctx.now_iso)
        if notice_id is not None
        else None
    )
    if result is None:
        raise UserError("notice.no_such")
    ctx.say("notice.read_ok" if result else "notice.read_before")


def sent(ctx: Ctx, args: str) -> None:
    """/notices: the sender's recent notices, who has read them."""
    rows = notices.sent_by(ctx.conn, ctx.staff.id)
    if not rows:
        ctx.say("notice.none_sent")
        return
    lines = []
    for row in rows:
        unread = notices.unread(ctx.conn, int(row["id"]))
        missing = ctx.text("common.list_separator").join(p.name for p in unread)[:300]
        lines.append(
            ctx.text(
                "notice.status_line",
                notice=row["id"],
                text=str(row["text"])[:30],
                read=row["read"],
                total=row["total"],
                missing=missing or "-",
            )
        )
    ctx.say_text("\n".join(lines))


def reprompt(ctx: Ctx) -> None:
    step = ctx.conversation.step
    if step == "audience":
        ask_audience(ctx)
    elif step == "names":
        ctx.say("notice.ask_names")
    elif step == "text":
        ctx.say("notice.ask_text", count=len(ctx.data["recipients"]))
    elif step == "file":
        ask_file(ctx)
    elif step == "confirm":
        ask_confirm(ctx)


flow = Flow(
    name=FLOW,
    steps={
        "audience": on_audience,
        "names": on_names,
        "text": on_text,
        "file": on_file,
        "confirm": on_confirm,
    },
    reprompt=reprompt,
)
