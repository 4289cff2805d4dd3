"""Fast checks of the Store's arguments, before anything reaches the database.

The hot paths (get, add_to_cart, checkout) take ids and counts; checking
those by hand costs a fraction of a microsecond, where a pydantic model per
call would cost a few. Richer inputs (a new user, a new product) go through
the pydantic schemas in :mod:`shopdb.schemas`. A refusal names the field and
the bound, never the value (which may be a megabyte of digits).
"""

from __future__ import annotations

import re
from decimal import Decimal

from shopdb.errors import InvalidInput
from shopdb.limits import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, INT_MAX
from shopdb.schemas import total


def ident(value: object, field: str) -> int:
    """An id: an int (not a bool) from 1 to 2**31 - 1."""
    if type(value) is not int or not 1 <= value <= INT_MAX:
        raise InvalidInput(field, f"must be an integer id from 1 to {INT_MAX}")
    return value


def integer(value: object, field: str, low: int, high: int = INT_MAX) -> int:
    """An int (not a bool) within ``low..high``."""
    if type(value) is not int:
        raise InvalidInput(field, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInput(field, f"must be from {low} to {high}")
    return value


def amount(value: object, field: str) -> Decimal:
    """An amount of money (a total): a Decimal, an int or a string like ``"19.99"``; no float."""
    try:
        return total(value)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


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
