"""Numbers people type, buttons carry and messages show: the one place text
becomes an int (ids, pages, counts, a choice's number), for handlers and
channels alike, and how amounts of money read. No I/O here."""

from __future__ import annotations

from decimal import Decimal

# The largest id a database row can have (SQLite's INTEGER is 64-bit signed).
MAX_ID = 2**63 - 1


def parse_number(text: str, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """The number in `text` (surrounding space ignored) from `low` to `high`,
    or None. ASCII digits only: `str.isdigit` also takes '²' (which `int`
    refuses) and other scripts' digits, and an unbounded number overflows the
    database's integers, so no lookup ever gets either."""
    text = text.strip()
    if not text or len(text) > len(str(high)) or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if low <= number <= high else None


def money(amount: Decimal | str) -> str:
    """An amount as people read it in a message or on a card: `1,200.50`
    (the catalog adds 元 or CNY)."""
    return f"{Decimal(amount):,.2f}"
