"""Telegram pipeline benchmark: the 10,000 events of bench/pipeline.py (1,000
people each doing the pre-shift check) as Telegram updates, fed to the real
python-telegram-bot Application through `Application.process_update`, once
with Frontline behind it and once with a bare PTB echo, both talking to the
same fake Bot API server. Prints updates/s and p50/p99 for each, and the ratio
ours/bare (target >= 0.5).

What each side does per update:

- ours: the Application from `build_application` with `TelegramChannel` (its
  one TypeHandler) wired to the engine, a fresh SQLite store with 1,000 people
  whose Telegram ids are bound, and the outbox. A press becomes an Inbound, the
  engine checks the button's version, records the answer, queues the next
  question in place of the pressed one in the outbox (one transaction), and
  the channel answers the press with answerCallbackQuery (HTTP). A /check also
  syncs the person's command menu (two reads, setMyCommands over HTTP the first
  time, one write). Text is a problem's description. No reply goes out over
  HTTP: replies wait in the outbox for the sender, which does not run.
- bare: a second Application from `build_application` with
  MessageHandler(filters.TEXT) that echoes the text back (sendMessage over
  HTTP, what an echo bot does; `--echo-builds-only` builds the reply without
  sending it, the stricter comparison, since ours only queues) and
  CallbackQueryHandler that calls `query.answer()` (HTTP, as ours does).

Both get the same kinds of update in the same order, built beforehand with
`Update.de_json` (parsing belongs to getUpdates, not to process_update). One
person's updates run one after another, `--concurrency` people side by side.
The fake server runs in a child process, as Telegram would be elsewhere, so
its own work is not counted against either side.

Before each press a stand-in for the sender files the question it presses
under the message id the press carries (what the sender records once the
question is out), so that the engine finds the pressed question and edits it,
as in production. It is one UPDATE queued to the database just ahead of the
press (untimed, though it shares the press's group commit).

Then the same check as people at their phones see it: `serve()` (what
`frontline run` runs: polling, engine, store, sender, transport) against a
second fake Bot API server in a child process, which enforces Telegram's limits
(30 messages/s for the bot, 1/s per chat after a burst of 3; edits count, as
they do in practice) and plays the people: each answers the question on their
screen once it has arrived, at most one tap (or typed description) per 1.5 s.

- tap to next question: `--latency-people` people (20) do their checks side by
  side, starting 1.5 s apart in all; each tap's wait, from the tap to the moment
  the bot's next question (or the summary) has arrived at the server. Prints
  the median (target < 300 ms), p95, and the Bot API message calls per tap.
- shift start: `--people` people (1,000) send /check at the same moment and
  answer as above. Prints the time until the last summary has arrived beside
  the minimum Telegram's 30 messages/s allows for the message calls made
  (sendMessage, sendPhoto, sendDocument, editMessageText), and the ratio
  achieved / minimum.

Run: python -m bench.telegram_pipeline [--people 1000] [--concurrency 8]
     [--latency-people 20] [--quick]   (--quick: 100 people, 10 for the latency)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from anywhere: bench/ and tests/ live in the repo root

from telegram import Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bench.pipeline import script, write_roster  # noqa: E402
from bot import roster  # noqa: E402
from bot.app import App, serve  # noqa: E402
from bot.channels.telegram.channel import (  # noqa: E402
    TelegramChannel,
    TelegramSettings,
    build_application,
)
from bot.channels.telegram.transport import CHANNEL  # noqa: E402
from bot.checklists import load_all  # noqa: E402
from bot.clock import FakeClock, iso  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.i18n import t  # noqa: E402
from bot.model import InboundKind  # noqa: E402
from bot.store import people  # noqa: E402
from handlers.router import menu  # noqa: E402
from tests.telegram.fakebotapi import (  # noqa: E402
    EDIT_METHODS,
    SEND_METHODS,
    FakeBotAPI,
    MessageRecord,
    callback_update,
    text_update,
)

TARGET_RATIO = 0.5
TARGET_TAP_MS = 300.0  # median tap to next question
TARGET_SHIFT_RATIO = 1.10  # shift start: achieved / minimum
ALLOWED_RATE = 30.0  # Telegram: about 30 messages/s per bot
CADENCE = 1.5  # seconds: a person taps (or sends a description) at most this often
QUICK_PEOPLE = 100
LATENCY_PEOPLE, QUICK_LATENCY_PEOPLE = 20, 10
FIRST_USER_ID = 700_000  # Telegram user id = FIRST_USER_ID + staff id
START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)

PTBApplication = Application[Any, Any, Any, Any, Any, Any]


# -- the fake Bot API, in a child process ------------------------------------------------


def serve_fake_api(pipe: Connection) -> None:
    """Child process: run FakeBotAPI; answer "report" with what it was asked, stop on "stop"."""
    asyncio.run(_fake_api(pipe))


async def _fake_api(pipe: Connection) -> None:
    async with FakeBotAPI() as api:
        pipe.send((api.token, api.root_url))
        while (await asyncio.to_thread(pipe.recv)) != "stop":
            calls = Counter(api.calls)
            stale = sum(1 for answer in api.callback_answers if answer.text)
            pipe.send((dict(calls), stale))


@dataclass
class FakeServer:
    process: multiprocessing.process.BaseProcess
    pipe: Connection
    token: str
    root_url: str

    @classmethod
    def start(cls, target: Callable[[Connection], None] = serve_fake_api) -> FakeServer:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=target, args=(theirs,), daemon=True)
        process.start()
        if not ours.poll(30):
            process.kill()
            raise RuntimeError("the fake Bot API server did not start")
        token, root_url = ours.recv()
        return cls(process, ours, token, root_url)

    def report(self) -> tuple[Counter[str], int]:
        """Calls per Bot API method so far, and how many presses were answered with a text."""
        self.pipe.send("report")
        calls, stale = self.pipe.recv()
        return Counter(calls), stale

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(timeout=10)

    @property
    def settings(self) -> TelegramSettings:
        return TelegramSettings(token=self.token, api_url=self.root_url)


# -- the updates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    staff_id: int
    user_id: int
    updates: list[Update]
    # The bot message id each update's press names (None for messages).
    pressed: list[int | None]


def person_updates(
    application: PTBApplication, index: int, staff_id: int, first_update_id: int
) -> Person:
    """One person's check as Telegram updates; a press names bot message `n` for its nth
    update (the stand-in sender files the question under that id just before)."""
    user_id = FIRST_USER_ID + staff_id
    updates: list[Update] = []
    pressed: list[int | None] = []
    for number, (kind, text) in enumerate(script(index)):
        update_id = first_update_id + number
        if kind is InboundKind.ACTION:
            raw = callback_update(user_id, text, message_id=number, update_id=update_id)
            pressed.append(number)
        else:
            raw = text_update(user_id, text, update_id=update_id)
            pressed.append(None)
        updates.append(Update.de_json(raw, application.bot))
    return Person(staff_id, user_id, updates, pressed)


def build_people(application: PTBApplication, staff_ids: list[int]) -> list[Person]:
    crowd = []
    next_update_id = 1
    for index, staff_id in enumerate(staff_ids):
        person = person_updates(application, index, staff_id, next_update_id)
        next_update_id += len(person.updates)
        crowd.append(person)
    return crowd


# -- driving an Application ---------------------------------------------------------------

# Runs before a person's update, untimed: (person, index of the update). What it
# returns is awaited after the update.
Prepare = Callable[[Person, int], "asyncio.Task[None] | None"]


@dataclass
class Timing:
    updates: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * 0.99) - 1] * 1000


class ErrorCount(logging.Handler):
    """Counts ERROR records: PTB logs a failed handler there (ours through on_error)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def drive(
    application: PTBApplication,
    crowd: list[Person],
    concurrency: int,
    prepare: Prepare | None = None,
) -> Timing:
    """Each person's updates in order through process_update, `concurrency` people at once."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)

    async def one_person(person: Person) -> None:
        async with gate:
            for number, update in enumerate(person.updates):
                ahead = prepare(person, number) if prepare is not None else None
                if ahead is not None:
                    await asyncio.sleep(0)  # it queues its work before the update's
                started = time.perf_counter()
                await application.process_update(update)
                latencies.append(time.perf_counter() - started)
                if ahead is not None:
                    await ahead

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one_person(person) for person in crowd))
        elapsed = time.perf_counter() - started
    finally:
        logging.getLogger().removeHandler(errors)
    return Timing(len(latencies), elapsed, latencies, errors.count)


# -- ours -----------------------------------------------------------------------------------


async def seed(app: App, folder: Path, count: int) -> list[int]:
    """The demo-like roster of bench/pipeline.py, each worker bound to a Telegram id."""
    roster_file = folder / "roster.csv"
    write_roster(roster_file, count)
    now = START
    await roster.import_roster_file(
        app.db, roster_file, deactivate_missing=False, default_language="zh-CN", now=now
    )

    def bind(conn: sqlite3.Connection) -> list[int]:
        ids = [r[0] for r in conn.execute("SELECT id FROM staff WHERE employee_no LIKE 'E%'")]
        for staff_id in ids:
            people.bind_identity(conn, CHANNEL, str(FIRST_USER_ID + staff_id), staff_id, iso(now))
        return ids

    return await app.db.transaction(bind)


def file_question(conn: sqlite3.Connection, address: str, message_id: int) -> None:
    """What the sender records once a question is out: Telegram's message id for the
    latest message with buttons queued for this chat."""
    conn.execute(
        "UPDATE outbox SET channel_message_id = ? WHERE id = (SELECT MAX(id) FROM outbox"
        " WHERE channel = ? AND address = ? AND buttons IS NOT NULL)",
        (str(message_id), CHANNEL, address),
    )


@dataclass
class Register:
    completed_runs: int
    answers: int
    hazards: int
    outbox_rows: int
    edits: int
    processed: int


async def run_ours(
    folder: Path, server: FakeServer, people_count: int, concurrency: int
) -> tuple[Timing, Register]:
    clock = FakeClock(START)
    app = await App.open(folder / "bench.db", {}, clock=clock)
    try:
        staff_ids = await seed(app, folder, people_count)
        application = build_application(server.settings)
        TelegramChannel(application, app.engine, app.db, folder / "media", menu)
        await application.initialize()
        crowd = build_people(application, staff_ids)

        def deliver(person: Person, number: int) -> asyncio.Task[None] | None:
            message_id = person.pressed[number]
            if message_id is None:
                return None
            address = str(person.user_id)
            return asyncio.create_task(
                app.db.transaction(lambda conn: file_question(conn, address, message_id))
            )

        try:
            timing = await drive(application, crowd, concurrency, deliver)
        finally:
            await application.shutdown()
        row = await app.db.read(
            lambda c: c.execute(
                "SELECT (SELECT COUNT(*) FROM checklist_runs WHERE completed_at IS NOT NULL),"
                " (SELECT COUNT(*) FROM checklist_answers), (SELECT COUNT(*) FROM hazards),"
                " (SELECT COUNT(*) FROM outbox),"
                " (SELECT COUNT(*) FROM outbox WHERE replaces_id IS NOT NULL),"
                " (SELECT COUNT(*) FROM processed_events WHERE channel = 'telegram')"
            ).fetchone()
        )
    finally:
        await app.close()
    return timing, Register(*row)


# -- bare PTB -------------------------------------------------------------------------------


ECHO_SENDS = True


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A bare echo bot: it sends the text back (with --echo-builds-only it only
    builds the reply, the stricter comparison, since ours queues its replies)."""
    message = update.effective_message
    assert message is not None
    if ECHO_SENDS:
        await message.reply_text(message.text or "")
    else:
        _reply = f"echo: {message.text}"


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()


