"""The `frontline` command: demo, chat, roster and client imports, outbox.
Parses the command line, loads the settings, and hands over to the app; a bad
setting or input ends with one line and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import clients, documents, export, phones, roster, wecom_sync
from bot.app import App, StartError, desk_for, serve, telegram_settings, wecom_api
from bot.channels.console import CHANNEL, ConsoleChat, ConsoleTransport, read_lines
from bot.channels.telegram.channel import build_application
from bot.channels.wecom.api import WeComAPI, WeComError
from bot.checklists import ChecklistError
from bot.clock import iso
from bot.config import ConfigError, Settings, load_settings
from bot.i18n import t
from bot.model import Staff
from bot.store import clients as client_store
from bot.store import copy as db_copy
from bot.store import duties, invites, outbox, people
from bot.store import roster as roster_store
from bot.store.db import Database
from bot.store.dialect import is_postgresql
from bot.web.app import serve_desk
from schedules import duties as duty_book
from schedules import shifts as shift_plan

DEMO_DB = Path("frontline-demo.db")
DEMO_PERSON = "13800000003"
DB_HELP = "database file, or a postgresql:// URL (default FRONTLINE_DB)"


def db_target(value: str) -> Path | str:
    """A --db argument: a libpq URL as written (a Path would fold its '//'), else a file."""
    return value if is_postgresql(value) else Path(value)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(**({"db": args.db} if getattr(args, "db", None) else {}))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=max(logging.getLevelName(settings.log_level), logging.WARNING)
        if args.command in ("chat", "demo")
        else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and Telegram's URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command in ("chat", "demo"):
        # The console's only retry is a reply kept for the next chat because the
        # output's reader left (`… | head`): nothing to warn the person about.
        logging.getLogger("bot.sender").setLevel(logging.ERROR)
    try:
        return int(asyncio.run(args.run(settings, args)))
    except ChecklistError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:  # `frontline … | head` before the chat began
        _discard_stdout()
        return 0
    except (sqlite3.Error, OSError) as exc:  # the database cannot be opened or created
        print(
            t(settings.language, "cli.database_error", path=settings.db, error=exc), file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontline", description="Frontline safety bot")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="seed a demo organisation and chat as a demo worker")
    demo.add_argument("--db", type=Path, help=f"demo database (default {DEMO_DB}, recreated)")
    demo.add_argument("--as", dest="who", default=DEMO_PERSON, help="phone, employee no or name")
    demo.set_defaults(run=_demo)

    chat = commands.add_parser("chat", help="chat with the bot in this terminal")
    chat.add_argument("--as", dest="who", required=True, help="phone, employee no or name")
    chat.add_argument("--db", type=db_target, help=DB_HELP)
    chat.set_defaults(run=_chat)

    roster_cmd = commands.add_parser("roster", help="the staff roster")
    roster_sub = roster_cmd.add_subparsers(dest="roster_command", required=True)
    importer = roster_sub.add_parser("import", help="import staff from CSV or XLSX")
    importer.add_argument("file", type=Path)
    importer.add_argument(
        "--deactivate-missing", action="store_true", help="deactivate people absent from the file"
    )
    importer.add_argument("--db", type=db_target, help=DB_HELP)
    importer.set_defaults(run=_roster_import)
    sync = roster_sub.add_parser("sync-wecom", help="update units and staff from WeCom's directory")
    sync.add_argument("--dry-run", action="store_true", help="report the changes, write nothing")
    sync.add_argument("--db", type=db_target, help=DB_HELP)
    sync.set_defaults(run=_roster_sync_wecom)

    clients_cmd = commands.add_parser("clients", help="the elder-care client list")
    clients_sub = clients_cmd.add_subparsers(dest="clients_command", required=True)
    client_import = clients_sub.add_parser("import", help="import clients from CSV or XLSX")
    client_import.add_argument("file", type=Path)
    client_import.add_argument(
        "--deactivate-missing", action="store_true", help="deactivate clients absent from the file"
    )
    client_import.add_argument("--db", type=db_target, help=DB_HELP)
    client_import.set_defaults(run=_clients_import)

    visits_cmd = commands.add_parser("visits", help="home-visit settings")
    visits_sub = visits_cmd.add_subparsers(dest="visits_command", required=True)
    tolerance = visits_sub.add_parser(
        "tolerance", help="how far from a client's home a check-in may be (its sub-units inherit)"
    )
    tolerance.add_argument("unit", help="unit path, e.g. 物业服务中心/长者服务中心")
    tolerance.add_argument("metres", help=f"{clients.MIN_TOLERANCE_M}-{clients.MAX_TOLERANCE_M}")
    tolerance.add_argument("--db", type=db_target, help=DB_HELP)
    tolerance.set_defaults(run=_visits_tolerance)

    run = commands.add_parser(
        "run",
        help="run the bot: every configured channel (Telegram, WeCom), the sender and reminders",
        description="Serve every configured channel (Telegram by long polling or webhook,"
        " WeCom callbacks), deliver the outbox and fire reminders, until SIGTERM or Ctrl-C."
        " One process per SQLite database: a second one refuses to start. On PostgreSQL"
        " several may run: each takes events, one at a time sends and fires reminders.",
    )
    run.add_argument("--db", type=db_target, help=DB_HELP)
    run.set_defaults(run=_run)

    desk_cmd = commands.add_parser(
        "web",
        help="serve the desk alone (FRONTLINE_WEB_URL, on FRONTLINE_WEB_LISTEN)",
        description="Serve the desk's pages in this process, beside a `frontline run`"
        " elsewhere that owns the channels, the sender and the reminders.",
    )
    desk_cmd.add_argument("--db", type=db_target, help=DB_HELP)
    desk_cmd.set_defaults(run=_web)

    invite = commands.add_parser("invite", help="print a one-time Telegram sign-in link")
    invite.add_argument("who", help="phone, employee no or name")
    invite.add_argument("--days", type=int, default=7, choices=range(1, 31), metavar="1-30")
    invite.add_argument("--db", type=db_target, help=DB_HELP)
    invite.set_defaults(run=_invite)

    unit = commands.add_parser(
        "calendar", help="set a unit's shifts and working days, or its time zone"
    )
    unit.add_argument("unit", help="unit path, e.g. 物业服务中心/保安部 (its sub-units inherit)")
    unit.add_argument("--shifts", help="shift start times, e.g. 08:00,20:00")
    unit.add_argument(
        "--every-day", action="store_true", help="works weekends and holidays (24/7 units)"
    )
    unit.add_argument("--nudge", type=int, help="minutes after shift start to nudge (30)")
    unit.add_argument("--digest", type=int, help="minutes after shift start to report (60)")
    unit.add_argument("--timezone", help="the unit's time zone, e.g. Europe/London")
    unit.add_argument("--db", type=db_target, help=DB_HELP)
    unit.set_defaults(run=_calendar)

    duty = commands.add_parser("duty", help="set a unit's cadence or owner for a duty")
    duty.add_argument("unit", help="unit path (its sub-units inherit the cadence)")
    duty.add_argument("duty", help="a duty id from schedules/duties.toml")
    duty.add_argument("--cadence", choices=("daily", "monthly", "quarterly", "yearly"))
    duty.add_argument("--owner", help="phone, employee no or name of the person who owns it")
    duty.add_argument("--clear", action="store_true", help="back to the data file's settings")
    duty.add_argument("--db", type=db_target, help=DB_HELP)
    duty.set_defaults(run=_duty)

    wecom = commands.add_parser("wecom", help="WeCom (企业微信) settings")
    wecom_sub = wecom.add_subparsers(dest="wecom_command", required=True)
    robot = wecom_sub.add_parser("robot", help="bind or remove a unit's alert group robot")
    robot.add_argument("unit", help="unit path (alerts of its sub-units reach the group too)")
    robot.add_argument("key", nargs="?", help="the group robot's webhook key (or webhook URL)")
    robot.add_argument("--by", help="who binds it; the group reads their language (default: admin)")
    robot.add_argument("--remove", action="store_true", help="unbind the unit's group robot")
    robot.add_argument("--db", type=db_target, help=DB_HELP)
    robot.set_defaults(run=_wecom_robot)

    out = commands.add_parser("export", help="write a register to an XLSX or CSV file")
    out.add_argument(
        "register",
        help="checklists, hazards, orders, incidents, drills, trainings, notices or visits",
    )
    out.add_argument("--from", dest="first", required=True, help="first local date, YYYY-MM-DD")
    out.add_argument("--to", dest="last", required=True, help="last local date, YYYY-MM-DD")
    out.add_argument("--unit", help="unit path: only its subtree (default: every unit)")
    out.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    out.add_argument(
        "--with-photos", action="store_true", help="XLSX: embed a thumbnail of each row's photo"
    )
    out.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="the file to write; a .zip holds the register and a photos/ folder it links to",
    )
    out.add_argument("--db", type=db_target, help=DB_HELP)
    out.set_defaults(run=_export)

    poster = commands.add_parser("poster", help="write an A4 sign-up poster with the bot's QR code")
    poster.add_argument("--unit", required=True, help="unit path, e.g. 物业服务中心/保安部")
    poster.add_argument(
        "--channel",
        choices=documents.POSTER_CHANNELS,
        help="how people join (default: wecom when WeCom is configured, else telegram)",
    )
    poster.add_argument(
        "--link",
        help="what the QR code opens (default: FRONTLINE_WECOM_JOIN_URL for WeCom,"
        " https://t.me/<the bot's username> for Telegram)",
    )
    poster.add_argument("-o", "--output", type=Path, required=True, help="the PDF to write")
    poster.add_argument("--db", type=db_target, help=DB_HELP)
    poster.set_defaults(run=_poster)

    database = commands.add_parser("db", help="the database itself")
    database_sub = database.add_subparsers(dest="db_command", required=True)
    copier = database_sub.add_parser(
        "copy", help="copy a SQLite database into an empty PostgreSQL database"
    )
    copier.add_argument("--from", dest="source", type=Path, required=True, help="SQLite file")
    copier.add_argument("--to", dest="target", required=True, help="postgresql:// URL")
    copier.set_defaults(run=_db_copy)

    box = commands.add_parser(
        "outbox", help="list what is waiting to be delivered and why; retry failed deliveries"
    )
    box.add_argument("--db", type=db_target, help=DB_HELP)
    box.set_defaults(run=_outbox)
    box_sub = box.add_subparsers(dest="outbox_command")
    retry = box_sub.add_parser("retry", help="deliver failed rows again (one by id, or all)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="the outbox id shown by `frontline outbox`")
    which.add_argument("--failed", action="store_true", help="every failed row")
    retry.add_argument("--db", type=db_target, help=DB_HELP)
    retry.set_defaults(run=_outbox_retry)
    return parser


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    path = args.db or DEMO_DB
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings = settings.model_copy(update={"db": Path(path)})
    app = await App.open(path, {}, language=settings.language, timezone=settings.timezone)
    try:
        demo_file = resources.files("bot.data").joinpath("demo_roster.csv")
        with resources.as_file(demo_file) as csv_path:
            result = await roster.import_roster_file(
                app.db,
                csv_path,
                deactivate_missing=False,
                default_language=settings.language,
                now=datetime.now(UTC),
            )
        demo_clients = resources.files("bot.data").joinpath("demo_clients.csv")
        with resources.as_file(demo_clients) as csv_path:
            await clients.import_clients_file(
                app.db, csv_path, deactivate_missing=False, now=datetime.now(UTC)
            )
        print(t(settings.language, "cli.demo_ready", path=path, people=result.created))
    finally:
        await app.close()
    return await _chat(settings, args)


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    transport = ConsoleTransport(sys.stdout)
    app = await App.open(
        settings.db,
        {CHANNEL: transport},
        language=settings.language,
        timezone=settings.timezone,
        web_url=settings.web_url,
    )
    try:
        staff = await _one_person(app, args.who, settings.language)
        if staff is None:
            return 2
        chat = ConsoleChat(
            app.db,
            app.engine,
            app.sender,
            transport,
            app.engine.clock,
            staff,
            settings.media_path,
            preparer=app.preparer,
        )
        if sys.stdin.isatty():
            print(t(staff.language, "cli.chat_help", name=staff.name))
        await chat.open()
        if not transport.closed:
            await read_lines(sys.stdin, chat.send, sys.stdout if sys.stdin.isatty() else None)
    finally:
        await app.close()
    if transport.closed:  # `frontline chat … | head`: the reader has what it wanted
        _discard_stdout()
    return 0


def _discard_stdout() -> None:
    """Nobody reads stdout any more: what is still buffered for it would fail
    again, with a traceback, as Python exits. It goes nowhere instead."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


