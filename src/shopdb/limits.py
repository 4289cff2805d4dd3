"""Bounds on stored values, shared by the input schemas and the database checks.

The database enforces each of these itself (migration ``harden_integrity``);
the schemas check them first so a caller gets the same message sooner.
"""

from __future__ import annotations

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
#: Order statuses, and which may follow which.
ORDER_STATUSES = ("placed", "paid", "shipped", "cancelled")

#: Logins tried per login (username or email, lower-cased) within the window before
#: further tries are refused without running argon2 (``TooManyAttempts``), and the
#: window in seconds. 10 per 15 minutes leaves a person who mistypes room for
#: several tries and a password manager's mix-up, and holds a guesser to 40 an
#: hour, 960 a day, per login: NIST SP 800-63B asks for at most 100 consecutive
#: failures, OWASP for a lockout or a growing delay. The database enforces them
#: (migration ``0009`` freezes these values in ``shopdb_login_begin``).
LOGIN_ATTEMPTS = 10
LOGIN_WINDOW = 15 * 60
#: What a user may be: a shopper, or staff who may change the catalog. New users are customers.
USER_ROLES = ("customer", "staff")
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
