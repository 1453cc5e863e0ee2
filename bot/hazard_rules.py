"""The hazard closed loop's rules (REGULATIONS §2) as pure functions: the
states and the actions between them, who may take each action, the funding
amount and deadline someone types, register numbers, and how alike two
reports are (repeat detection). No I/O: the store and the handlers apply them."""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

from bot.model import Role, Staff, UserError


class Status(enum.StrEnum):
    OPEN = "open"  # reported, waiting for the four fixes
    ASSIGNED = "assigned"  # four fixes set; the responsible person has it
    IN_PROGRESS = "in_progress"
    EXTENSION = "extension_requested"  # interim measures taken, a new deadline proposed
    SUBMITTED = "submitted"  # rectified, waiting for acceptance (验收)
    CLOSED = "closed"  # accepted and struck from the register (销号)


class Action(enum.StrEnum):
    ASSIGN = "assign"
    START = "start"
    SUBMIT = "submit"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REFUSE_EXTENSION = "refuse_extension"
    ACCEPT = "accept"
    SEND_BACK = "send_back"
    ORDER = "order"  # a formal rectification order (整改通知书); the state stays


HazardCategory = Literal[
    "fire",
    "electrical",
    "equipment",
    "housekeeping",
    "vehicles",
    "kitchen",
    "dormitory",
    "evacuation",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(HazardCategory)
SEVERITIES = ("general", "major")
MAX_PHOTOS = 5
# A hazard closed this recently and reported again: the rectification failed.
REOPEN_WINDOW_DAYS = 30


# Which action moves which state where.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.OPEN, Action.ASSIGN): Status.ASSIGNED,
    (Status.ASSIGNED, Action.ASSIGN): Status.ASSIGNED,  # reassign
    (Status.ASSIGNED, Action.START): Status.IN_PROGRESS,
    (Status.ASSIGNED, Action.SUBMIT): Status.SUBMITTED,
    (Status.IN_PROGRESS, Action.SUBMIT): Status.SUBMITTED,
    (Status.ASSIGNED, Action.REQUEST_EXTENSION): Status.EXTENSION,
    (Status.IN_PROGRESS, Action.REQUEST_EXTENSION): Status.EXTENSION,
    (Status.EXTENSION, Action.APPROVE_EXTENSION): Status.IN_PROGRESS,
    (Status.EXTENSION, Action.REFUSE_EXTENSION): Status.IN_PROGRESS,
    (Status.SUBMITTED, Action.ACCEPT): Status.CLOSED,
    (Status.SUBMITTED, Action.SEND_BACK): Status.IN_PROGRESS,
    (Status.ASSIGNED, Action.ORDER): Status.ASSIGNED,
    (Status.IN_PROGRESS, Action.ORDER): Status.IN_PROGRESS,
    (Status.EXTENSION, Action.ORDER): Status.EXTENSION,
}

# Actions a supervisor of the unit (or of a unit above it) or a safety officer takes.
OVERSIGHT = {
    Action.ASSIGN,
    Action.APPROVE_EXTENSION,
    Action.REFUSE_EXTENSION,
    Action.ACCEPT,
    Action.SEND_BACK,
    Action.ORDER,
}
# Actions only the responsible person takes.
RESPONSIBLE = {Action.START, Action.SUBMIT, Action.REQUEST_EXTENSION}


@dataclass(frozen=True, slots=True)
class HazardFacts:
    """What the rules need to know about a hazard."""

    status: Status
    responsible_id: int | None


def next_status(status: Status, action: Action) -> Status:
    """The state an action leads to; a refusal if it does not apply now
    (a stale button, or someone else acted first)."""
    moved = TRANSITIONS.get((status, action))
    if moved is None:
        raise UserError("hazard.not_now", status=status.value)
    return moved


def may(action: Action, actor: Staff, hazard: HazardFacts, oversees_unit: bool) -> bool:
    """Whether `actor` may take `action`. `oversees_unit`: the actor is a
    supervisor of the hazard's unit or a unit above it. Nobody oversees their
    own work (REGULATIONS §2): the responsible person does not accept it, send
    it back, decide on their own request for more time, or reassign it or
    order it with a deadline of their choosing."""
    if not actor.active:
        return False
    if action in RESPONSIBLE:
        return hazard.responsible_id == actor.id
    if action in OVERSIGHT:
        if hazard.responsible_id == actor.id:
            return False
        return (oversees_unit and actor.has(Role.SUPERVISOR)) or actor.has(Role.SAFETY_OFFICER)
    return False


def may_see(
    actor: Staff, reported_by: int, responsible_id: int | None, oversees_unit: bool
) -> bool:
    """Who may read a hazard (its card, photos and history): the reporter, the
    responsible person, a supervisor of its unit or of a unit above it
    (`oversees_unit`), and every safety officer and admin."""
    if not actor.active:
        return False
    return (
        actor.id in (reported_by, responsible_id)
        or actor.has(Role.SAFETY_OFFICER, Role.ADMIN)
        or (oversees_unit and actor.has(Role.SUPERVISOR))
    )


def deciders(
    chain_supervisors: Sequence[Staff], officers: Sequence[Staff], responsible_id: int | None
) -> list[Staff]:
    """Who is asked to accept a rectification or decide on more time: the
    supervisors of the nearest unit, from the hazard's up the tree, that has
    one other than the responsible person; else the safety officers. Never
    the responsible person. `chain_supervisors`: the active supervisors of the
    hazard's unit and of each unit above it, nearest first."""
    return nearest_others(chain_supervisors, officers, {responsible_id} - {None})