async def _unit(app: App, path: str, language: str) -> int | None:
    """The unit at a path like 物业服务中心/保安部, or None (said on stderr)."""
    unit_id = await app.db.read(lambda conn: people.unit_id(conn, path.strip("/")))
    if unit_id is None:
        print(t(language, "cli.no_such_unit", unit=path), file=sys.stderr)
    return unit_id


async def _one_person(app: App, who: str, language: str) -> Staff | None:
    found = await app.db.read(lambda conn: people.find_staff(conn, who))
    active = [person for person in found if person.active]
    if not found:
        print(t(language, "cli.no_such_person", who=who), file=sys.stderr)
        return None
    if not active:
        print(t(language, "cli.person_inactive", who=who), file=sys.stderr)
        return None
    if len(active) > 1:
        names = ", ".join(
            f"{p.name} ({p.employee_no or phones.display(p.phone, p.phone_display)})"
            for p in active
        )
        print(t(language, "cli.ambiguous_person", who=who, names=names), file=sys.stderr)
        return None
    return active[0]


async def _roster_import(settings: Settings, args: argparse.Namespace) -> int:
    app = await App.open(settings.db, {}, language=settings.language, timezone=settings.timezone)
    try:
        result = await roster.import_roster_file(
            app.db,
            args.file,
            deactivate_missing=args.deactivate_missing,
            default_language=settings.language,
            now=datetime.now(UTC),
        )
    except roster.RosterError as exc:
        print(t(settings.language, "cli.roster_rejected", count=len(exc.problems)), file=sys.stderr)
        for problem in exc.problems:
            print(roster.describe(problem, settings.language), file=sys.stderr)
        return 2
    finally:
        await app.close()
    print(
        t(
            settings.language,
            "roster.imported",
            created=result.created,
            updated=result.updated,
            deactivated=result.deactivated,
            units=result.units_created,
        )
    )
    return 0


