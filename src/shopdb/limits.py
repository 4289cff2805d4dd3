"""The rules on stored values: their bounds, and the one check of each.

The bounds are constants; each rule is a function that returns what is wrong
with a value (a reason, ready for :class:`~shopdb.errors.InvalidInput` or a
bulk import's report, never the value itself) or None. The input schemas
(:mod:`shopdb.schemas`), the Store, the bulk importer (:mod:`shopdb.bulk`) and
the database's CHECK constraints (:mod:`shopdb.schema`) all take them from
here, so they cannot disagree; ``tests/test_rules_table.py`` feeds one table
of values to all four. The database enforces each bound itself (migrations
``harden_integrity`` onwards); the Python checks say the same thing sooner.

What the database cannot see, Python alone enforces: how a price is spelled
(a JSON string matching :data:`PRICE_PATTERN`, never a JSON number) and that a
count is an integer and not a string or a boolean.

This module imports nothing from shopdb: everything else stands on it.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

#: Longest username, in characters.
USERNAME_MAX = 64
#: Longest email address, in characters (RFC 5321's limit on a path).
EMAIL_MAX = 254
#: Longest product name, in characters (also an order line's name, copied from it).
PRODUCT_NAME_MAX = 200
#: Longest product description, in characters: about four printed pages, far more than
#: any shop's product page shows (marketplaces cap theirs at 2,000 to 5,000), and small
#: enough that a page of :data:`PRODUCTS_PAGE_MAX` products stays a few MiB at worst.
DESCRIPTION_MAX = 10_000
#: Longest stored password hash, in characters. An argon2id hash in its PHC string form
#: is about 100; the room left is for stronger parameters, never for arbitrary text.
PASSWORD_HASH_MAX = 255
#: Shortest and longest password accepted for hashing, in characters.
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
#: Longest login (a username or an email), in characters.
LOGIN_MAX = max(USERNAME_MAX, EMAIL_MAX)
#: An email must look like one: something, an @, a domain with a dot; no spaces.
#: Written so that Python's ``re`` and PostgreSQL's ``~`` read it the same way.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: PostgreSQL INTEGER bounds (ids, counts, quantities).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
#: Most units of one product there may be, in stock and on open (placed or paid)
#: orders together (``inventory_count + units_ordered``). Cancelling an order moves its
#: units from the second to the first, so the sum never grows and a cancel can never
#: overflow the INTEGER column; a restock that would pass it is refused instead.
STOCK_MAX = INT_MAX

#: Most products one page of ``list_products`` may hold.
PRODUCTS_PAGE_MAX = 100
#: Most orders one page of ``list_orders`` may hold.
ORDERS_PAGE_MAX = 100
#: Most distinct products one cart may hold: a cart view, its checkout's row locks and
#: the order it becomes stay small. A shop selling in bulk raises the quantity, not this.
CART_LINES_MAX = 100
#: Most problems one :class:`~shopdb.errors.InvalidInput` lists (it counts the rest).
PROBLEMS_MAX = 20

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
#: A total given to shopdb (checkout's ``expected_total``): like a price, without its
#: bound (a cart may hold many), up to 18 digits before the point.
TOTAL_PATTERN = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,2})?$"
#: What counts as white space in names, written so that Python's ``re`` and a
#: JSON Schema (ECMA-262) regex read the same class: ECMA-262's ``\s``.
SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
#: An idempotency key (checkout's ``idempotency_key``, the ``Idempotency-Key`` header):
#: 1 to 255 printable ASCII characters (space to ``~``), as Stripe's keys; a UUID
#: fits with room to spare. Migration 0012's CHECK holds the database to the same.
IDEMPOTENCY_KEY_MAX = 255
#: The characters of an idempotency key, written so that Python's ``re``, PostgreSQL's
#: ``~`` and a JSON Schema (ECMA-262) regex read it the same way.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
#: An order's status (the type), and the statuses in the order an order goes through them
#: (cancelled aside): written once, here.
OrderStatus = Literal["placed", "paid", "shipped", "cancelled"]
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)

#: Logins tried per login (username or email, lower-cased) within the window before
#: further tries are refused without running argon2 (``TooManyAttempts``), and the
#: window in seconds. 10 per 15 minutes leaves a person who mistypes room for
#: several tries and a password manager's mix-up, and holds a guesser to 40 an
#: hour, 960 a day, per login: NIST SP 800-63B asks for at most 100 consecutive
#: failures, OWASP for a lockout or a growing delay. The database enforces them
#: (migration ``0009`` freezes these values in ``shopdb_login_begin``).
LOGIN_ATTEMPTS = 10
LOGIN_WINDOW = 15 * 60
#: What a user may be: a shopper, or staff who may change the catalog. New users are
#: customers (the first).
UserRole = Literal["customer", "staff"]
USER_ROLES: tuple[UserRole, ...] = get_args(UserRole)
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
#: Most matches of a search text that one search reads (and orders): the bound of
#: what a text query costs the server, whatever the words (a text matching a
#: quarter of a million-product catalog would otherwise rank them all, ~300 ms,
#: and two common words that never meet, sorted by price, would walk the whole
#: price index, ~3 s). A text matching more is filtered and ordered within its
#: newest this many matches (docs/performance.md, "Catalog search").
SEARCH_MATCHES_MAX = 10_000
#: Longest cursor accepted (a search's or a list's), in characters (a real one is far shorter).
SEARCH_CURSOR_MAX = 2048

#: Order statuses, as a CHECK's list: ``'placed', 'paid', 'shipped', 'cancelled'``.
ORDER_STATUSES_SQL = ", ".join(f"'{status}'" for status in ORDER_STATUSES)
#: User roles, as a CHECK's list: ``'customer', 'staff'``.
USER_ROLES_SQL = ", ".join(f"'{role}'" for role in USER_ROLES)

# --- Character classes -------------------------------------------------------------
# The insides of regex brackets, written with ``\\uXXXX`` escapes so that Python's
# ``re``, PostgreSQL's regular expressions and a JSON Schema pattern (ECMA-262) read
# them alike; the ``*_ASTRAL`` parts name code points above U+FFFF, which ECMA-262
# (without its ``u`` flag) cannot, and so are left out of the JSON Schemas only.
# (shopdb.names re-exports them, with the username rules built on them.)

#: C0 and C1 controls (general category Cc), NUL included.
CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
#: Controls again, without tab and newline: what a description may not hold.
CONTROL_BUT_TAB_NEWLINE = "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f"
#: Bidi embeddings, overrides and isolates: they reorder what follows them.
BIDI_CONTROL = "\\u202a-\\u202e\\u2066-\\u2069"
#: Line and paragraph separators: a line break by another name.
LINE_SEPARATOR = "\\u2028\\u2029"
#: Unicode's Default_Ignorable_Code_Point in the BMP: drawn as nothing (zero-width
#: spaces and joiners, bidi marks and controls, soft hyphen, variation selectors,
#: the Hangul fillers U+115F, U+1160, U+3164, U+FFA0).
INVISIBLE = (
    "\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f"
    "\\u202a-\\u202e\\u2060-\\u206f\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff0-\\ufff8"
)
#: Default_Ignorable_Code_Point above the BMP (tags, musical formatting, ...).
INVISIBLE_ASTRAL = "\\U0001bca0-\\U0001bca3\\U0001d173-\\U0001d17a\\U000e0000-\\U000e0fff"
#: Characters drawn blank that are not white space: BRAILLE PATTERN BLANK.
BLANK = "\\u2800"

#: What no email may hold (white space is refused by its shape already).
EMAIL_FORBIDDEN = CONTROL + INVISIBLE + BLANK + LINE_SEPARATOR
#: What no product name may hold.
NAME_FORBIDDEN = CONTROL + BIDI_CONTROL + LINE_SEPARATOR
#: What does not count as a visible character of a product name.
NAME_INVISIBLE = SPACE + INVISIBLE + BLANK
#: What no username may hold: PRECIS refuses these and more; the database checks these.
USERNAME_FORBIDDEN = "@" + CONTROL + SPACE + INVISIBLE + BLANK

#: The database's CHECKs (migration 0010), in PostgreSQL's regular expressions.
USERNAME_CHECK = f"username !~ '[{USERNAME_FORBIDDEN}{INVISIBLE_ASTRAL}]'"
EMAIL_CHECK = f"email !~ '[{EMAIL_FORBIDDEN}{INVISIBLE_ASTRAL}]'"
NAME_CHECK = f"name !~ '[{NAME_FORBIDDEN}]' AND name ~ '[^{NAME_INVISIBLE}{INVISIBLE_ASTRAL}]'"
DESCRIPTION_CHECK = f"description !~ '[{CONTROL_BUT_TAB_NEWLINE}]'"

_EMAIL_PART = f"[^@{SPACE}{EMAIL_FORBIDDEN}]+"
#: The shape of an email the input schemas accept (stricter than the database's
#: :data:`EMAIL_PATTERN`: no control or invisible character in any part).
EMAIL_SHAPE = f"^{_EMAIL_PART}@{_EMAIL_PART}\\.{_EMAIL_PART}$"

_EMAIL_FORBIDDEN = re.compile(f"[{EMAIL_FORBIDDEN}{INVISIBLE_ASTRAL}]")
_EMAIL_SHAPE = re.compile(EMAIL_SHAPE)
_NAME_FORBIDDEN = re.compile(f"[{NAME_FORBIDDEN}]")
_NAME_VISIBLE = re.compile(f"[^{NAME_INVISIBLE}{INVISIBLE_ASTRAL}]")
_DESCRIPTION_FORBIDDEN = re.compile(f"[{CONTROL_BUT_TAB_NEWLINE}]")
_PRICE = re.compile(PRICE_PATTERN)
_CENT = Decimal(1).scaleb(-PRICE_SCALE)

# --- The rules ------------------------------------------------------------------------
# Each returns the reason a value breaks the rule, or None. The wording is the API's.

#: Why a price given as anything but a string (or, in Python, a Decimal) is refused.
PRICE_NOT_TEXT = 'must be a string such as "19.99" (a number could lose cents)'
#: Why a price string that does not match :data:`PRICE_PATTERN` is refused.
PRICE_BAD_TEXT = f'must be a string of digits with at most {PRICE_SCALE} decimals, such as "19.99"'


def text_problem(value: str) -> str | None:
    """Whether PostgreSQL can hold ``value``: no NUL, and encodable as UTF-8 (no lone
    surrogate). Every stored text obeys it. Nothing is trimmed: spaces are kept."""
    if "\x00" in value:
        return "must not contain the NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def storable(value: str) -> bool:
    """Whether PostgreSQL can hold ``value`` (:func:`text_problem` finds nothing)."""
    return text_problem(value) is None


def length_problem(value: str, longest: int, shortest: int = 0) -> str | None:
    """Whether ``value`` has ``shortest`` to ``longest`` characters (code points)."""
    if len(value) < shortest:
        return "must not be empty" if shortest == 1 else f"must be at least {shortest} characters"
    if len(value) > longest:
        return f"must be at most {longest} character" + ("" if longest == 1 else "s")
    return None


def character_name(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a character told apart from its look."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip()


def name_characters_problem(value: str) -> str | None:
    """What is wrong with a product name's characters (not its length), or None."""
    found = _NAME_FORBIDDEN.search(value)
    if found is not None:
        return (
            "must not contain control characters, bidi controls or line breaks "
            f"({character_name(found[0])})"
        )
    if not _NAME_VISIBLE.search(value):
        return "must not be blank" if value.isspace() else "must not be only invisible characters"
    return None


