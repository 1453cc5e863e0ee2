"""The engine: takes one Inbound, finds who sent it and where their
conversation stands, runs the handler step, and commits the event id, the new
state, the records and the outbox rows in ONE transaction. It knows no channel
and no particular flow: those are wired in through a `Router`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from bot.clock import Clock, iso
from bot.i18n import t
from bot.model import (
    LANGUAGES,
    Button,
    DocumentRequest,
    Inbound,
    InboundKind,
    Outbound,
    Staff,
    UserError,
)
from bot.store import conversations, media, outbox, people
from bot.store.conversations import Conversation
from bot.store.db import Database
from bot.store.outbox import NewMessage

log = logging.getLogger(__name__)

SEEN_PRECISION = timedelta(minutes=10)
# Telegram carries 64 bytes of callback data; our actions stay well inside.
MAX_ACTION_BYTES = 64
# The largest photo or file a person may send (Telegram's download limit for bots).
MAX_FILE_MB = 20

V = TypeVar("V", bound="Visitor")
# Where a flow keeps the flow it interrupted (conversation data).
PAUSED = "_paused"
_MEDIA = (InboundKind.PHOTO, InboundKind.FILE)

# A step handles what a person sent while their conversation stands at it.
Step = Callable[["Ctx", Inbound], None]
# A command handler gets the words after the command (`/lang en` -> "en").
Command = Callable[["Ctx", str], None]


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    steps: dict[str, Step]
    # Asks the current step's question again (after a restart, or on input it cannot use).
    reprompt: Callable[[Ctx], None]


@dataclass(slots=True)
class Router:
    """What the handlers package offers the engine: commands and flows."""

    commands: dict[str, Command] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    # Called for anything no command or step takes (free text outside a flow, a photo ...).
    fallback: Callable[[Ctx, Inbound], None] | None = None
    # Commands that may interrupt a flow without leaving it (/help, /cancel, /lang ...).
    anytime: frozenset[str] = frozenset()
    # Reports that never wait behind a flow (/incident, /hazard): they start at
    # once, the flow they interrupt is paused and resumes when they end.
    urgent: frozenset[str] = frozenset()
    # Someone the roster does not know yet (sign-up).
    stranger: Callable[[Visitor, Inbound], None] | None = None
    # Anything sent in a group chat; a Ctx when the sender is staff, else a Visitor.
    group: Callable[[Visitor, Inbound], None] | None = None


@dataclass(slots=True)
class _Pending:
    staff_id: int | None
    channel: str | None
    address: str | None
    text: str
    key: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[str, ...] = ()
    in_flow: bool = False
    replaces_id: int | None = None
    kind: str | None = None
    # Set by Ctx.ask: the question may take the place of the one just pressed, this above it.
    recap: str | None = None
    # A file made after the commit, off the writer; the message waits for it.
    document: DocumentRequest | None = None


@dataclass(frozen=True, slots=True)
class _Pressed:
    """The question whose button started this step, and the answer's label."""

    question: Outbound
    label: str
    # False where the channel can only mark a pressed message answered (WeCom's cards).
    rewritable: bool


