"""Plain-English reasons for validation errors: the one place that words them.

pydantic's messages are written for Python programmers ("Value should have
at least 8 items after validation, not 5"); an API's users read "must be at
least 8 characters". :func:`reason_for` turns one error of pydantic's (or
FastAPI's, which has the same shape) into that reason, from its ``type`` and
``ctx``, never from the offending value, which may be anything JSON cannot
carry (NaN, bytes, a lone surrogate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _chars(n: object) -> str:
    return f"{n} character" + ("" if n == 1 else "s")


def _short(ctx: Mapping[str, Any]) -> str:
    least = ctx.get("min_length")
    return "must not be empty" if least == 1 else f"must be at least {_chars(least)}"


_REASONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda ctx: "is required",
    "extra_forbidden": lambda ctx: "is not a known field",
    "string_type": lambda ctx: "must be a string",
    "string_unicode": lambda ctx: "must be valid Unicode text (it holds a lone surrogate)",
    "int_type": lambda ctx: "must be an integer",
    "int_parsing": lambda ctx: "must be an integer",
    "int_from_float": lambda ctx: "must be a whole number",
    "bool_type": lambda ctx: "must be true or false",
    "dict_type": lambda ctx: "must be an object",
    "model_type": lambda ctx: "must be an object",
    "model_attributes_type": lambda ctx: "must be an object",
    "list_type": lambda ctx: "must be a list",
    "json_invalid": lambda ctx: "is not valid JSON",
    "string_too_short": _short,
    "too_short": _short,
    "string_too_long": lambda ctx: f"must be at most {_chars(ctx.get('max_length'))}",
    "too_long": lambda ctx: f"must be at most {_chars(ctx.get('max_length'))}",
    "greater_than_equal": lambda ctx: f"must be at least {ctx.get('ge')}",
    "greater_than": lambda ctx: f"must be more than {ctx.get('gt')}",
    "less_than_equal": lambda ctx: f"must be at most {ctx.get('le')}",
    "less_than": lambda ctx: f"must be less than {ctx.get('lt')}",
    "string_pattern_mismatch": lambda ctx: "is not in the expected format",
    "decimal_type": lambda ctx: 'must be a number written as a string, such as "19.99"',
    "decimal_parsing": lambda ctx: "is not a number",
    "finite_number": lambda ctx: "must be a finite number",
    "decimal_max_places": lambda ctx: f"must have at most {ctx.get('decimal_places')} decimals",
    "datetime_type": lambda ctx: "must be a date and time",
    "literal_error": lambda ctx: f"must be one of {ctx.get('expected')}",
    "enum": lambda ctx: f"must be one of {ctx.get('expected')}",
}


def reason_for(error: Mapping[str, Any]) -> str:
    """The reason one validation error gives, in plain English, without the value."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        # Our own validators raise ValueError("must not be blank"): their
        # text is already the reason.
        return (
            str(error.get("msg", "is not valid"))
            .removeprefix("Value error, ")
            .removeprefix("Assertion failed, ")
        )
    wording = _REASONS.get(kind)
    if wording is not None:
        return wording(ctx)
    message = str(error.get("msg", "is not valid"))
    return message[:1].lower() + message[1:]
