"""What we do to what people type before it is used: free text keeps every
printable character (any script, emoji, right-to-left marks) and drops control
characters; ids and numbers go through bot.numbers (ASCII digits within
bounds, or nothing), here as a step's button payload or a page."""

from __future__ import annotations

import unicodedata

from bot.model import Inbound, InboundKind, UserError
from bot.numbers import parse_number

_KEEP = {"\n", "\t"}


def clean_text(text: str) -> str:
    """Strip surrounding space and control characters (Cc), keeping newlines
    and tabs; format characters (Cf, e.g. RTL marks, ZWJ in emoji) stay."""
    return "".join(ch for ch in text if ch in _KEEP or unicodedata.category(ch) != "Cc").strip()


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` columns with "…" (East Asian wide characters take
    two), so that a line fits a phone's screen in any script."""
    if _columns(text) <= width:
        return text
    kept: list[str] = []
    used = 1  # the ellipsis
    for ch in text:
        used += _columns(ch)
        if used > width:
            break
        kept.append(ch)
    return "".join(kept).rstrip() + "…"


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def typed_text(inbound: Inbound, limit: int) -> str | None:
    """What a person typed, cleaned; None when they sent something else or
    nothing; a refusal (the person is asked again) above `limit` characters."""
    text = clean_text(inbound.text) if inbound.kind is InboundKind.TEXT else ""
    if not text:
        return None
    if len(text) > limit:
        raise UserError("check.too_long", limit=limit, length=len(text))
    return text


def button_number(inbound: Inbound, prefix: str) -> int | None:
    """The number a button of the step carries after its prefix (`s12` -> 12),
    or None for anything else."""
    if inbound.kind is not InboundKind.ACTION or not inbound.text.startswith(prefix):
        return None
    return parse_number(inbound.text[len(prefix) :])


def page_index(args: str, last: int = 9_999) -> int:
    """The page a person asked for (`/hazards 2`), counted from 0; the first
    page for anything that is not a page number."""
    number = parse_number(args, low=1, high=last)
    return number - 1 if number else 0