def nearest_others(
    chain_supervisors: Sequence[Staff], officers: Sequence[Staff], excluded: Collection[int | None]
) -> list[Staff]:
    """The active supervisors of the nearest unit up the tree that has one not
    `excluded`, else the active safety officers not excluded."""
    eligible = [s for s in chain_supervisors if s.active and s.id not in excluded]
    if eligible:
        return [s for s in eligible if s.unit_id == eligible[0].unit_id]
    return [s for s in officers if s.active and s.id not in excluded]


def assignable_units(
    hazard_units: Sequence[int], assigner: Staff, assigner_units: Sequence[int]
) -> list[int]:
    """The units whose members may be made responsible for a hazard, in the
    order they are offered: the hazard's unit and the units below it
    (`hazard_units`), then, for a supervisor assigning it, the units they
    head (`assigner_units`: their unit and the units below it)."""
    units = list(hazard_units)
    if assigner.has(Role.SUPERVISOR):
        units += [unit for unit in assigner_units if unit not in units]
    return units


def may_be_responsible(candidate: Staff, units: Collection[int]) -> bool:
    """Whether `candidate` may be made responsible, `units` being the
    hazard's `assignable_units` (whoever is elsewhere is refused, whatever a
    button claims)."""
    return candidate.unit_id in units


def check(action: Action, actor: Staff, hazard: HazardFacts, oversees_unit: bool) -> Status:
    """Both rules at once: the new state, or a UserError saying why not."""
    if not may(action, actor, hazard, oversees_unit):
        raise UserError("hazard.not_allowed")
    return next_status(hazard.status, action)


# -- what people type ---------------------------------------------------------------------
MAX_AMOUNT = Decimal("1000000000")
_PLAIN_NUMBER = re.compile(r"^\d+(\.\d{1,2})?$")
NO_FUNDING = {"0", "无", "不需要", "none", "no", "n/a", "-"}


def parse_amount(text: str) -> Decimal:
    """Funding in CNY: a plain number from 0 to 1,000,000,000 with at most two
    decimals (`1,200.50` and `¥300` are fine; `一万`, `1e9`, `-5` and
    `12.345` are refused with the reason)."""
    cleaned = unicodedata.normalize("NFKC", text).strip().lower()
    if cleaned in NO_FUNDING:
        return Decimal("0")
    cleaned = cleaned.removeprefix("¥").removeprefix("cny").removesuffix("元").strip()
    cleaned = cleaned.replace(",", "")
    if not _PLAIN_NUMBER.match(cleaned):
        raise UserError("hazard.amount_format", text=text.strip()[:30])
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise UserError("hazard.amount_format", text=text.strip()[:30]) from None
    if amount > MAX_AMOUNT:
        raise UserError("hazard.amount_too_large")
    return amount


def quick_deadlines(now: datetime, end_of_day: datetime) -> dict[str, datetime]:
    """The deadline choices offered as buttons: end of today, of tomorrow,
    in 3 days and in 7 days (each at the end of that local day)."""
    return {
        "today": end_of_day,
        "tomorrow": end_of_day + timedelta(days=1),
        "3d": end_of_day + timedelta(days=3),
        "7d": end_of_day + timedelta(days=7),
    }


def check_deadline(deadline: datetime, now: datetime) -> datetime:
    if deadline <= now:
        raise UserError("time.in_the_past", text=deadline.isoformat(timespec="minutes"))
    return deadline


# -- the register -------------------------------------------------------------------------
def hazard_number(year: int, sequence: int) -> str:
    return f"YH-{year}-{sequence:04d}"


def incident_number(year: int, sequence: int) -> str:
    return f"SG-{year}-{sequence:03d}"


# -- repeat detection ---------------------------------------------------------------------
NEARBY_METRES = 30.0
SIMILAR_ENOUGH = 0.35


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for 30 m)."""
    radius = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(a))


def _letters(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def similarity(a: str, b: str) -> float:
    """How alike two descriptions are, 0 to 1: the mean of the Jaccard
    similarities of their characters and of their character pairs. Works for
    Chinese, which has no spaces, and for English alike; pairs reward the same
    words, single characters the same things said in other words."""
    la, lb = _letters(a), _letters(b)
    pairs_a = {la[i : i + 2] for i in range(len(la) - 1)}
    pairs_b = {lb[i : i + 2] for i in range(len(lb) - 1)}
    return (_jaccard(set(la), set(lb)) + _jaccard(pairs_a, pairs_b)) / 2


@dataclass(frozen=True, slots=True)
class Report:
    category: str
    description: str
    place: str = ""
    lat: float | None = None
    lon: float | None = None


def is_repeat(new: Report, old: Report) -> bool:
    """Same category, same place (named place, or within 30 m), similar words."""
    if new.category != old.category:
        return False
    same_place = bool(new.place and new.place == old.place)
    if new.lat is not None and new.lon is not None and old.lat is not None and old.lon is not None:
        same_place = same_place or distance_m(new.lat, new.lon, old.lat, old.lon) <= NEARBY_METRES
    return same_place and similarity(new.description, old.description) >= SIMILAR_ENOUGH