async def _roster_sync_wecom(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    corp_id, agent_id, secret = (
        settings.wecom_corp_id,
        settings.wecom_agent_id,
        settings.wecom_secret,
    )
    if corp_id is None or agent_id is None or secret is None:
        print(t(lang, "wecom.not_configured"), file=sys.stderr)
        return 2
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        async with WeComAPI(
            settings.wecom_api_url, corp_id, secret.get_secret_value(), agent_id
        ) as api:
            plan = await wecom_sync.sync_directory(
                app.db, api, default_language=lang, now=datetime.now(UTC), dry_run=args.dry_run
            )
    except WeComError as exc:
        print(t(lang, "wecom.api_failed", error=exc), file=sys.stderr)
        return 2
    except wecom_sync.SyncError as exc:
        print(t(lang, exc.key), file=sys.stderr)
        return 2
    finally:
        await app.close()
    print("\n".join(wecom_sync.report(plan, lang, dry_run=args.dry_run)))
    return 0


async def _wecom_robot(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    if (args.key is None) != args.remove:
        print(t(lang, "wecom.robot_key_or_remove"), file=sys.stderr)
        return 2
    key = wecom_sync.robot_key(args.key) if args.key is not None else None
    if args.key is not None and key is None:
        print(t(lang, "wecom.robot_bad_key", value=args.key), file=sys.stderr)
        return 2
    channel = wecom_sync.ROBOT_CHANNEL
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        unit_id = await _unit(app, args.unit, lang)
        if unit_id is None:
            return 2
        if key is None:
            removed = await app.db.transaction(
                lambda conn: roster_store.remove_groups(conn, channel, unit_id)
            )
            print(t(lang, "wecom.robot_removed" if removed else "wecom.robot_none", unit=args.unit))
            return 0
        if args.by is not None:
            binder = await _one_person(app, args.by, lang)
            if binder is None:
                return 2
        else:
            admins = await app.db.read(people.admins)
            if not admins:
                print(t(lang, "wecom.no_admin"), file=sys.stderr)
                return 2
            binder = admins[0]
        now = iso(datetime.now(UTC))

        def bind(conn: sqlite3.Connection) -> None:
            # One robot per unit: a new key replaces the old one.
            roster_store.remove_groups(conn, channel, unit_id)
            people.bind_group(conn, channel, key, unit_id, binder.id, now)

        await app.db.transaction(bind)
    finally:
        await app.close()
    print(t(lang, "wecom.robot_bound", unit=args.unit, name=binder.name))
    return 0


async def _clients_import(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        result = await clients.import_clients_file(
            app.db, args.file, deactivate_missing=args.deactivate_missing, now=datetime.now(UTC)
        )
    except clients.ClientsError as exc:
        print(t(lang, "clients.rejected", count=len(exc.problems)), file=sys.stderr)
        for problem in exc.problems:
            print(clients.describe(problem, lang), file=sys.stderr)
        return 2
    finally:
        await app.close()
    print(
        t(
            lang,
            "clients.imported",
            created=result.created,
            updated=result.updated,
            deactivated=result.deactivated,
        )
    )
    return 0


async def _visits_tolerance(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    low, high = clients.MIN_TOLERANCE_M, clients.MAX_TOLERANCE_M
    metres = int(args.metres) if args.metres.strip().isdecimal() else None
    if metres is None or not low <= metres <= high:
        print(
            t(lang, "clients.tolerance_invalid", metres=args.metres, min=low, max=high),
            file=sys.stderr,
        )
        return 2
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        unit_id = await _unit(app, args.unit, lang)
        if unit_id is None:
            return 2
        now = iso(datetime.now(UTC))
        await app.db.transaction(
            lambda conn: client_store.set_tolerance(conn, unit_id, metres, now)
        )
    finally:
        await app.close()
    print(t(lang, "clients.tolerance_set", unit=args.unit, metres=metres))
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.telegram_token is None and not settings.wecom_enabled:
        print(t(settings.language, "cli.no_token"), file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(settings, stop)
    except StartError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


async def _web(settings: Settings, args: argparse.Namespace) -> int:
    if settings.web_url is None:
        print(t(settings.language, "web.not_configured"), file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # The printable orders and incident records read their photos from here
    # (App.open sets it for `frontline run`; without it every PDF failed).
    documents.configure(settings.media_path)
    db = await Database.open(settings.db)
    try:
        async with contextlib.AsyncExitStack() as stack:
            wecom = (
                await stack.enter_async_context(wecom_api(settings))
                if settings.wecom_enabled
                else None
            )
            the_desk = await stack.enter_async_context(desk_for(db, settings, wecom=wecom))
            await serve_desk(the_desk, settings.web_listen, stop)
    finally:
        await db.close()
    return 0


async def _invite(settings: Settings, args: argparse.Namespace) -> int:
    telegram = telegram_settings(settings)
    if telegram is None:
        print(t(settings.language, "cli.no_token"), file=sys.stderr)
        return 2
    app = await App.open(settings.db, {}, language=settings.language, timezone=settings.timezone)
    try:
        staff = await _one_person(app, args.who, settings.language)
        if staff is None:
            return 2
        async with build_application(telegram).bot as bot:
            username = bot.username
        code = secrets.token_urlsafe(16)
        now = datetime.now(UTC)
        expires = now + timedelta(days=args.days)
        await app.db.transaction(
            lambda conn: invites.create(conn, code, staff.id, iso(now), iso(expires))
        )
    finally:
        await app.close()
    print(f"https://t.me/{username}?start={code}")
    print(t(settings.language, "cli.invite_valid", name=staff.name, days=args.days))
    return 0


async def _poster(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        unit_id = await _unit(app, args.unit, lang)
        if unit_id is None:
            return 2
        unit = await app.db.read(lambda conn: people.unit_path(conn, unit_id))
    finally:
        await app.close()
    # A deployment on WeCom (mainland China, where Telegram does not reach) prints its join QR.
    wecom = settings.wecom_enabled or settings.wecom_join_url is not None
    channel = args.channel or ("wecom" if wecom else "telegram")
    if channel == "wecom":
        link = args.link or settings.wecom_join_url
    else:
        link = args.link or await _bot_link(settings)
    if not link:
        missing = (
            "documents.poster_no_wecom_link" if channel == "wecom" else "documents.poster_no_link"
        )
        print(t(lang, missing), file=sys.stderr)
        return 2
    try:
        args.output.write_bytes(documents.poster(unit, link, channel))
    except OSError as exc:
        print(t(lang, "documents.write_error", path=args.output, error=exc), file=sys.stderr)
        return 2
    print(t(lang, "documents.poster_written", path=args.output))
    return 0


async def _bot_link(settings: Settings) -> str | None:
    """The bot's own Telegram link: from the settings, else asked of Telegram."""
    username = settings.telegram_username
    telegram = telegram_settings(settings)
    if username is None and telegram is not None:
        async with build_application(telegram).bot as bot:
            username = bot.username
    return f"https://t.me/{username.lstrip('@')}" if username else None


def _clock_time(text: str) -> time:
    hour, minute = text.strip().split(":")
    return time(int(hour), int(minute))


async def _calendar(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    if args.shifts is None and args.timezone is None:
        print(t(lang, "cli.calendar_nothing_to_set"), file=sys.stderr)
        return 2
    if args.shifts is None and (
        args.every_day or args.nudge is not None or args.digest is not None
    ):
        print(t(lang, "cli.calendar_needs_shifts"), file=sys.stderr)
        return 2
    shift_settings = None
    if args.shifts is not None:
        try:
            starts = sorted({_clock_time(part) for part in args.shifts.split(",")})
        except ValueError:
            print(t(lang, "cli.bad_shifts", shifts=args.shifts), file=sys.stderr)
            return 2
        nudge = 30 if args.nudge is None else args.nudge
        digest = 60 if args.digest is None else args.digest
        if not starts or not 0 < nudge < digest <= 24 * 60:
            print(t(lang, "cli.bad_offsets"), file=sys.stderr)
            return 2
        shift_settings = shift_plan.ShiftSettings(tuple(starts), args.every_day, nudge, digest)
    if args.timezone is not None:
        try:
            ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            print(t(lang, "cli.bad_timezone", timezone=args.timezone), file=sys.stderr)
            return 2
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        unit_id = await _unit(app, args.unit, lang)
        if unit_id is None:
            return 2
        now = datetime.now(UTC)
        # The settings and the re-planned reminders commit together.
        await app.db.transaction(
            lambda conn: shift_plan.change_unit(
                conn,
                unit_id,
                settings=shift_settings,
                timezone=args.timezone,
                now=now,
                default_timezone=settings.timezone,
            )
        )
    finally:
        await app.close()
    if shift_settings is not None:
        shown = ", ".join(s.strftime("%H:%M") for s in shift_settings.starts)
        print(t(lang, "cli.calendar_set", unit=args.unit, shifts=shown))
    if args.timezone is not None:
        print(t(lang, "cli.timezone_set", unit=args.unit, timezone=args.timezone))
    return 0


async def _duty(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    book = duty_book.load()
    if args.duty not in book:
        print(t(lang, "cli.no_such_duty", duty=args.duty, ids=", ".join(book)), file=sys.stderr)
        return 2
    if not args.clear and args.cadence is None and args.owner is None:
        print(t(lang, "cli.duty_nothing_to_set"), file=sys.stderr)
        return 2
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        unit_id = await _unit(app, args.unit, lang)
        if unit_id is None:
            return 2
        owner = await _one_person(app, args.owner, lang) if args.owner else None
        if args.owner and owner is None:
            return 2
        now = iso(datetime.now(UTC))
        await app.db.transaction(
            lambda conn: duties.set_setting(
                conn,
                unit_id,
                args.duty,
                cadence=None if args.clear else args.cadence,
                owner_id=None if args.clear or owner is None else owner.id,
                now=now,
            )
        )
    finally:
        await app.close()
    print(t(lang, "cli.duty_set", duty=book[args.duty].title.get(lang), unit=args.unit))
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    register = export.REGISTERS.get(args.register)
    if register is None:
        names = ", ".join(export.REGISTERS)
        print(t(lang, "export.unknown_register", name=args.register, names=names), file=sys.stderr)
        return 2
    dates = []
    for text in (args.first, args.last):
        try:
            dates.append(date.fromisoformat(text))
        except ValueError:
            print(t(lang, "export.bad_date", value=text), file=sys.stderr)
            return 2
    if dates[1] < dates[0]:
        print(t(lang, "export.to_before_from", to=args.last, start=args.first), file=sys.stderr)
        return 2
    if args.with_photos and args.format != "xlsx":
        print(t(lang, "export.photos_need_xlsx"), file=sys.stderr)
        return 2
    app = await App.open(
        settings.db, {}, language=lang, timezone=settings.timezone, media_dir=settings.media_path
    )
    try:
        unit_id = await _unit(app, args.unit, lang) if args.unit else None
        if args.unit and unit_id is None:
            return 2
        now = datetime.now(UTC)

        def write(conn: sqlite3.Connection) -> int:
            source = export.Source(
                conn=conn,
                language=lang,
                period=export.Period(dates[0], dates[1]),
                root_unit=unit_id,
                default_timezone=settings.timezone,
                media_dir=settings.media_path,
                now=now,
            )
            # A .zip carries the photos along, linked relatively.
            writer = export.export_zip if args.output.suffix.lower() == ".zip" else export.export
            return writer(source, register, args.output, args.format, with_photos=args.with_photos)

        rows = await app.db.read(write)
    finally:
        await app.close()
    title = t(lang, f"export.register_{register.name}")
    print(t(lang, "export.written", register=title, rows=rows, path=args.output))
    return 0


async def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    app = await App.open(settings.db, {}, language=settings.language, timezone=settings.timezone)
    try:
        rows = await app.db.read(outbox.undelivered)
    finally:
        await app.close()
    lang = settings.language
    if not rows:
        print(t(lang, "cli.outbox_empty"))
        return 0
    print(t(lang, "cli.outbox_header"))
    now = iso(datetime.now(UTC))
    for row in rows:
        first_line = row["text"].splitlines()[0] if row["text"] else ""
        print(
            t(
                lang,
                "cli.outbox_row",
                id=row["id"],
                status=t(lang, f"cli.status_{row['status']}"),
                recipient=row["recipient"] or "-",
                channel=row["channel"] or t(lang, "cli.no_channel"),
                attempts=row["attempts"],
                created=row["created_at"][:16].replace("T", " "),
                error=_waiting_because(lang, row, now),
                text=first_line[:60],
            )
        )
    return 0


def _waiting_because(lang: str, row: sqlite3.Row, now: str) -> str:
    """Why a row has not gone yet, in the operator's words."""
    if row["status"] != "pending":
        return str(row["last_error"] or "")
    if row["channel"] is None:
        return t(lang, "cli.why_no_channel")
    if row["next_attempt_at"] > now:
        at = row["next_attempt_at"][:19].replace("T", " ")
        return t(lang, "cli.why_retry", at=at, error=row["last_error"] or "")
    return t(lang, "cli.why_queued")


async def _outbox_retry(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language
    app = await App.open(settings.db, {}, language=lang, timezone=settings.timezone)
    try:
        now = iso(datetime.now(UTC))
        count = await app.db.transaction(
            lambda conn: outbox.redrive(conn, now, None if args.failed else args.id)
        )
    finally:
        await app.close()
    if not count:
        print(t(lang, "cli.retry_none" if args.failed else "cli.retry_not_failed", id=args.id))
        return 0 if args.failed else 2
    # A running `frontline run` looks at due rows at least once a second.
    print(t(lang, "cli.retry_queued", count=count))
    return 0


async def _db_copy(settings: Settings, args: argparse.Namespace) -> int:
    lang = settings.language

    def shown(copied: db_copy.Copied) -> None:
        print(t(lang, "cli.copy_table", table=copied.table, rows=copied.rows))

    try:
        done = await asyncio.to_thread(db_copy.copy, args.source, args.target, progress=shown)
    except db_copy.CopyRefused as refused:
        print(t(lang, refused.key, **refused.params), file=sys.stderr)
        return 2
    print(t(lang, "cli.copy_done", tables=len(done), rows=sum(c.rows for c in done)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