async def run_bare(
    server: FakeServer, staff_ids: list[int], concurrency: int
) -> tuple[Timing, list[Person]]:
    application = build_application(server.settings)
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(answer))
    await application.initialize()
    crowd = build_people(application, staff_ids)
    try:
        timing = await drive(application, crowd, concurrency)
    finally:
        await application.shutdown()
    return timing, crowd


# -- people at their phones: a second fake server that plays them --------------------------

# What must have arrived in a chat before its person acts: (button data, text).
# A message carrying a button with that data, or else one whose text contains the text.
Expect = tuple[str, str]
# One thing a person does: what must have arrived first (None: nothing), "command" /
# "press" / "text", and the command, the button data or the text.
Turn = tuple[Expect | None, str, str]
# One person: Telegram user id, seconds after the phase starts, turns, the last arrival.
Plan = tuple[int, float, list[Turn], Expect]
MESSAGE_METHODS = SEND_METHODS | EDIT_METHODS


def serve_people(pipe: Connection) -> None:
    """Child process: a fake Bot API that enforces Telegram's limits and plays the people
    of each plan the parent sends; answers each with what it saw."""
    asyncio.run(_people_api(pipe))


async def _people_api(pipe: Connection) -> None:
    async with FakeBotAPI() as api:
        api.enforce_limits(count_edits=True)
        crowd = Crowd(api)
        pipe.send((api.token, api.root_url))
        while (message := await asyncio.to_thread(pipe.recv)) != "stop":
            plans, timeout = message
            pipe.send(await crowd.run(plans, timeout))


