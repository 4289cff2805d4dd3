"""Bounds on stored values, shared by the input schemas and the database checks.

The database enforces each of these itself (migration ``harden_integrity``);
the schemas check them first so a caller gets the same message sooner.
"""

from __future__ import annotations

#: Longest username, in characters.
USERNAME_MAX = 64
#: Longest email address, in characters (RFC 5321's limit on a path).
EMAIL_MAX = 254
#: Longest product name, in characters.
PRODUCT_NAME_MAX = 200
#: Shortest and longest password accepted for hashing, in characters.
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
#: An email must look like one: something, an @, a domain with a dot; no spaces.
#: Written so that Python's ``re`` and PostgreSQL's ``~`` read it the same way.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: PostgreSQL INTEGER bounds (ids, counts, quantities).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

#: Decimal places of a price. Two, as in most currencies and in the spec's
#: examples; a shop in a three-decimal currency (KWD, BHD) changes this one
#: constant and the CHECK of migration 0006.
PRICE_SCALE = 2
#: Prices are below this (nine digits before the point).
PRICE_LIMIT = 1_000_000_000
#: A price as JSON text: digits, optionally a point and one or two decimals.
PRICE_PATTERN = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$"
#: An amount as shopdb writes it: plain notation, exactly two decimals.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]*)\.[0-9]{2}$"
#: What counts as white space in names, written so that Python's ``re`` and a
#: JSON Schema (ECMA-262) regex read the same class: ECMA-262's ``\s``.
SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
#: Order statuses, and which may follow which.
ORDER_STATUSES = ("placed", "paid", "shipped", "cancelled")

#: Catalog search (``Store.search_products``, migration 0011). The text search
#: configuration of ``products.search``: English stemming and stop words, so
#: "kettles" finds "kettle". One configuration for the whole catalog (a
#: shop in another language changes it here and in migration 0011's function,
#: and rebuilds the column); 'simple' would match only exact word forms.
SEARCH_CONFIG = "english"
#: The collation of the name sort and its index: byte order, the same on every
#: server whatever its locale (see docs/performance.md, "Catalog search").
NAME_COLLATION = "C"
#: Longest search text, in characters, and most words (runs of non-space) in it.
SEARCH_QUERY_MAX = 200
SEARCH_WORDS_MAX = 16
#: Products on a page of search results: at most, and when not said.
SEARCH_PAGE_MAX = 100
SEARCH_PAGE_DEFAULT = 20
#: Longest cursor accepted, in characters (a real one is far shorter).
SEARCH_CURSOR_MAX = 2048