def description_characters_problem(value: str) -> str | None:
    """What is wrong with a product description's characters, or None."""
    found = _DESCRIPTION_FORBIDDEN.search(value)
    if found is None:
        return None
    named = character_name(found[0])
    return f"must not contain control characters other than newline and tab ({named})"


def email_characters_problem(value: str) -> str | None:
    """What is wrong with the characters of an email (its shape is checked apart), or None."""
    found = _EMAIL_FORBIDDEN.search(value)
    if found is None:
        return None
    named = character_name(found[0])
    return f"must not contain control, invisible or formatting characters ({named})"


def name_problem(value: str) -> str | None:
    """A product name (also an order line's): 1 to :data:`PRODUCT_NAME_MAX` characters,
    storable, a visible character, no control, bidi control or line break."""
    return (
        length_problem(value, PRODUCT_NAME_MAX, 1)
        or text_problem(value)
        or name_characters_problem(value)
    )


def description_problem(value: str) -> str | None:
    """A product description: at most :data:`DESCRIPTION_MAX` characters, storable, no
    control character but tab and newline. (None, no description, is not text.)"""
    return (
        length_problem(value, DESCRIPTION_MAX)
        or text_problem(value)
        or description_characters_problem(value)
    )


def email_problem(value: str) -> str | None:
    """An email, after NFKC: 1 to :data:`EMAIL_MAX` characters, storable, no control or
    invisible character, shaped like ``name@example.com``."""
    problem = length_problem(value, EMAIL_MAX, 1) or text_problem(value)
    problem = problem or email_characters_problem(value)
    if problem is None and not _EMAIL_SHAPE.fullmatch(value):
        return "must look like an email address, such as name@example.com"
    return problem


