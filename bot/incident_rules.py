"""The incident register's rules (REGULATIONS §3) as pure functions: the kinds
and which of them alert the whole chain, what people may type (the time it
happened, how many were hurt, the length of a text), the 15-day report
deadline and its reminders, and who oversees an incident. No I/O."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.calendar import exact_moment
from bot.clock import end_of_day, local_date
from bot.model import Role, Staff, UserError

KINDS = (
    "near_miss",
    "injury",
    "serious_injury",
    "death",
    "fire",
    "property_damage",
    "other",
)
# A casualty or a fire goes at once to every supervisor up the tree and to the
# admins, not only to the unit's supervisors and the safety officers.
WIDE_ALERT = frozenset({"injury", "serious_injury", "death", "fire"})
# Kinds that mean someone was hurt: reported with nobody hurt, the kind is wrong.
CASUALTY = frozenset({"injury", "serious_injury", "death"})

INVESTIGATION = ("reported", "investigating", "concluded")

MAX_TEXT = 2000
MAX_REFERENCE = 100
MAX_HURT = 1000
MAX_PHOTOS = 5
# Older incidents are entered by the safety officer, not reported from a phone.
MAX_AGE = timedelta(days=30)
# The investigation report and the work-injury application are due this many
# days after the incident; people are reminded on these days, in the morning.
REPORT_DAYS = 15
REMINDER_DAYS = (7, 12, 14, 15)
REMIND_AT = time(9, 0)
# A corrective action's deadline is at most this far ahead.
MAX_ACTION_DAYS = 366


def alerts_whole_chain(kind: str) -> bool:
    return kind in WIDE_ALERT


def checked_text(text: str, limit: int = MAX_TEXT) -> str:
    """Free text as typed, refused when longer than `limit` characters."""
    if len(text) > limit:
        raise UserError("incident.too_long", limit=limit, length=len(text))
    return text


def parse_when(text: str, timezone: str, now: datetime) -> datetime:
    """When an incident happened, as typed in local time: `2026-11-27 08:30`,
    `11-27 8:30` (the most recent such day) or `08:30` (today). It must not
    be in the future nor more than 30 days ago."""
    cleaned = " ".join(unicodedata.normalize("NFKC", text).replace("/", "-").split())
    day_text, _, time_text = cleaned.rpartition(" ")
    today = now.astimezone(ZoneInfo(timezone)).date()
    try:
        hour, minute = (int(part) for part in time_text.split(":"))
        parts = [int(part) for part in day_text.split("-")] if day_text else []
    except ValueError:
        raise UserError("time.format", text=text[:40]) from None
    if len(parts) not in (0, 2, 3):
        raise UserError("time.format", text=text[:40])
    try:
        at = time(hour, minute)
        if not parts:
            day = today
        elif len(parts) == 2:
            day = date(today.year, parts[0], parts[1])
            if day > today:  # `12-30` typed in January: last December
                day = date(today.year - 1, parts[0], parts[1])
        else:
            day = date(parts[0], parts[1], parts[2])
    except (ValueError, OverflowError):  # 31 February, 25:00, hour 10**20
        raise UserError("time.no_such_date", text=text[:40]) from None
    moment = exact_moment(day, at, timezone)
    if moment > now:
        raise UserError("incident.when_future", text=text[:40])
    if moment < now - MAX_AGE:
        raise UserError("incident.when_too_old", text=text[:40], days=MAX_AGE.days)
    return moment


def parse_count(text: str, kind: str) -> int:
    """How many people were hurt: a whole number from 0 to 1000, and at least
    one for an incident whose kind says someone was."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned.isascii() or not cleaned.isdigit() or int(cleaned) > MAX_HURT:
        raise UserError("incident.bad_count", text=text.strip()[:20], limit=MAX_HURT)
    if int(cleaned) == 0 and kind in CASUALTY:
        raise UserError("incident.hurt_needed")
    return int(cleaned)


def parse_action_deadline(text: str, timezone: str, now: datetime) -> datetime:
    """A corrective action's deadline typed as a local date (`2026-12-10`):
    the end of that day, today at the earliest and a year ahead at most."""
    cleaned = unicodedata.normalize("NFKC", text).strip().replace("/", "-")
    try:
        day = date.fromisoformat(cleaned)
    except ValueError:
        raise UserError("incident.bad_date", text=text.strip()[:40]) from None
    today = now.astimezone(ZoneInfo(timezone)).date()
    if day < today or day > today + timedelta(days=MAX_ACTION_DAYS):
        raise UserError("incident.date_out_of_range", text=cleaned[:40])
    return end_of_day(day, timezone)


def report_deadline(occurred: datetime, timezone: str) -> datetime:
    """The end of the 15th local day after the incident."""
    return end_of_day(local_date(occurred, timezone) + timedelta(days=REPORT_DAYS), timezone)


def reminder_moments(occurred: datetime, timezone: str) -> dict[int, datetime]:
    """Day number after the incident -> when that day's reminder goes (09:00 local)."""
    first = local_date(occurred, timezone)
    return {
        day: exact_moment(first + timedelta(days=day), REMIND_AT, timezone) for day in REMINDER_DAYS
    }


def oversees(actor: Staff, unit_chain: Sequence[int]) -> bool:
    """Whether `actor` may investigate and act on an incident of the unit
    whose chain (the unit, then each unit above it) is `unit_chain`: a
    supervisor of one of those units, a safety officer or an admin."""
    if not actor.active:
        return False
    if actor.has(Role.SAFETY_OFFICER, Role.ADMIN):
        return True
    return actor.has(Role.SUPERVISOR) and actor.unit_id in unit_chain


def may_see(actor: Staff, unit_chain: Sequence[int], reported_by: int) -> bool:
    """Whether `actor` may see an incident at all: its overseers and whoever
    reported it. Anyone else is answered as if it did not exist."""
    return actor.active and (actor.id == reported_by or oversees(actor, unit_chain))