def _met(expect: Expect, record: MessageRecord) -> bool:
    data, text = expect
    if data:
        rows = (record.reply_markup or {}).get("inline_keyboard", [])
        return any(button.get("callback_data") == data for row in rows for button in row)
    return text in (record.text or record.caption or "")


@dataclass
class _Player:
    plan: Plan
    turn: int = 0
    waiting: Expect | None = None
    acted_at: float = 0.0
    pressed_at: float | None = None  # when the turn now waited on was a press
    calls: int = 0  # message calls to the chat since that press
    message_id: int = 0  # the message that carries the button to press next
    done_at: float | None = None


@dataclass
class Seen:
    """What the people saw in one phase (times in seconds, the server's clock)."""

    people: int
    completed: int = 0
    elapsed: float = 0.0
    waits: list[float] = field(default_factory=list)  # tap to next question
    tap_calls: list[int] = field(default_factory=list)  # message calls each tap caused
    calls: dict[str, int] = field(default_factory=dict)  # message calls by method
    rejected_429: int = 0


class Crowd:
    """People at their phones: each does their next turn once what it answers has
    arrived, and at most one turn per CADENCE seconds."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api
        self.players: dict[int, _Player] = {}
        self.seen = Seen(0)
        self.left = 0
        self.finished = asyncio.Event()
        api.listeners.append(self.arrived)

    async def run(self, plans: list[Plan], timeout: float) -> Seen:
        loop = asyncio.get_running_loop()
        self.seen, self.left, self.finished = Seen(len(plans)), len(plans), asyncio.Event()
        self.players = {plan[0]: _Player(plan) for plan in plans}
        calls = Counter(r.method for r in self.api.sent + self.api.edits)
        rejected = self.api.rejected_429
        started = loop.time()
        for player in self.players.values():
            loop.call_at(started + player.plan[1], self.act, player)
        with contextlib.suppress(TimeoutError):  # what completed by then is reported
            await asyncio.wait_for(self.finished.wait(), timeout)
        done = [p.done_at for p in self.players.values() if p.done_at is not None]
        self.seen.completed = len(done)
        self.seen.elapsed = (max(done) - started) if done else 0.0
        now = Counter(r.method for r in self.api.sent + self.api.edits)
        self.seen.calls = dict(now - calls)
        self.seen.rejected_429 = self.api.rejected_429 - rejected
        self.players = {}
        return self.seen

    def act(self, player: _Player) -> None:
        user_id, _, turns, done = player.plan
        _, kind, text = turns[player.turn]
        if kind == "press":
            update = callback_update(user_id, text, player.message_id)
        else:
            update = text_update(user_id, text)
        now = asyncio.get_running_loop().time()
        player.acted_at = now
        player.pressed_at = now if kind == "press" else None
        player.calls = 0
        player.turn += 1
        following = turns[player.turn][0] if player.turn < len(turns) else done
        player.waiting = following
        self.api.push_update(update)
        if following is None:  # a turn that needs nothing new on the screen
            self.next_turn(player, now)

    def arrived(self, record: MessageRecord) -> None:
        player = self.players.get(int(record.chat_id))
        if player is None or player.waiting is None:
            return
        player.calls += 1
        if not _met(player.waiting, record):
            return
        now = asyncio.get_running_loop().time()
        if player.pressed_at is not None:
            self.seen.waits.append(now - player.pressed_at)
            self.seen.tap_calls.append(player.calls)
        player.waiting = None
        player.message_id = record.message_id
        self.next_turn(player, now)

    def next_turn(self, player: _Player, now: float) -> None:
        if player.turn >= len(player.plan[2]):
            player.done_at = now
            self.left -= 1
            if self.left == 0:
                self.finished.set()
            return
        at = max(now, player.acted_at + CADENCE)
        asyncio.get_running_loop().call_at(at, self.act, player)


def plan_for(index: int, user_id: int, start_after: float) -> Plan:
    """bench/pipeline.py's script for person `index` as what they wait for and do."""
    checklist = load_all()["preshift"]
    # What a person waits for before typing a description: the question asking for it.
    asked = t("zh-CN", "check.ask_problem", item="\0").split("\0")[-1]
    turns: list[Turn] = []
    problems = 0
    for kind, text in script(index):
        if kind is InboundKind.ACTION:
            turns.append(((text, ""), "press", text))
            problems += text.endswith(":problem")
        elif kind is InboundKind.TEXT:
            turns.append((("", asked), "text", text))
        else:
            turns.append((None, "command", text))
    summary = t(
        "zh-CN",
        "check.summary",
        title=checklist.title.get("zh-CN"),
        ok=len(checklist.items) - problems,
        problem=problems,
        na=0,
        problems="",
    )
    return (user_id, start_after, turns, ("", summary))


