"""Fast checks of the Store's arguments, before anything reaches the database.

The hot paths (get, add_to_cart, checkout) take ids and counts; checking
those by hand costs a fraction of a microsecond, where a pydantic model per
call would cost a few. Richer inputs (a new user, a new product) go through
the pydantic schemas in :mod:`shopdb.schemas`. A refusal names the field and
the bound, never the value (which may be a megabyte of digits).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shopdb.errors import InvalidInput
from shopdb.limits import INT_MAX, count_problem
from shopdb.schemas import total


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
