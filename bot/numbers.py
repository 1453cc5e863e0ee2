"""How numbers read in messages: amounts of money with thousands separators
and two decimals. Formatting only; what people may type is `bot.hazard_rules`."""

from __future__ import annotations

from decimal import Decimal


def money(amount: Decimal | str) -> str:
    """An amount as people read it in a message or on a card: `1,200.50`
    (the catalog adds 元 or CNY)."""
    return f"{Decimal(amount):,.2f}"
