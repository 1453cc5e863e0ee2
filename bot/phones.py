"""Phone numbers, read and shown with `phonenumbers` (mainland China unless
the number says otherwise). Matching uses the E.164 form ('+8613800000001');
people see a number as the roster or client list wrote it, or, where that was
not kept, in the national format ('138 0000 0001', '021 6351 0001')."""

from __future__ import annotations

import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

REGION = "CN"
CHINA = 86
_MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
MAX_WRITTEN = 32


def written(raw: str) -> str:
    """A cell as it was written, tidied for showing: full-width characters typed
    with a Chinese IME made ASCII, spaces collapsed ('０２１－６３５１ ０００１'
    is '021-6351 0001')."""
    return " ".join(unicodedata.normalize("NFKC", raw).split())[:MAX_WRITTEN]


def _parse(raw: str) -> PhoneNumber | None:
    """A valid number, or None. Letters are refused rather than read as a
    keypad word, and a Chinese landline needs its area code ('63510001' is
    not a number anyone can dial from another city)."""
    text = written(raw)
    if not text or any(char.isalpha() for char in text):
        return None
    try:
        number = phonenumbers.parse(text, REGION, keep_raw_input=True)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    source = number.country_code_source
    if (
        number.country_code == CHINA
        and source == phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
        and phonenumbers.number_type(number) not in _MOBILE
        and not text.lstrip("(").startswith("0")
    ):
        return None
    return number


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def mobile(raw: str) -> str | None:
    """A staff member's phone in E.164: a mainland mobile (what sign-up by
    sharing one's number can match), or any valid number abroad; else None."""
    number = _parse(raw)
    if number is None:
        return None
    if number.country_code == CHINA and phonenumbers.number_type(number) not in _MOBILE:
        return None
    return _e164(number)


def any_line(raw: str) -> str | None:
    """A client's phone in E.164: a mobile, a landline with its area code
    (elders often have only that), or a number abroad; else None."""
    number = _parse(raw)
    return _e164(number) if number is not None else None


def display(e164: str | None, as_written: str | None = None) -> str:
    """A stored phone as people read it: as it was written if that was kept,
    else formatted (national for China, international otherwise); '' if none."""
    if as_written:
        return as_written
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, REGION)
    except NumberParseException:
        return e164
    style = (
        PhoneNumberFormat.NATIONAL
        if number.country_code == CHINA
        else PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)
