"""What we do to free text before it is stored: keep every printable
character (any script, emoji, right-to-left marks), drop control characters."""

from __future__ import annotations

import unicodedata

_KEEP = {"\n", "\t"}


def clean_text(text: str) -> str:
    """Strip surrounding space and control characters (Cc), keeping newlines
    and tabs; format characters (Cf, e.g. RTL marks, ZWJ in emoji) stay."""
    return "".join(ch for ch in text if ch in _KEEP or unicodedata.category(ch) != "Cc").strip()
