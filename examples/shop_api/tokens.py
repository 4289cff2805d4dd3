"""Signed bearer tokens: ``<user id>.<expiry>.<HMAC-SHA256 of both>``, with the stdlib only.

A token names the user and when it stops being valid (Unix seconds); the
signature, keyed with the service's secret, makes both unforgeable. Nothing
is stored: a token is valid until it expires (or the secret changes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_MAX_LENGTH = 200


def _signature(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(secret: bytes, user_id: int, expires: int) -> str:
    """A token for ``user_id`` valid until ``expires`` (Unix seconds)."""
    payload = f"{user_id}.{expires}"
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: bytes, token: str, now: float) -> int | None:
    """The user id ``token`` names if it is signed with ``secret`` and not expired at ``now``."""
    if len(token) > _MAX_LENGTH or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts[:2]):
        return None
    user_id, expires, signature = parts
    if not hmac.compare_digest(signature, _signature(secret, f"{user_id}.{expires}")):
        return None
    if int(expires) <= now:
        return None
    return int(user_id)
