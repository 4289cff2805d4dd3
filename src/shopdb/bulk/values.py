"""Checks of one value against the rules the database enforces on products.

Each returns None for a valid value, else the reason, ready for a
:class:`~shopdb.errors.RowProblem`: the rule the value breaks, never the value
itself (a report of a million-row file must stay small, and a file's cells are
the caller's). CSV values are text; JSON values are whatever ``json.loads``
made of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from shopdb.limits import DESCRIPTION_MAX, INT_MAX, PRODUCT_NAME_MAX
from shopdb.names import BIDI_CONTROL, LINE_SEPARATOR, product_name_problem
from shopdb.names import description_problem as description_rule
from shopdb.schemas import price_problem as price_rule

# What PostgreSQL's numeric_in and int4in accept, ASCII only.
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*", re.ASCII)
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_NOT_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
#: For the quick checks of a whole chunk of CSV: a character refused in a name or a
#: description, or one that only they may hold (bidi controls, line separators in a
#: description), besides tab, LF and CR (which line ends and quoted values hold).
SUSPECT = re.compile(
    f"[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f{BIDI_CONTROL}{LINE_SEPARATOR}]"
)


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain the NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid UTF-8 text"
    return None


def name_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    problem = text_problem(value)
    if problem:
        return problem
    if len(value) > PRODUCT_NAME_MAX:
        return f"must be at most {PRODUCT_NAME_MAX} characters"
    # The Store's rule, which ck_products_name_text also enforces (shopdb.names).
    return product_name_problem(value)


def description_problem(value: str) -> str | None:
    if len(value) > DESCRIPTION_MAX:
        return f"must be at most {DESCRIPTION_MAX:,} characters"
    return text_problem(value) or description_rule(value)


def price_problem(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if not _NUMBER.fullmatch(value):
        if value.strip().lstrip("+-").lower() in _NOT_FINITE:
            return "must be a finite amount"
        return "is not a number"
    return amount_problem(Decimal(value.strip()))


def amount_problem(amount: Decimal) -> str | None:
    # The Store's rule, which the database's price checks also enforce (one place).
    return price_rule(amount)


def count_problem(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if not _INTEGER.fullmatch(value):
        return "must be a whole number"
    digits = value.strip().lstrip("+-").lstrip("0")
    if value.strip().startswith("-") and digits:
        return "must be at least 0"
    if len(digits) > len(str(INT_MAX)):
        return f"must be at most {INT_MAX}"
    return range_problem(int(digits or "0"))


def range_problem(count: int) -> str | None:
    if count < 0:
        return "must be at least 0"
    if count > INT_MAX:
        return f"must be at most {INT_MAX}"
    return None


def json_name_problem(value: object) -> str | None:
    """``name`` as a JSON value."""
    return name_problem(value) if isinstance(value, str) else "must be a string"


def json_description_problem(value: object) -> str | None:
    """``description`` as a JSON value: a string or null."""
    if value is None:
        return None
    return description_problem(value) if isinstance(value, str) else "must be a string or null"


def json_price_problem(value: object) -> str | None:
    """``price`` as a JSON value: a number or a numeric string."""
    if isinstance(value, str):
        return price_problem(value)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return 'must be a number or a string such as "19.99"'
    return amount_problem(Decimal(value))


def json_count_problem(value: object) -> str | None:
    """``inventory_count`` as a JSON value: an integer, never a string."""
    if isinstance(value, str):
        return "must be a JSON integer, not a string"
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    return range_problem(value)


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
