"""The console channel: chat with the bot in a terminal or through a pipe.
Buttons show as numbered options; `/photo PATH` and `/location LAT LON` stand
in for a phone's attachments. It is a real channel: replies come through the
outbox like any other, and messages no other channel of the person's can
deliver are shown when they open it. When whoever reads the output goes away
(`frontline chat … | head`), the chat ends and what was not shown waits for
the next one."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.clock import Clock, iso
from bot.engine import Engine
from bot.i18n import t
from bot.media import MediaError, NotAnImage, store_file
from bot.model import Button, Inbound, InboundKind, Outbound, Staff
from bot.numbers import parse_number
from bot.preparer import Preparer
from bot.sender import Sender, TransientError
from bot.store import outbox, people
from bot.store.db import Database

CHANNEL = "console"


class OutputClosed(TransientError):
    """Nobody reads the console's output any more (the pipe's reader closed
    it): the message stays pending, for the next chat to show."""

    def __init__(self) -> None:
        super().__init__("the console's output was closed", outage=False)


class ConsoleTransport:
    """Prints messages for one person and remembers the last buttons shown,
    so that a typed number or label can press them."""

    name = CHANNEL
    per_second = 0.0

    def limit(self, address: str | None) -> tuple[float, float]:
        return 0.0, 0.0

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.choices: list[Button] = []
        self.closed = False  # the output's reader has gone

    async def deliver(self, message: Outbound, replaces: str | None) -> str | None:
        self.show(message)
        return f"console:{message.id}"

    def show(self, message: Outbound) -> None:
        lines = [message.text]
        lines.extend(f"📎 {path}" for path in message.attachments)
        flat = [button for row in message.buttons for button in row]
        if flat:
            lines.append("  ".join(f"[{n}] {b.label}" for n, b in enumerate(flat, 1)))
        self.write("\n".join(lines) + "\n\n")
        if flat or message.replaces_id is None:
            # A new message without buttons asks for words: a typed number is text then.
            self.choices = flat

    def write(self, text: str) -> None:
        """Print, or raise OutputClosed if nobody reads the output any more."""
        if self.closed:
            raise OutputClosed()
        try:
            self.out.write(text)
            self.out.flush()
        except (BrokenPipeError, ValueError) as exc:  # ValueError: the file was closed
            self.closed = True
            raise OutputClosed() from exc


@dataclass(frozen=True, slots=True)
class Typed:
    """What a typed line means before it becomes an Inbound."""

    kind: InboundKind
    text: str = ""
    data: dict[str, float] | None = None
    problem: str | None = None  # a catalog key: the line was not usable


def parse_line(line: str, choices: list[Button]) -> Typed | None:
    """Turn one typed line into what it stands for; None means quit."""
    text = line.rstrip("\r\n")
    word, _, rest = text.strip().partition(" ")
    if word == "/quit":
        return None
    if word == "/photo":
        if not rest.strip():
            return Typed(InboundKind.PHOTO, problem="console.photo_usage")
        return Typed(InboundKind.PHOTO, text=rest.strip())
    if word == "/location":
        return _location(rest)
    number = parse_number(text, low=1, high=len(choices)) if choices else None
    if number is not None:
        return Typed(InboundKind.ACTION, text=choices[number - 1].action)
    for button in choices:
        if text.strip() == button.label:
            return Typed(InboundKind.ACTION, text=button.action)
    if text.startswith("/") and len(text) > 1:
        return Typed(InboundKind.COMMAND, text=text.strip())
    return Typed(InboundKind.TEXT, text=text)


def _location(rest: str) -> Typed:
    parts = rest.split()
    try:
        lat, lon = (float(p) for p in parts) if len(parts) == 2 else (float("nan"),) * 2
    except ValueError:
        lat = lon = float("nan")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also false for NaN
        return Typed(InboundKind.LOCATION, problem="console.location_usage")
    return Typed(InboundKind.LOCATION, data={"lat": lat, "lon": lon})


class ConsoleChat:
    def __init__(
        self,
        db: Database,
        engine: Engine,
        sender: Sender,
        transport: ConsoleTransport,
        clock: Clock,
        staff: Staff,
        media_dir: Path,
        preparer: Preparer | None = None,
    ) -> None:
        self.db = db
        # Makes the files replies carry (an /export) before the sender shows them.
        self.preparer = preparer
        self.engine = engine
        self.sender = sender
        self.transport = transport
        self.clock = clock
        self.staff = staff
        self.media_dir = media_dir
        self.address = str(staff.id)

    async def open(self) -> None:
        """Bind the console to the person, show what was held for them, and
        ask again the question their conversation stands at."""
        now = iso(self.clock.now())

        def bind_and_take(conn: sqlite3.Connection) -> list[Outbound]:
            people.bind_identity(conn, CHANNEL, self.address, self.staff.id, now)
            # What an earlier session of this chat was showing when it was killed,
            # and what waits because its output was closed: due now.
            outbox.release_interrupted(conn, CHANNEL, self.address)
            outbox.retry_now(conn, CHANNEL, now)
            return outbox.claim_undeliverable_for(conn, self.staff.id)

        held = await self.db.transaction(bind_and_take)
        if held:
            await self._show_held(held, now)
        if self.transport.closed:
            return
        await self._prepare()
        await self.sender.drain(CHANNEL, self.address)  # replies left by an earlier session
        await self.engine.resume(CHANNEL, self.address)
        await self.sender.drain(CHANNEL, self.address)

    async def _show_held(self, held: list[Outbound], now: str) -> None:
        """Show what was held; what the output's reader left before seeing
        goes back to wait for the next chat."""
        shown: set[int] = set()
        with contextlib.suppress(OutputClosed):
            self.transport.write(t(self.staff.language, "console.held", count=len(held)) + "\n\n")
            for message in held:
                self.transport.show(message)
                shown.add(message.id)

        def record(conn: sqlite3.Connection) -> None:
            for message in held:
                if message.id in shown:
                    outbox.mark_sent(conn, message.id, None, now)
                else:
                    outbox.release(conn, message.id)

        await self.db.transaction(record)

    async def send(self, line: str) -> bool:
        """Handle one typed line; False when the person quits or nobody reads
        the output any more."""
        typed = parse_line(line, self.transport.choices)
        if typed is None:
            return False
        if typed.problem:
            self.say(typed.problem)
            return not self.transport.closed
        text = typed.text
        data: dict[str, object] = dict(typed.data or {})
        if typed.kind is InboundKind.PHOTO:
            try:
                text = store_file(self.media_dir, Path(typed.text).expanduser(), image=True)
            except NotAnImage:
                text, data = "", {"not_image": True}  # the engine refuses it, as on a phone
            except MediaError:
                self.say("console.photo_missing", path=typed.text)
                return not self.transport.closed
        await self.engine.handle(
            Inbound(
                channel=CHANNEL,
                user_id=self.address,
                event_id=uuid.uuid4().hex,
                kind=typed.kind,
                text=text,
                data=data,
            )
        )
        await self._prepare()
        await self.sender.drain(CHANNEL, self.address)
        return not self.transport.closed

    async def _prepare(self) -> None:
        if self.preparer is not None:
            await self.preparer.drain()

    def say(self, key: str, **params: object) -> None:
        """Console-only notes (not messages for the person's register); lost
        if nobody reads the output any more."""
        with contextlib.suppress(OutputClosed):
            self.transport.write(t(self.staff.language, key, **params) + "\n\n")


async def read_lines(
    source: TextIO, handle: Callable[[str], Awaitable[bool]], prompt: TextIO | None = None
) -> None:
    """Feed `source` line by line to `handle` until it returns False or the input ends."""
    loop = asyncio.get_running_loop()
    while True:
        if prompt is not None:
            prompt.write("> ")
            prompt.flush()
        line = await loop.run_in_executor(None, source.readline)
        if not line or not await handle(line):
            return


def interactive() -> bool:
    return sys.stdin.isatty()
