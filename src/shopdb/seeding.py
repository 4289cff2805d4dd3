"""Deterministic sample data: products, users, carts and their lines, through COPY.

The same seed gives the same rows, byte for byte, on any machine: every value
comes from ``random.Random`` seeded with it (one generator per table, so the
products are the same whatever the number of users), ids are written
explicitly as 1..N, and times count from a fixed instant. The one exception is
``password_hash``: every seeded user has the password :data:`DEMO_PASSWORD`,
hashed once per run with a fresh salt, as argon2 hashes must be.

::

    with psycopg.connect(url) as conn:
        counts = seed_database(conn, products=10_000, users=1_000, carts=1_000, seed=0)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shopdb.errors import DatabaseNotEmpty, InvalidInput, translating

if TYPE_CHECKING:
    import psycopg

#: The password of every seeded user.
DEMO_PASSWORD = "shopdb-demo"  # noqa: S105 (published on purpose: it is sample data)
#: The tables seeding fills, in the order it fills them.
TABLES = ("products", "users", "carts", "cart_items")
#: Users sign up one every :data:`_SIGNUP_EVERY` from here (naive UTC, like created_at).
EPOCH = datetime(2025, 1, 1)

_SIGNUP_EVERY = timedelta(minutes=7)
_BATCH = 5_000
_ADJECTIVES = (
    "Red", "Blue", "Green", "Small", "Large", "Organic", "Classic", "Deluxe",
    "Compact", "Wireless", "Vintage", "Smart", "Bamboo", "Steel", "Cotton", "Ceramic",
)  # fmt: skip
_NOUNS = (
    "mug", "lamp", "chair", "backpack", "notebook", "kettle", "blanket", "bottle",
    "speaker", "teapot", "wallet", "candle", "pillow", "clock", "basket", "scarf",
)  # fmt: skip
_PRAISE = (
    "Made to last.",
    "Ships in two days.",
    "A customer favourite.",
    "Dishwasher safe.",
    "Hand finished.",
    "Easy to clean.",
)


@dataclass(frozen=True)
class SeedCounts:
    """How many rows seeding wrote to each table."""

    products: int
    users: int
    carts: int
    cart_items: int


def seed_database(
    conn: psycopg.Connection[Any],
    *,
    products: int = 10_000,
    users: int = 1_000,
    carts: int = 1_000,
    seed: int = 0,
    truncate: bool = False,
) -> SeedCounts:
    """Fill the four tables with sample data in one transaction; return the row counts.

    Products are named ``Product 000001`` and on; users ``user0001`` with
    email ``user0001@example.com`` and password :data:`DEMO_PASSWORD`; cart
    ``i`` (from 0) belongs to user ``(i mod users) + 1``; each user's newest
    cart is open and holds 1 to 4 distinct products, 1 to 3 of each, and the
    older ones are closed and empty (a user has one open cart). The tables must be empty, else
    :class:`~shopdb.errors.DatabaseNotEmpty`; with ``truncate`` they are
    emptied first (``TRUNCATE ... RESTART IDENTITY``) instead.
    """

    from shopdb.bulk import require_tables
    from shopdb.passwords import hash_password

    _check_counts(products, users, carts)
    require_tables(conn, *TABLES)
    # Hashed once: argon2 takes tens of milliseconds a hash, by design.
    password_hash = hash_password(DEMO_PASSWORD) if users else ""
    with translating, conn.transaction():
        _make_room(conn, truncate=truncate)
        _copy(
            conn,
            "products (id, name, description, price, inventory_count)",
            _products(products, seed),
        )
        _copy(
            conn,
            "users (id, username, username_key, email, password_hash, created_at)",
            _users(users, password_hash),
        )
        _copy(conn, "carts (id, user_id, created_at, closed_at)", _carts(carts, users, seed))
        items = _Counter(_cart_items(carts, users, products, seed))
        _copy(conn, "cart_items (id, cart_id, product_id, quantity)", items)
        # Each line remembers the price it went in at, as the Store's add records it.
        conn.execute(
            "UPDATE cart_items ci SET unit_price = p.price "
            "FROM products p WHERE p.id = ci.product_id"
        )
        for table, count in zip(TABLES, (products, users, carts, items.count), strict=True):
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)",
                (table, max(count, 1), count > 0),
            )
    return SeedCounts(products, users, carts, items.count)


def _check_counts(products: int, users: int, carts: int) -> None:
    for field, value in (("products", products), ("users", users), ("carts", carts)):
        if value < 0:
            raise InvalidInput(field, "must be at least 0")
    if carts and not users:
        raise InvalidInput("carts", "need at least one user to belong to")
    if carts and not products:
        raise InvalidInput("carts", "need at least one product to hold")


def _make_room(conn: psycopg.Connection[Any], *, truncate: bool) -> None:
    tables = ", ".join(TABLES)
    if truncate:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        return
    # EXCLUSIVE still lets others read, and makes a second seed wait for this
    # one and then find the tables full, instead of both inserting.
    conn.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
    probes = ", ".join(f"EXISTS (SELECT FROM {table})" for table in TABLES)
    row = conn.execute(f"SELECT {probes}").fetchone()
    full = [table for table, has_rows in zip(TABLES, row or (), strict=True) if has_rows]
    if full:
        raise DatabaseNotEmpty(full)


def _copy(conn: psycopg.Connection[Any], target: str, lines: Iterable[str]) -> None:
    # COPY's text format: tab-separated, \N for NULL. Every value here is ours
    # and holds no tab, newline or backslash, so none needs escaping.
    from shopdb.bulk import BackgroundWriter

    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {target} FROM STDIN", writer=BackgroundWriter(cur)) as copy,
    ):
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == _BATCH:
                copy.write("".join(batch))
                batch.clear()
        if batch:
            copy.write("".join(batch))


class _Counter:
    """Counts the lines that pass through it."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.count += 1
            yield line


