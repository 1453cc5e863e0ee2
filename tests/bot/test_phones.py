"""Phone numbers as people read them: a stored number is shown as the file
wrote it, or formatted the way it is dialled at home, never as +8621...."""

from __future__ import annotations

import pytest

from bot import phones


@pytest.mark.parametrize(
    ("e164", "written", "shown"),
    [
        ("+862163510001", "021-63510001", "021-63510001"),
        ("+862163510001", None, "021 6351 0001"),
        ("+8613800000001", None, "138 0000 0001"),
        ("+442079460958", None, "+44 20 7946 0958"),
        (None, None, ""),
    ],
)
def test_a_stored_phone_is_shown_as_written_or_formatted(
    e164: str | None, written: str | None, shown: str
) -> None:
    assert phones.display(e164, written) == shown


@pytest.mark.parametrize(
    ("raw", "staff", "client"),
    [
        ("138 0000 0001", "+8613800000001", "+8613800000001"),
        ("021-63510001", None, "+862163510001"),  # a landline: a client's, not a sign-in
        ("63510001", None, None),  # no area code
        ("1380000000l", None, None),  # a letter is not a keypad word here
        ("+44 20 7946 0958", "+442079460958", "+442079460958"),
    ],
)
def test_staff_phones_are_mobiles_client_phones_may_be_landlines(
    raw: str, staff: str | None, client: str | None
) -> None:
    assert (phones.mobile(raw), phones.any_line(raw)) == (staff, client)