def username_problem(value: str) -> str | None:
    """The bounds of a username, after NFKC: 1 to :data:`USERNAME_MAX` characters, storable.
    (Which characters it may hold is PRECIS's rule: :func:`shopdb.names.prepare_username`.)"""
    return length_problem(value, USERNAME_MAX, 1) or text_problem(value)


def price_problem(amount: Decimal) -> str | None:
    """What is wrong with ``amount`` as a price, or None: the rule the database's
    ``ck_products_price_scale`` and ``ck_products_price_nonnegative_finite`` enforce."""
    if not amount.is_finite():
        return "must be a finite amount"
    if amount < 0:
        return "must be at least 0"
    if amount >= PRICE_LIMIT:
        return f"must be less than {PRICE_LIMIT:,}"
    try:
        exact = amount.quantize(_CENT)
    except InvalidOperation:
        exact = None
    if exact != amount:
        return f"must have at most {PRICE_SCALE} decimal places"
    return None


def price_text_problem(text: str) -> str | None:
    """A price written as text (JSON's string, a CSV cell): :data:`PRICE_PATTERN`, no
    sign, exponent, spaces or leading zeros, then :func:`price_problem`."""
    if not _PRICE.fullmatch(text):
        return PRICE_BAD_TEXT
    return price_problem(Decimal(text))


def price_input_problem(value: object) -> str | None:
    """A price as given: text (:func:`price_text_problem`) or, from Python, a Decimal
    (:func:`price_problem`); never a float, a bool or (in JSON) a number."""
    if isinstance(value, str):
        return price_text_problem(value)
    if isinstance(value, Decimal):
        return price_problem(value)
    return PRICE_NOT_TEXT


def count_problem(value: object, least: int = 0, most: int = INT_MAX) -> str | None:
    """A count (stock) or, with ``least=1``, a quantity: an int, not a bool nor a
    string, from ``least`` to ``most`` (an INTEGER column)."""
    if type(value) is not int:
        return "must be an integer"
    if value < least:
        return f"must be at least {least}"
    if value > most:
        return f"must be at most {most}"
    return None


def status_problem(value: object) -> str | None:
    """An order status: one of :data:`ORDER_STATUSES`."""
    if value not in ORDER_STATUSES:
        return f"must be one of {', '.join(ORDER_STATUSES)}"
    return None


def role_problem(value: object) -> str | None:
    """A user's role: one of :data:`USER_ROLES`."""
    if value not in USER_ROLES:
        return f"must be one of {', '.join(USER_ROLES)}"
    return None
