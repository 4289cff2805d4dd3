"""Checks of one value of an imported product: the rules of :mod:`shopdb.limits`.

Each returns None for a valid value, else the reason, ready for a
:class:`~shopdb.errors.RowProblem`: the rule the value breaks, never the value
itself (a report of a million-row file must stay small, and a file's cells are
the caller's). The rules are the API's (:mod:`shopdb.limits`), read from what a
file can hold: CSV values are text, so a price cell is read as the API reads a
price string and a count cell must be digits; JSON values are whatever
``json.loads`` made of them, so a price must be a JSON string, as the API asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from shopdb import limits
from shopdb.limits import BIDI_CONTROL, INT_MAX, LINE_SEPARATOR

# What PostgreSQL's int4in accepts, ASCII only.
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
#: For the quick checks of a whole chunk of CSV: a character refused in a name or a
#: description, or one that only they may hold (bidi controls, line separators in a
#: description), besides tab, LF and CR (which line ends and quoted values hold).
SUSPECT = re.compile(
    f"[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f{BIDI_CONTROL}{LINE_SEPARATOR}]"
)

#: A name, a description, a price string: as the API checks them.
name_problem = limits.name_problem
description_problem = limits.description_problem
price_problem = limits.price_text_problem


def count_problem(value: str) -> str | None:
    """A CSV cell of ``inventory_count``: an integer as PostgreSQL reads one, 0 to INT_MAX."""
    if not value.strip():
        return "must not be empty"
    if not _INTEGER.fullmatch(value):
        return "must be a whole number"
    digits = value.strip().lstrip("+-").lstrip("0")
    if value.strip().startswith("-") and digits:
        return "must be at least 0"
    if len(digits) > len(str(INT_MAX)):
        return f"must be at most {INT_MAX}"
    return limits.count_problem(int(digits or "0"))


def json_name_problem(value: object) -> str | None:
    """``name`` as a JSON value."""
    return limits.name_problem(value) if isinstance(value, str) else "must be a string"


def json_description_problem(value: object) -> str | None:
    """``description`` as a JSON value: a string or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "must be a string or null"
    return limits.description_problem(value)


def json_price_problem(value: object) -> str | None:
    """``price`` as a JSON value: a string such as ``"19.99"``, as the API asks; a JSON
    number (which ``json.loads`` here makes an int or a Decimal) is refused as it is there."""
    if isinstance(value, str):
        return limits.price_text_problem(value)
    return limits.PRICE_NOT_TEXT


def json_count_problem(value: object) -> str | None:
    """``inventory_count`` as a JSON value: an integer (``3.0`` is one, as JSON Schema
    and the API say), never a string or a boolean."""
    return limits.count_problem(json_whole(value))


def json_whole(value: object) -> object:
    """A JSON number without a fraction (``3.0``, ``1e2``: a Decimal here) as the int it is."""
    # (Not one past 19 digits: an int of 1e999999999 would take all memory; the API,
    # which reads it as an infinite float, refuses it as no integer too.)
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.adjusted() < 19
        and value == value.to_integral_value()
    ):
        return int(value)
    return value


CSV_CHECKS: dict[str, Callable[[str], str | None]] = {
    "name": name_problem,
    "description": description_problem,
    "price": price_problem,
    "inventory_count": count_problem,
}
JSON_CHECKS: dict[str, Callable[[object], str | None]] = {
    "name": json_name_problem,
    "description": json_description_problem,
    "price": json_price_problem,
    "inventory_count": json_count_problem,
}