class Visitor:
    """Whoever wrote to the bot, known or not (sign-up, group chats): the
    time, their channel, and ways to reply and to notify staff. Messages are
    queued in the outbox when the step's transaction commits."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        channel: str,
        user_id: str,
        address: str,
        key_prefix: str,
        now: datetime,
        language: str,
        default_timezone: str,
        served: Collection[str] | None = None,
    ) -> None:
        self.conn = conn
        self.channel = channel
        # The channels this deployment delivers on (None: any, as in tests and
        # commands run beside the bot): a message never goes where nobody sends.
        self.served = served
        self.user_id = user_id
        self.address = address
        self.now = now
        self.now_iso = iso(now)
        self.language = language
        # The zone of units that set none (the FRONTLINE_TIMEZONE setting).
        self.default_timezone = default_timezone
        self._key_prefix = key_prefix
        self._pending: list[_Pending] = []
        # Whether a message with a file to make was queued (the documents worker is woken).
        self.documents_queued = False

    @property
    def lang(self) -> str:
        return self.language

    def unit_timezone(self, unit_id: int) -> str:
        """The time zone a unit's deadlines and schedules are computed in."""
        return people.unit_timezone(self.conn, unit_id, self.default_timezone)

    def text(self, key: str, **params: Any) -> str:
        return t(self.lang, key, **params)

    def say(
        self,
        key: str,
        *,
        buttons: list[list[Button]] | None = None,
        attachments: tuple[str, ...] = (),
        document: DocumentRequest | None = None,
        **params: Any,
    ) -> None:
        """Reply where the person wrote from. Buttons whose action does not
        start with '/' or '@' belong to the current step and go stale when the
        conversation moves on; '@contact' and '@location' ask the phone for them.
        `document`: a file to make once the step has committed (bot/preparer.py);
        the reply goes when it is made, with it."""
        self.say_text(
            self.text(key, **params), buttons=buttons, attachments=attachments, document=document
        )

    def say_text(
        self,
        text: str,
        *,
        buttons: list[list[Button]] | None = None,
        attachments: tuple[str, ...] = (),
        document: DocumentRequest | None = None,
    ) -> None:
        self._pending.append(
            _Pending(
                staff_id=self._staff_id(),
                channel=self.channel,
                address=self.address,
                text=text,
                key=f"{self._key_prefix}:{len(self._pending)}",
                buttons=tuple(tuple(row) for row in buttons or ()),
                attachments=attachments,
                in_flow=True,
                document=document,
            )
        )

    def notify(
        self,
        recipient: Staff,
        key: str,
        *,
        idempotency_key: str,
        buttons: list[list[Button]] | None = None,
        attachments: tuple[str, ...] = (),
        **params: Any,
    ) -> None:
        """Queue a message for a member of staff, in their language, on the
        channel that reaches them (or held for them until one does). Buttons
        here must be commands ('/check'): they belong to no conversation step."""
        self.notify_text(
            recipient,
            t(recipient.language, key, **params),
            idempotency_key=idempotency_key,
            buttons=buttons,
            attachments=attachments,
            kind=key,
        )

    def notify_text(
        self,
        recipient: Staff,
        text: str,
        *,
        idempotency_key: str,
        buttons: list[list[Button]] | None = None,
        attachments: tuple[str, ...] = (),
        kind: str | None = None,
        document: DocumentRequest | None = None,
    ) -> None:
        """`kind`: what the message is (a catalog key); notices of one kind that
        pile up for a person are delivered as one digest. `document`: a file to
        make after the commit, to go with the message (see `say`)."""
        route = people.reachable_channel(self.conn, recipient.id, served=self.served)
        self._pending.append(
            _Pending(
                staff_id=recipient.id,
                channel=route[0] if route else None,
                address=route[1] if route else None,
                text=text,
                key=idempotency_key,
                buttons=tuple(tuple(row) for row in buttons or ()),
                attachments=attachments,
                kind=kind,
                document=document,
            )
        )

    def post(self, channel: str, address: str, text: str, *, idempotency_key: str) -> None:
        """Queue a message for a chat that is not a person (a unit's alert group)."""
        self._pending.append(
            _Pending(
                staff_id=None, channel=channel, address=address, text=text, key=idempotency_key
            )
        )

    def edit(self, outbox_id: int, text: str) -> None:
        """Replace an earlier message of this chat (a question, to show the answer given)."""
        self._pending.append(
            _Pending(
                staff_id=self._staff_id(),
                channel=self.channel,
                address=self.address,
                text=text,
                key=f"{self._key_prefix}:edit",
                replaces_id=outbox_id,
                in_flow=True,
            )
        )

    def bind(self, staff_id: int) -> None:
        """From now on this channel identity is that member of staff; what was
        held for them for want of a channel goes out on this one."""
        people.bind_identity(self.conn, self.channel, self.user_id, staff_id, self.now_iso)
        outbox.route_held(self.conn, staff_id, self.channel, self.user_id)

    def _staff_id(self) -> int | None:
        return None

    def flush(self) -> None:
        """Queue what was said and notified in the outbox, in the caller's
        transaction (the engine does it after each step; the desk after an action)."""
        self._flush()

    def _flush(self, version: int = 0) -> None:
        for msg in self._pending:
            buttons = tuple(
                tuple(
                    b
                    if b.action.startswith(("/", "@")) or not msg.in_flow
                    else Button(b.label, f"v{version}:{b.action}")
                    for b in row
                )
                for row in msg.buttons
            )
            if any(len(b.action.encode()) > MAX_ACTION_BYTES for row in buttons for b in row):
                raise ValueError("a button action is longer than channels carry")
            if msg.document is not None:
                self.documents_queued = True
            outbox.queue(
                self.conn,
                NewMessage(
                    staff_id=msg.staff_id,
                    channel=msg.channel,
                    address=msg.address,
                    text=msg.text,
                    idempotency_key=msg.key,
                    buttons=buttons,
                    attachments=msg.attachments,
                    replaces_id=msg.replaces_id,
                    priority=outbox.REPLY if msg.in_flow else outbox.NOTICE,
                    kind=msg.kind,
                    document=msg.document,
                ),
                self.now_iso,
            )
        self._pending.clear()


