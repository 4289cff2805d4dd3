"""Fast checks of the Store's arguments, before anything reaches the database.

The hot paths (get, add_to_cart, checkout) take ids and counts; checking
those by hand costs a fraction of a microsecond, where a pydantic model per
call would cost a few. Richer inputs (a new user, a new product) go through
the pydantic schemas in :mod:`shopdb.schemas`. A refusal names the field and
the bound, never the value (which may be a megabyte of digits).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import Decimal
from typing import Any

from shopdb.errors import InvalidInput
from shopdb.limits import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    INT_MAX,
    SEARCH_CURSOR_MAX,
    count_problem,
)
from shopdb.schemas import total

_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]+")
#: The version of a list's cursor (the first member of its JSON).
LIST_CURSOR_VERSION = 1


def ident(value: object, field: str) -> int:
    """An id: an int (not a bool) from 1 to 2**31 - 1."""
    if type(value) is not int or not 1 <= value <= INT_MAX:
        raise InvalidInput(field, f"must be an integer id from 1 to {INT_MAX}")
    return value


def integer(value: object, field: str, low: int, high: int = INT_MAX) -> int:
    """An int (not a bool) within ``low..high``: :func:`shopdb.limits.count_problem`'s rule
    (a quantity's, a stock level's), in its words."""
    problem = count_problem(value, low, high)
    if problem is not None:
        raise InvalidInput(field, problem)
    return value  # type: ignore[return-value]  # an int: count_problem said so


def cart_address(cart_id: int | None, user_id: int | None, **more: Any) -> dict[str, Any]:
    """The parameters naming a cart: its id, or a user whose open cart is meant, or both
    (checked as ids), with ``more``; :class:`InvalidInput` if neither is given."""
    if cart_id is None and user_id is None:
        raise InvalidInput("cart_id", "is required (or user_id, for the user's open cart)")
    if cart_id is not None:
        ident(cart_id, "cart_id")
    if user_id is not None:
        ident(user_id, "user_id")
    return {"cart": cart_id, "user": user_id, **more}


def amount(value: object, field: str) -> Decimal:
    """An amount of money (a total): a Decimal, an int or a string like ``"19.99"``; no float."""
    try:
        return total(value)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


def refused_cursor() -> InvalidInput:
    """The one refusal of a cursor that is not this list's (never echoing it)."""
    return InvalidInput("cursor", "is not a valid cursor")


def cursor_text(payload: list[Any]) -> str:
    """A cursor: ``payload`` as compact JSON in unpadded URL-safe base64 (opaque to callers)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _no_constant(name: str) -> object:
    raise ValueError(name)  # NaN, Infinity: no cursor holds them


def cursor_payload(cursor: object) -> list[Any]:
    """The JSON list in a cursor :func:`cursor_text` made; :class:`InvalidInput`
    (``cursor``) for anything else: too long, not base64, not its one encoding, not a list."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= SEARCH_CURSOR_MAX:
        raise refused_cursor()
    if not _CURSOR_TEXT.fullmatch(cursor):
        raise refused_cursor()
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        decoded = json.loads(raw.decode(), parse_constant=_no_constant)
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        raise refused_cursor() from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != cursor:
        raise refused_cursor()  # not the one encoding of its bytes: not ours
    if not isinstance(decoded, list):
        raise refused_cursor()
    return decoded


def id_cursor(kind: str, last_id: int) -> str:
    """The cursor of the page after the row ``last_id`` of a list of ``kind`` (by id)."""
    return cursor_text([LIST_CURSOR_VERSION, kind, last_id])


def cursor_id(cursor: object, kind: str) -> int:
    """The id in a cursor :func:`id_cursor` made for ``kind``; :class:`InvalidInput`
    (``cursor``) for any other text, a search's cursor and another list's included."""
    decoded = cursor_payload(cursor)
    if len(decoded) != 3:  # version, kind, id
        raise refused_cursor()
    version, its_kind, last_id = decoded
    if type(version) is not int or version != LIST_CURSOR_VERSION or its_kind != kind:
        raise refused_cursor()
    if type(last_id) is not int or not 1 <= last_id <= INT_MAX:
        raise refused_cursor()
    return last_id


def keyset_start(
    bound: object, bound_field: str, low: int, cursor: object, kind: str
) -> int | None:
    """Where a page by id starts: ``bound`` (``after_id`` or ``before_id``, at least
    ``low``), or the id in ``cursor``; None for the first page. Both given is
    :class:`InvalidInput` (``cursor``)."""
    if cursor is None:
        return None if bound is None else integer(bound, bound_field, low)
    if bound is not None:
        raise InvalidInput("cursor", f"must not be given with {bound_field}")
    return cursor_id(cursor, kind)


_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def idempotency_key(value: object, field: str = "idempotency_key") -> str:
    """An idempotency key: a str of 1 to ``IDEMPOTENCY_KEY_MAX`` printable ASCII characters."""
    if type(value) is not str:
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or _KEY.fullmatch(value) is None:
        raise InvalidInput(
            field,
            f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters (space to ~)",
        )
    return value
