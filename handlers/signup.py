"""Sign-up: someone the roster does not know yet writes to the bot. They
share their own phone number (or open a one-time invite link), and if the
roster has them, this channel identity becomes theirs. Nothing else is open to
a stranger."""

from __future__ import annotations

from bot import phones
from bot.engine import Visitor
from bot.model import Button, Inbound, InboundKind
from bot.roster import normalize_phone
from bot.store import invites, people


def on_stranger(visitor: Visitor, inbound: Inbound) -> None:
    if inbound.kind is InboundKind.CONTACT:
        take_contact(visitor, inbound)
        return
    command, _, code = inbound.text.strip().partition(" ")
    if inbound.kind is InboundKind.COMMAND and command.split("@")[0] == "/start" and code:
        redeem(visitor, code.strip())
        return
    ask_phone(visitor)


def ask_phone(visitor: Visitor) -> None:
    visitor.say(
        "signup.share_phone",
        buttons=[[Button(visitor.text("signup.share_button"), "@contact")]],
    )


def take_contact(visitor: Visitor, inbound: Inbound) -> None:
    """Only a person's own number counts: the channel says whether the contact
    they shared is their own account's."""
    if not inbound.data.get("own"):
        visitor.say("signup.not_your_number")
        ask_phone(visitor)
        return
    phone = normalize_phone(str(inbound.data.get("phone", "")))
    staff = people.active_by_phone(visitor.conn, phone) if phone else None
    if staff is None:
        visitor.say("errors.not_registered")
        tell_admins_once(visitor, phone or str(inbound.data.get("phone", ""))[:32], inbound)
        return
    visitor.bind(staff.id)
    visitor.language = staff.language
    visitor.say("signup.welcome", name=staff.name)


def redeem(visitor: Visitor, code: str) -> None:
    staff_id = invites.redeem(
        visitor.conn, code[:64], f"{visitor.channel}:{visitor.user_id}", visitor.now_iso
    )
    staff = people.staff_by_id(visitor.conn, staff_id) if staff_id else None
    if staff is None:
        visitor.say("signup.invite_invalid")
        ask_phone(visitor)
        return
    visitor.bind(staff.id)
    visitor.language = staff.language
    visitor.say("signup.welcome", name=staff.name)


def tell_admins_once(visitor: Visitor, phone: str, inbound: Inbound) -> None:
    """One notice per unknown number per admin, however often it is tried."""
    who = str(inbound.data.get("name", ""))[:64]
    for admin in people.admins(visitor.conn):
        visitor.notify(
            admin,
            "signup.unknown_number",
            idempotency_key=f"unknown-number:{phone}:{admin.id}",
            phone=phones.display(phone),
            name=who,
            channel=visitor.channel,
        )