class RunningClock:
    """START, moving on with wall time from when it is made: retries and
    reminders come due as they would."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.base = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.base)


@dataclass
class AtPhones:
    latency: Seen
    shift: Seen


async def run_at_phones(folder: Path, latency_people: int, shift_people: int) -> AtPhones:
    """Both phases against one running bot: first the few (tap latency), then the crowd."""
    db_path = folder / "phones.db"
    app = await App.open(db_path, {}, clock=FakeClock(START))
    try:
        staff_ids = await seed(app, folder, latency_people + shift_people)
    finally:
        await app.close()
    users = [FIRST_USER_ID + staff_id for staff_id in staff_ids]
    few = [
        plan_for(n, user, n * CADENCE / latency_people)
        for n, user in enumerate(users[:latency_people])
    ]
    crowd = [plan_for(n, user, 0.0) for n, user in enumerate(users[latency_people:])]
    server = FakeServer.start(serve_people)
    try:
        settings = load_settings(
            db=db_path,
            telegram_token=server.token,
            telegram_api_url=server.root_url,
            telegram_poll_timeout=10,
        )
        stop, started = asyncio.Event(), asyncio.Event()
        bot = asyncio.create_task(serve(settings, stop, clock=RunningClock(START), started=started))
        try:
            await asyncio.wait_for(started.wait(), 30)
            latency = await _phase(server, few, 60 + 30 * CADENCE)
            shift = await _phase(server, crowd, 120 + 2.0 * shift_people)
        finally:
            stop.set()
            await asyncio.wait_for(bot, 60)
    finally:
        server.stop()
    return AtPhones(latency, shift)


async def _phase(server: FakeServer, plans: list[Plan], timeout: float) -> Seen:
    server.pipe.send((plans, timeout))
    seen: Seen = await asyncio.to_thread(server.pipe.recv)
    return seen


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share + 0.5) - 1)]


def report_at_phones(result: AtPhones) -> bool:
    few, crowd = result.latency, result.shift
    taps = len(few.waits)
    print("at their phones   serve() against a fake Bot API with Telegram's limits; a person")
    print(f"                  answers what has arrived, at most once per {CADENCE:g} s")
    print(f"tap to next question, {few.people} people side by side ({taps} taps)")
    if taps:
        median = statistics.median(few.waits) * 1000
        print(f"  median          {median:.0f} ms (target < {TARGET_TAP_MS:.0f} ms)")
        print(f"  p95             {percentile(few.waits, 0.95) * 1000:.0f} ms")
        print(f"  max             {max(few.waits) * 1000:.0f} ms")
        print(f"  calls per tap   {sum(few.tap_calls) / taps:.2f}")
    print(f"  completed       {few.completed} of {few.people} checks, {few.rejected_429} 429s")
    total = sum(crowd.calls.values())
    minimum = total / ALLOWED_RATE
    print(f"shift start, {crowd.people} people send /check at once")
    print(f"  completed       {crowd.completed} of {crowd.people} checks")
    print(f"  elapsed         {crowd.elapsed:.1f} s until the last summary arrived")
    print(f"  message calls   {total}: {api_calls(Counter(crowd.calls))}")
    print(f"  answered 429    {crowd.rejected_429}")
    if crowd.tap_calls:
        print(f"  calls per tap   {sum(crowd.tap_calls) / len(crowd.tap_calls):.2f}")
    print(f"  minimum         {minimum:.1f} s ({total} calls at {ALLOWED_RATE:.0f}/s)")
    if minimum:
        ratio = crowd.elapsed / minimum
        target = f"target <= {TARGET_SHIFT_RATIO:.2f}"
        print(f"  ratio           {ratio:.2f} achieved / minimum ({target})")
    return few.completed == few.people and crowd.completed == crowd.people


# -- the run --------------------------------------------------------------------------------


@dataclass
class Result:
    ours: Timing
    bare: Timing
    register: Register
    ours_calls: Counter[str]
    bare_calls: Counter[str]
    stale: int
    presses: int


async def run(people_count: int, concurrency: int) -> Result:
    server = FakeServer.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            ours, register = await run_ours(Path(folder), server, people_count, concurrency)
        after_ours, stale = server.report()
        # The bare side gets fresh updates (new callback ids: each press is answered once).
        staff_ids = list(range(1, people_count + 1))
        bare, crowd = await run_bare(server, staff_ids, concurrency)
        after_bare, _ = server.report()
    finally:
        server.stop()
    presses = sum(p is not None for person in crowd for p in person.pressed)
    return Result(
        ours=ours,
        bare=bare,
        register=register,
        ours_calls=after_ours,
        bare_calls=after_bare - after_ours,
        stale=stale,
        presses=presses,
    )


def api_calls(calls: Counter[str]) -> str:
    return ", ".join(f"{count} {method}" for method, count in sorted(calls.items())) or "none"


def report(result: Result, people_count: int, concurrency: int) -> bool:
    ours, bare, reg = result.ours, result.bare, result.register
    ratio = ours.rate / bare.rate
    print(f"updates           {ours.updates} per side ({result.presses} presses)")
    print(f"people at once    {concurrency}")
    print("ours              PTB Application -> TelegramChannel -> engine -> SQLite + outbox,")
    print("                  presses answered over HTTP, /check syncs the command menu")
    print(f"  elapsed         {ours.seconds:.2f} s")
    print(f"  throughput      {ours.rate:.0f} updates/s")
    print(f"  latency p50     {ours.p50_ms:.2f} ms")
    print(f"  latency p99     {ours.p99_ms:.2f} ms")
    print(f"  Bot API calls   {api_calls(result.ours_calls)}")
    echo_does = "echo sends the text back" if ECHO_SENDS else "echo builds its reply (not sent)"
    print(f"bare              PTB Application -> {echo_does},")
    print("                  presses answered over HTTP")
    print(f"  elapsed         {bare.seconds:.2f} s")
    print(f"  throughput      {bare.rate:.0f} updates/s")
    print(f"  latency p50     {bare.p50_ms:.2f} ms")
    print(f"  latency p99     {bare.p99_ms:.2f} ms")
    print(f"  Bot API calls   {api_calls(result.bare_calls)}")
    print(
        f"register          {reg.completed_runs} completed runs, {reg.answers} answers,"
        f" {reg.hazards} hazards, {reg.outbox_rows} outbox rows ({reg.edits} edits),"
        f" {reg.processed} updates processed, {result.stale} stale presses,"
        f" {ours.errors} errors (bare: {bare.errors})"
    )
    print(f"ratio ours/bare   {ratio:.2f} (target >= {TARGET_RATIO:.2f})")
    answered = result.ours_calls["answerCallbackQuery"] == result.presses
    return (
        reg.completed_runs == people_count
        and reg.processed == ours.updates
        and result.stale == 0
        and ours.errors == 0
        and bare.errors == 0
        and answered
        and reg.edits == result.presses
        and result.bare_calls["answerCallbackQuery"] == result.presses
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="people typing at once")
    parser.add_argument(
        "--latency-people",
        type=int,
        default=None,
        help=f"people for the tap latency ({LATENCY_PEOPLE}; {QUICK_LATENCY_PEOPLE} with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PEOPLE} people, for a CI smoke run"
    )
    parser.add_argument(
        "--echo-builds-only",
        action="store_true",
        help="the bare echo builds its reply without sending it",
    )
    args = parser.parse_args()
    global ECHO_SENDS
    ECHO_SENDS = not args.echo_builds_only
    people_count = QUICK_PEOPLE if args.quick else args.people
    latency_people = args.latency_people or (QUICK_LATENCY_PEOPLE if args.quick else LATENCY_PEOPLE)
    # Log as production does (one INFO line per event), to a file, not the terminal.
    with tempfile.NamedTemporaryFile(suffix=".log") as log_file:
        logging.basicConfig(filename=log_file.name, level=logging.INFO)
        result = asyncio.run(run(people_count, args.concurrency))
        ok = report(result, people_count, args.concurrency)
        with tempfile.TemporaryDirectory() as folder:
            phones = asyncio.run(run_at_phones(Path(folder), latency_people, people_count))
        ok = report_at_phones(phones) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