class Ctx(Visitor):
    """What a handler step sees of a member of staff: the person, their
    conversation, and ways to move the conversation on."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        staff: Staff,
        conversation: Conversation,
        *,
        channel: str,
        user_id: str,
        address: str,
        key_prefix: str,
        now: datetime,
        default_timezone: str,
        media_dir: Path | None = None,
    ) -> None:
        super().__init__(
            conn,
            channel=channel,
            user_id=user_id,
            address=address,
            key_prefix=key_prefix,
            now=now,
            language=staff.language,
            default_timezone=default_timezone,
        )
        self.staff = staff
        self.conversation = conversation
        # Where files the bot makes for people (register exports) are written.
        self.media_dir = media_dir
        self._state_changed = False
        # Set by end() when a paused flow stands again (the engine asks its question).
        self.resumed = False
        self._pressed: _Pressed | None = None
        # The read of the question the event answers, asked with the arrival
        # (Engine._pressed_ahead), for the press or the text it was asked for.
        self.pressed_message: Callable[[], Outbound | None] | None = None

    @functools.cached_property
    def timezone(self) -> str:
        """The person's unit's time zone (looked up only by steps that need local time)."""
        return self.unit_timezone(self.staff.unit_id)

    @property
    def lang(self) -> str:
        return self.staff.language

    @property
    def data(self) -> dict[str, Any]:
        return self.conversation.data

    def _staff_id(self) -> int | None:
        return self.staff.id

    # -- conversation ------------------------------------------------------------
    def goto(self, flow: str, step: str, **data: Any) -> None:
        """Enter `flow` at `step`, replacing the conversation data with `data`."""
        self.conversation.flow = flow
        self.conversation.step = step
        self.conversation.data = dict(data)
        self._state_changed = True

    def step_to(self, step: str, **changes: Any) -> None:
        """Move to another step of the current flow, updating some data."""
        self.conversation.step = step
        self.conversation.data.update(changes)
        self._state_changed = True

    def end(self) -> None:
        """Leave the flow; if it had interrupted another (an urgent report in the
        middle of a check), that one stands again where it was."""
        paused = self.conversation.data.get(PAUSED)
        if isinstance(paused, dict) and paused.get("flow"):
            self.conversation.flow = str(paused["flow"])
            self.conversation.step = str(paused.get("step", ""))
            self.conversation.data = dict(paused.get("data") or {})
            self.resumed = True
        else:
            self.conversation.flow = ""
            self.conversation.step = ""
            self.conversation.data = {}
        self._state_changed = True

    def pause_into(self, paused: Conversation) -> None:
        """Keep `paused` (the flow this one interrupted) to resume when this ends."""
        self.conversation.data[PAUSED] = {
            "flow": paused.flow,
            "step": paused.step,
            "data": paused.data,
        }
        self._state_changed = True

    @property
    def state_changed(self) -> bool:
        return self._state_changed

    # -- the question in place of the pressed one ----------------------------------
    def ask(
        self,
        key: str,
        *,
        recap: str = "",
        buttons: list[list[Button]] | None = None,
        **params: Any,
    ) -> None:
        """Ask the flow's next question. Right after a button press it takes the
        place of the pressed question, `recap` (what that one showed: the answers
        so far) above it: one edit instead of an edit and a new message. Anywhere
        else it is a new message, without the recap."""
        self.say(key, buttons=buttons, **params)
        self._pending[-1].recap = recap

    def _settle_pressed(self) -> None:
        """The pressed question becomes the step's question where the step said
        nothing else to this chat but short notes before it (folded in above
        it); otherwise it is edited to show the answer given, its buttons gone."""
        pressed, self._pressed = self._pressed, None
        if pressed is None:
            return
        chat = [msg for msg in self._pending if msg.in_flow]
        # A photo's caption cannot become a text question.
        rewritable = pressed.rewritable and not pressed.question.attachments
        if chat and rewritable and _in_place(chat[-1]) and all(map(_note, chat[:-1])):
            question = chat[-1]
            parts = (question.recap, *(note.text for note in chat[:-1]), question.text)
            question.text = "\n\n".join(part for part in parts if part)
            question.replaces_id = pressed.question.id
            self._pending = [msg for msg in self._pending if msg is question or not msg.in_flow]
            return
        self._pending.insert(
            0,
            _Pending(
                staff_id=self.staff.id,
                channel=self.channel,
                address=self.address,
                text=f"{pressed.question.text}\n→ {pressed.label}",
                key=f"{self._key_prefix}:edit",
                replaces_id=pressed.question.id,
            ),
        )

    # -- commit ------------------------------------------------------------------
    def _flush(self, version: int = 0) -> None:
        self._settle_pressed()
        if self._state_changed:
            self.conversation.version += 1
            conversations.save(self.conn, self.conversation, self.now_iso)
            self._state_changed = False
        super()._flush(self.conversation.version)

    def _discard(self, conversation: Conversation) -> None:
        self._pending.clear()
        self._pressed = None
        self.conversation = conversation
        self._state_changed = False


def _in_place(msg: _Pending) -> bool:
    """A question that may replace a message: asked so, no photo, no phone-request keyboard."""
    return (
        msg.recap is not None
        and not msg.attachments
        and msg.document is None
        and not any(b.action.startswith("@") for row in msg.buttons for b in row)
    )


def _note(msg: _Pending) -> bool:
    return not msg.buttons and not msg.attachments and msg.document is None and msg.recap is None


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    UNKNOWN_PERSON = "unknown_person"
    REFUSED = "refused"  # a UserError: replied with its message
    STALE = "stale"
    ERROR = "error"  # a bug: logged, the person got an apology


class Engine:
    def __init__(
        self,
        db: Database,
        router: Router,
        clock: Clock,
        *,
        default_language: str,
        default_timezone: str,
        on_commit: Callable[[], None] | None = None,
        media_dir: Path | None = None,
        served: Collection[str] | None = None,
        on_documents: Callable[[], None] | None = None,
    ) -> None:
        """`on_commit`: called when an event's transaction has committed (the
        sender looks); `on_documents`: when it queued a file to make."""
        self.db = db
        self.on_documents = on_documents
        self.media_dir = media_dir
        # The channels this deployment delivers on; None: any (tests, commands).
        self.served = served
        self.router = router
        self.clock = clock
        self.default_language = default_language
        self.default_timezone = default_timezone
        self.on_commit = on_commit
        # One lock per person while any of their events is in flight: [lock, users].
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def _person(self, channel: str, user_id: str) -> AsyncIterator[None]:
        key = (channel, user_id)
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    async def handle(self, inbound: Inbound) -> Outcome:
        """Process one inbound event exactly once. Events from one person run
        one at a time, in arrival order; different people's run side by side."""
        started = time.perf_counter()
        async with self._person(inbound.channel, inbound.user_id):
            outcome, staff_id, flow, documents = await self.db.transaction(
                lambda conn: self._process(conn, inbound)
            )
        log.info(
            "inbound channel=%s event=%s staff=%s kind=%s flow=%s outcome=%s ms=%.1f",
            inbound.channel,
            inbound.event_id,
            staff_id,
            inbound.kind.value,
            flow or "-",
            outcome.value,
            (time.perf_counter() - started) * 1000,
        )
        if outcome is not Outcome.DUPLICATE and self.on_commit:
            self.on_commit()
        if documents and self.on_documents:
            self.on_documents()
        return outcome

    async def resume(self, channel: str, user_id: str) -> bool:
        """Ask a person the question their conversation stands at (when they
        reopen a channel after a restart). False if they are in no flow."""

        def run(conn: sqlite3.Connection) -> bool:
            conversations.lock_person(conn, channel, user_id)
            ctx = self._context(conn, channel, user_id, f"resume:{time.time_ns()}")
            if ctx is None or not ctx.conversation.flow:
                return False
            flow = self.router.flows.get(ctx.conversation.flow)
            if flow is None:
                return False
            flow.reprompt(ctx)
            ctx._flush()
            return True

        async with self._person(channel, user_id):
            resumed = await self.db.transaction(run)
        if resumed and self.on_commit:
            self.on_commit()
        return resumed

    # -- inside the transaction ----------------------------------------------------
    def _context(
        self, conn: sqlite3.Connection, channel: str, user_id: str, key: str, address: str = ""
    ) -> Ctx | None:
        arrived = conversations.arrive(conn, channel, user_id)
        return self._arrived(conn, arrived, channel, user_id, key, address)

    def _arrived(
        self,
        conn: sqlite3.Connection,
        arrived: tuple[people.Identity, Conversation] | None,
        channel: str,
        user_id: str,
        key: str,
        address: str = "",
    ) -> Ctx | None:
        """What a handler sees of the person conversations.arrive found (None:
        no one, or someone inactive)."""
        if arrived is None or not arrived[0].staff.active:
            return None
        found, conversation = arrived
        now = self.clock.now()
        # Last-seen picks the channel that reaches a person; minutes are precise enough,
        # and skipping the write on most events keeps a page out of every commit.
        if (
            not found.reachable
            or not found.last_seen
            or found.last_seen < iso(now - SEEN_PRECISION)
        ):
            people.touch_identity(conn, channel, user_id, iso(now))
        ctx = Ctx(
            conn,
            found.staff,
            conversation,
            channel=channel,
            user_id=user_id,
            address=address or user_id,
            key_prefix=key,
            now=now,
            default_timezone=self.default_timezone,
            media_dir=self.media_dir,
        )
        ctx.served = self.served
        return ctx

    def _process(
        self, conn: sqlite3.Connection, inbound: Inbound
    ) -> tuple[Outcome, int | None, str, bool]:
        """The event's outcome, who sent it, their flow, and whether a file
        to make was queued."""
        now = iso(self.clock.now())
        # Before anything is read: one person's events run one at a time in every
        # process, and a redelivery to a second process finds this one's claim.
        conversations.lock_person(conn, inbound.channel, inbound.user_id)
        claimed = conversations.claim_event(conn, inbound.channel, inbound.event_id, now)
        address = str(inbound.data.get("chat") or inbound.user_id)
        pressed = self._pressed_ahead(conn, inbound, address)
        # Read before the claim's answer is asked: on PostgreSQL the claim (and the
        # pressed or typed-to question's read) goes with it.
        arrived = conversations.arrive(conn, inbound.channel, inbound.user_id)
        if not claimed():
            return Outcome.DUPLICATE, None, "", False
        key = f"reply:{inbound.channel}:{inbound.event_id}"
        if inbound.text and inbound.data.get("file_id") and inbound.kind in _MEDIA:
            media.remember(conn, inbound.channel, str(inbound.data["file_id"]), inbound.text, now)
        ctx = self._arrived(conn, arrived, inbound.channel, inbound.user_id, key, address)
        if inbound.data.get("group"):
            visitor = ctx or self._visitor(conn, inbound, key, address)
            outcome = self._guarded(conn, visitor, inbound, self.router.group)
            return outcome, ctx.staff.id if ctx else None, "group", visitor.documents_queued
        if ctx is None:
            visitor = self._visitor(conn, inbound, key, address)
            outcome = self._guarded(conn, visitor, inbound, self.router.stranger)
            return (
                Outcome.UNKNOWN_PERSON if outcome is Outcome.HANDLED else outcome,
                None,
                "stranger",
                visitor.documents_queued,
            )
        flow_name = ctx.conversation.flow
        ctx.pressed_message = pressed
        outcome = self._guarded(conn, ctx, inbound, self._route)
        return outcome, ctx.staff.id, flow_name, ctx.documents_queued

    def _visitor(
        self, conn: sqlite3.Connection, inbound: Inbound, key: str, address: str
    ) -> Visitor:
        hint = str(inbound.data.get("language", ""))
        return Visitor(
            conn,
            channel=inbound.channel,
            user_id=inbound.user_id,
            address=address,
            key_prefix=key,
            now=self.clock.now(),
            language=hint if hint in LANGUAGES else self.default_language,
            default_timezone=self.default_timezone,
            served=self.served,
        )

    def _guarded(
        self,
        conn: sqlite3.Connection,
        visitor: V,
        inbound: Inbound,
        handler: Callable[[V, Inbound], Outcome | None] | None,
    ) -> Outcome:
        """Run a handler inside a savepoint: a refusal or a bug undoes what it
        wrote and leaves the person a message instead; the event still counts
        as processed, so a redelivery does not repeat it."""
        snapshot = (
            replace(visitor.conversation, data=dict(visitor.conversation.data))
            if isinstance(visitor, Ctx)
            else None
        )
        conn.execute("SAVEPOINT step")
        try:
            outcome = handler(visitor, inbound) if handler else None
            visitor._flush()
        except UserError as refusal:
            conn.execute("ROLLBACK TO step")
            self._discard(visitor, snapshot)
            visitor.say(refusal.key, **refusal.params)
            if isinstance(visitor, Ctx):
                self._reprompt(visitor)
            visitor._flush()
            outcome = Outcome.REFUSED
        except Exception:
            log.exception(
                "handler failed channel=%s event=%s staff=%s flow=%s step=%s",
                inbound.channel,
                inbound.event_id,
                visitor.staff.id if isinstance(visitor, Ctx) else "-",
                snapshot.flow if snapshot else "-",
                snapshot.step if snapshot else "-",
            )
            conn.execute("ROLLBACK TO step")
            self._discard(visitor, snapshot)
            visitor.say("errors.internal")
            visitor._flush()
            outcome = Outcome.ERROR
        conn.execute("RELEASE step")
        return outcome or Outcome.HANDLED

    @staticmethod
    def _discard(visitor: Visitor, snapshot: Conversation | None) -> None:
        if isinstance(visitor, Ctx) and snapshot is not None:
            visitor._discard(snapshot)
        else:
            visitor._pending.clear()

    def _route(self, ctx: Ctx, inbound: Inbound) -> Outcome:
        conversation = ctx.conversation
        if inbound.data.get("too_large"):
            raise UserError("errors.file_too_large", limit=MAX_FILE_MB)
        if inbound.data.get("unavailable"):
            raise UserError("errors.file_unavailable")
        if inbound.data.get("not_image"):
            raise UserError("errors.not_a_photo")
        if inbound.kind is InboundKind.COMMAND or (
            inbound.kind is InboundKind.ACTION and inbound.text.startswith("/")
        ):
            name, _, args = inbound.text.strip().lstrip("/").partition(" ")
            name = name.lower().split("@", 1)[0]
            command = self.router.commands.get(name)
            if command is None:
                ctx.say("errors.unknown_command")
                self._reprompt(ctx)
                return Outcome.REFUSED
            if conversation.flow and name in self.router.urgent:
                self._interrupt(ctx, command, args.strip())
                return Outcome.HANDLED
            if conversation.flow and name not in self.router.anytime:
                ctx.say("errors.finish_first")
                self._reprompt(ctx)
                return Outcome.REFUSED
            command(ctx, args.strip())
            if ctx.resumed:
                self._announce_resume(ctx)
                self._reprompt(ctx)
            elif conversation.flow and not ctx.state_changed:
                self._reprompt(ctx)  # /help mid-checklist: show the open question again
            return Outcome.HANDLED
        inbound = self._keyboard_press(ctx, inbound)
        if inbound.kind is InboundKind.ACTION:
            version, _, value = inbound.text.partition(":")
            if not conversation.flow or version != f"v{conversation.version}":
                if not inbound.data.get("ack"):  # else the channel shows it on the button
                    ctx.say("errors.stale_button")
                return Outcome.STALE
            self._show_answer(ctx, inbound)
            inbound = Inbound(
                channel=inbound.channel,
                user_id=inbound.user_id,
                event_id=inbound.event_id,
                kind=InboundKind.ACTION,
                text=value,
                data=inbound.data,
            )
        flow = self.router.flows.get(conversation.flow) if conversation.flow else None
        step = flow.steps.get(conversation.step) if flow else None
        if step is not None:
            step(ctx, inbound)
            if ctx.resumed:
                self._announce_resume(ctx)
                self._reprompt(ctx)
            return Outcome.HANDLED
        if conversation.flow:
            # A flow or step that no longer exists (renamed in an upgrade): start afresh.
            ctx.end()
        if self.router.fallback is not None:
            self.router.fallback(ctx, inbound)
        return Outcome.HANDLED

    @staticmethod
    def _keyboard_press(ctx: Ctx, inbound: Inbound) -> Inbound:
        """A text that is the label of a button of the current question, when
        that question asks the phone for a location or contact, is a press of
        the button: a channel may show such a question's buttons as a reply
        keyboard (Telegram does), and a tap there sends the label as text."""
        if inbound.kind is not InboundKind.TEXT or not ctx.conversation.flow:
            return inbound
        asked, ctx.pressed_message = ctx.pressed_message, None
        question = (
            asked()
            if asked is not None
            else outbox.latest_reply_question(ctx.conn, ctx.channel, ctx.address)
        )
        buttons = [b for row in question.buttons for b in row] if question else []
        if not any(b.action.startswith("@") for b in buttons):
            return inbound
        current = f"v{ctx.conversation.version}:"
        typed = inbound.text.strip()
        for button in buttons:
            if button.action.startswith(current) and button.label.strip() == typed:
                return replace(inbound, kind=InboundKind.ACTION, text=button.action)
        return inbound

    @staticmethod
    def _pressed_ahead(
        conn: sqlite3.Connection, inbound: Inbound, address: str
    ) -> Callable[[], Outbound | None] | None:
        """The read of the question an event answers, asked before the person's
        arrival is read: on PostgreSQL it goes in that round trip, not one of its
        own in the step. A press: the message whose button was pressed (where the
        channel says which, `_show_answer`); a text: the newest question, whose
        reply keyboard it may come from (`_keyboard_press`)."""
        message_id = inbound.data.get("message_id")
        if inbound.kind is InboundKind.ACTION and message_id is not None:
            return outbox.delivered_message_ahead(conn, inbound.channel, address, str(message_id))
        if inbound.kind is InboundKind.TEXT:
            return outbox.latest_reply_question_ahead(conn, inbound.channel, address)
        return None

    @staticmethod
    def _show_answer(ctx: Ctx, inbound: Inbound) -> None:
        """Note the question whose button was pressed, where the channel told us
        which message it was: when the step commits, it is edited to show the
        answer, or rewritten into the next question (`Ctx.ask`). A channel that
        can only mark a pressed message answered says `rewritable: False`."""
        message_id = inbound.data.get("message_id")
        if message_id is None:
            return
        asked, ctx.pressed_message = ctx.pressed_message, None
        if asked is not None:
            question = asked()
        else:  # not asked with the arrival (the event became a press on its way in)
            question = outbox.delivered_message(ctx.conn, ctx.channel, ctx.address, str(message_id))
        if question is None:
            return
        label = next(
            (b.label for row in question.buttons for b in row if b.action == inbound.text), None
        )
        if label is not None:
            rewritable = inbound.data.get("rewritable", True) is not False
            ctx._pressed = _Pressed(question, label, rewritable)

    def _interrupt(self, ctx: Ctx, command: Command, args: str) -> None:
        """Run an urgent command over the current flow, which is paused and
        resumes when the urgent one ends (or at once, if it starts none)."""
        paused = replace(ctx.conversation, data=dict(ctx.conversation.data))
        command(ctx, args)
        if not ctx.state_changed:  # it only showed something (a card): the open question again
            self._reprompt(ctx)
        elif ctx.conversation.flow:
            ctx.pause_into(paused)
            ctx.say("common.paused", flow=ctx.text(f"flows.{paused.flow}"))
        else:  # it ended at once: back to what it interrupted
            ctx.conversation.flow, ctx.conversation.step = paused.flow, paused.step
            ctx.conversation.data = paused.data
            self._reprompt(ctx)

    @staticmethod
    def _announce_resume(ctx: Ctx) -> None:
        ctx.resumed = False
        ctx.say("common.resumed", flow=ctx.text(f"flows.{ctx.conversation.flow}"))

    def _reprompt(self, ctx: Ctx) -> None:
        flow = self.router.flows.get(ctx.conversation.flow) if ctx.conversation.flow else None
        if flow is not None:
            flow.reprompt(ctx)
