"""What we do to free text before it is stored: keep every printable
character (any script, emoji, right-to-left marks), drop control characters."""

from __future__ import annotations

import unicodedata

from bot.model import Inbound, InboundKind, UserError

_KEEP = {"\n", "\t"}


def clean_text(text: str) -> str:
    """Strip surrounding space and control characters (Cc), keeping newlines
    and tabs; format characters (Cf, e.g. RTL marks, ZWJ in emoji) stay."""
    return "".join(ch for ch in text if ch in _KEEP or unicodedata.category(ch) != "Cc").strip()


def typed_text(inbound: Inbound, limit: int) -> str | None:
    """What a person typed, cleaned; None when they sent something else or
    nothing; a refusal (the person is asked again) above `limit` characters."""
    text = clean_text(inbound.text) if inbound.kind is InboundKind.TEXT else ""
    if not text:
        return None
    if len(text) > limit:
        raise UserError("check.too_long", limit=limit, length=len(text))
    return text
