"""The desk's secrets: one-time link tokens, session ids and the CSRF token
derived from a session. Random from `secrets`, stored only as SHA-256 hashes.
Pure functions, no I/O; `/web` in chat and the desk's login both use them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

# A sign-in link opens the desk once, within ten minutes of being sent.
LINK_VALID = timedelta(minutes=10)
# A session ends after twelve hours without a request.
SESSION_IDLE = timedelta(hours=12)
# last_seen is written at most this often (not on every page).
SEEN_PRECISION = timedelta(minutes=5)


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a token or a session id."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The token every form of a session carries: only someone holding the
    session's cookie can know it, and it needs no storage."""
    return hmac.new(session_id.encode(), b"frontline-desk-csrf", hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
