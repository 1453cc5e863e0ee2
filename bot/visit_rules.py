"""Home-visit rules (REGULATIONS §5) as pure functions: where a check-in may
be, what counts as an exception, the readings a worker may type with their
sane and normal ranges, the kinds of anything unusual, what makes a check-out
doubtful, and what may become of a gift. No I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.hazard_rules import distance_m
from bot.model import UserError

# Beyond this a location is a phone's mistake (or someone else's city), not a
# visit with an exception: refused, so the worker shares it again.
PLAUSIBLE_M = 50_000.0

UNUSUAL_KINDS = ("fall", "illness", "not_home", "unsafe_home", "neglect", "other")
FAR_REASONS = ("client_elsewhere", "gps_poor", "other")
NO_LOCATION_REASONS = ("gps_poor", "no_phone", "other")
# A gift pressed on a worker (REGULATIONS §5 allows none): refused, or taken
# because it could not be refused and handed in to the centre.
GIFT_OUTCOMES = ("declined", "handed_in")


def check_coordinates(lat: object, lon: object) -> tuple[float, float]:
    """A shared location's latitude and longitude, or a refusal."""
    try:
        la, lo = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError("visit.bad_location") from None
    if not (-90.0 <= la <= 90.0 and -180.0 <= lo <= 180.0):
        raise UserError("visit.bad_location")
    return la, lo


@dataclass(frozen=True, slots=True)
class Place:
    """Where a worker checked in or out, judged against the client's home."""

    distance: float | None  # metres; None when the client has no coordinates
    far: bool


def judge(
    lat: float, lon: float, home_lat: float | None, home_lon: float | None, tolerance_m: float
) -> Place:
    """How far the worker is from the client's home; a refusal when it is so
    far the location cannot be right."""
    if home_lat is None or home_lon is None:
        return Place(None, False)
    distance = distance_m(lat, lon, home_lat, home_lon)
    if distance > PLAUSIBLE_M:
        raise UserError("visit.location_implausible", km=f"{distance / 1000:,.0f}")
    return Place(distance, distance > tolerance_m)


# -- readings ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float


RANGES = {
    "systolic": Range(60, 260),
    "diastolic": Range(30, 160),
    "pulse": Range(30, 220),
    "temperature": Range(34.0, 42.5),
    "glucose": Range(1.0, 35.0),
}
# The normal range of each reading, low included and high not: a sane
# reading outside it (blood pressure of 140/90 or more, a fever from 37.3 ℃)
# is confirmed by the worker and flagged to the supervisor.
NORMAL = {
    "systolic": Range(90, 140),
    "diastolic": Range(60, 90),
    "pulse": Range(50, 101),
    "temperature": Range(35.5, 37.3),
    "glucose": Range(3.9, 11.1),
}
_NUMBER = r"(\d{1,3}(?:\.\d{1,2})?)"
_PRESSURE = re.compile(r"(\d{2,3})\s*/\s*(\d{2,3})")
_LABELLED = {
    "pulse": re.compile(r"(?:心率|脉搏|脉|pulse|hr|bpm)\s*[:：]?\s*" + _NUMBER),
    "temperature": re.compile(r"(?:体温|温度|temp(?:erature)?)\s*[:：]?\s*" + _NUMBER),
    "glucose": re.compile(r"(?:血糖|glucose|sugar)\s*[:：]?\s*" + _NUMBER),
}


def parse_readings(text: str) -> dict[str, float]:
    """Readings typed as a worker would: `血压 130/85 心率 72 体温 36.5 血糖 6.1`
    or `BP 130/85 pulse 72`. Every value must be in its sane range and the
    upper blood pressure above the lower; otherwise a refusal naming it."""
    cleaned = unicodedata.normalize("NFKC", text).lower()
    found: dict[str, float] = {}
    pressure = _PRESSURE.search(cleaned)
    if pressure:
        found["systolic"], found["diastolic"] = float(pressure[1]), float(pressure[2])
        cleaned = cleaned[: pressure.start()] + " " + cleaned[pressure.end() :]
    for name, pattern in _LABELLED.items():
        match = pattern.search(cleaned)
        if match:
            found[name] = float(match[1])
    if not found:
        raise UserError("visit.readings_format", text=text.strip()[:40])
    for name, value in found.items():
        limits = RANGES[name]
        if not limits.low <= value <= limits.high:
            raise UserError(
                f"visit.reading_{name}",
                value=_plain(value),
                low=_plain(limits.low),
                high=_plain(limits.high),
            )
    if "systolic" in found and found["systolic"] <= found["diastolic"]:
        raise UserError(
            "visit.pressure_order",
            value=f"{_plain(found['systolic'])}/{_plain(found['diastolic'])}",
        )
    return found


def noteworthy(readings: dict[str, float]) -> tuple[str, ...]:
    """The readings outside their normal range, in the order of RANGES."""
    return tuple(
        name
        for name in RANGES
        if name in readings and not NORMAL[name].low <= readings[name] < NORMAL[name].high
    )


def _plain(value: float) -> str:
    return f"{value:g}"


def readings_text(readings: dict[str, float]) -> str:
    """Readings as a short line: `130/85 · 72 · 36.5℃ · 6.1`."""
    parts = []
    if "systolic" in readings:
        parts.append(f"{_plain(readings['systolic'])}/{_plain(readings['diastolic'])} mmHg")
    if "pulse" in readings:
        parts.append(f"♥{_plain(readings['pulse'])}")
    if "temperature" in readings:
        parts.append(f"{_plain(readings['temperature'])}℃")
    if "glucose" in readings:
        parts.append(f"{_plain(readings['glucose'])} mmol/L")
    return " · ".join(parts)


# A check-out with no service ticked, or this soon after check-in, is asked
# about first: it is more often a slip than a visit.
MIN_VISIT_MINUTES = 5


def checkout_doubts(services_done: int, minutes: float) -> tuple[str, ...]:
    """What makes checking out now look like a mistake: 'no_services' and
    'too_short' (under MIN_VISIT_MINUTES since check-in)."""
    doubts = []
    if services_done == 0:
        doubts.append("no_services")
    if minutes < MIN_VISIT_MINUTES:
        doubts.append("too_short")
    return tuple(doubts)


def duration_text(minutes: float) -> str:
    whole = max(0, round(minutes))
    return f"{whole // 60}:{whole % 60:02d}"