def _rng(seed: int, table: str) -> random.Random:
    return random.Random(f"shopdb seed {seed} {table}")  # noqa: S311 (sample data, not secrets)


def _products(count: int, seed: int) -> Iterator[str]:
    rng = _rng(seed, "products")
    for i in range(1, count + 1):
        kind = rng.random()
        if kind < 0.1:
            description = r"\N"
        else:
            adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
            description = f"{adjective} {noun}. {rng.choice(_PRAISE)}"
        cents = rng.randint(50, 50_000)
        # Most products are in stock; one in ten is nearly or entirely sold out.
        stock = rng.randint(0, 20) if rng.random() < 0.1 else rng.randint(21, 1000)
        yield f"{i}\tProduct {i:06d}\t{description}\t{cents // 100}.{cents % 100:02d}\t{stock}\n"


def _users(count: int, password_hash: str) -> Iterator[str]:
    from shopdb.names import username_key

    for i in range(1, count + 1):
        name = f"user{i:04d}"
        key = username_key(name)  # the one account rule, as the Store keys a registration
        yield f"{i}\t{name}\t{key}\t{name}@example.com\t{password_hash}\t{_signup(i)}\n"


def _signup(user_id: int) -> datetime:
    return EPOCH + _SIGNUP_EVERY * (user_id - 1)


def _carts(count: int, users: int, seed: int) -> Iterator[str]:
    # A user has one open cart (a unique index says so): their newest. Older
    # carts are closed (a day after they were opened) and hold no lines.
    rng = _rng(seed, "carts")
    for i in range(count):
        user_id = i % users + 1
        opened = _signup(user_id) + timedelta(seconds=rng.randint(60, 30 * 86_400))
        closed = r"\N" if _is_open(i, count, users) else f"{opened + timedelta(days=1)}+00"
        yield f"{i + 1}\t{user_id}\t{opened}\t{closed}\n"


def _is_open(index: int, carts: int, users: int) -> bool:
    """Cart ``index`` (from 0) is its user's newest: no later cart has the same user."""
    return index + users >= carts


def _cart_items(carts: int, users: int, products: int, seed: int) -> Iterator[str]:
    rng = _rng(seed, "cart_items")
    ids = range(1, products + 1)
    line_id = 0
    for cart_id in range(carts - min(carts, users) + 1, carts + 1):
        chosen = rng.sample(ids, rng.randint(1, min(4, products)))
        for product_id in sorted(chosen):
            line_id += 1
            yield f"{line_id}\t{cart_id}\t{product_id}\t{rng.randint(1, 3)}\n"
