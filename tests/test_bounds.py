"""Everything is bounded: errors, stored values, pages, carts, stock; and no deadlock.

Each test makes the hostile case certain (a hundred thousand bad keys, a
description one character too long, a 101st cart line, a cancel at the most
stock there may be, products deleted while they are checked out) and checks
the bound holds, in the Store and, for what is stored, in the database.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shopdb import Store, errors
from shopdb.bulk import import_products
from shopdb.connect import libpq_url
from shopdb.db import Pool
from shopdb.errors import (
    CartFull,
    EmptyCart,
    InsufficientInventory,
    InvalidInput,
    NotFound,
    ShopError,
)
from shopdb.limits import CART_LINES_MAX, DESCRIPTION_MAX, PROBLEMS_MAX, STOCK_MAX
from shopdb.schemas import NewUser, Order, parse
from shopdb.testing import DatabaseFactory

from .flavours import Sql
from .helpers import refusals, refused, together

#: Values no error may repeat: a number, a string, a file's cell.
HUGE_NUMBER = 1208925819614629174706176
SENTINEL = "zq-sentinel-7f3a"


# -- every error is small --------------------------------------------------------


def test_an_invalid_input_lists_the_first_problems_and_counts_the_rest() -> None:
    body = json.dumps({f"key{i}": i for i in range(100_000)})
    with pytest.raises(InvalidInput) as caught:
        parse(NewUser, body)
    error = caught.value
    assert len(error.problems) == PROBLEMS_MAX
    assert error.count == 100_003  # 100,000 unknown keys, 3 required fields missing
    assert error.details()["count"] == 100_003
    assert "100002 more problems" in str(error)
    assert len(json.dumps(error.problem())) < 4096


def test_an_unknown_key_is_named_but_cut_short() -> None:
    key = SENTINEL * 10_000
    with pytest.raises(InvalidInput) as caught:
        parse(NewUser, {key: 1})
    unknown = [p for p in caught.value.problems if p.reason == "is not a known field"]
    assert len(unknown) == 1
    assert len(unknown[0].field) <= errors.FIELD_NAME_MAX
    assert len(json.dumps(caught.value.problem())) < 4096


# -- no error repeats a value it refuses, whatever its class ---------------------

#: Error classes no caller's value can reach, and why: each is raised from the
#: configuration, the server or the migration files, never from a call's arguments.
NOT_FROM_INPUT = {
    errors.ConfigurationError: "settings and URLs are the operator's, not a caller's",
    errors.ConnectionFailed: "connecting takes no caller's value",
    errors.DatabaseUnavailable: "the server's state",
    errors.PoolTimeout: "the pool's numbers",
    errors.AuthenticationFailed: "the database role's login, the operator's",
    errors.DatabaseMissing: "the configured database's name",
    errors.PermissionDenied: "the role's privileges",
    errors.ConcurrencyConflict: "contention, not input",
    errors.QueryTimeout: "time, not input",
    errors.MigrationError: "migration files, the operator's",
    errors.MigrationLockTimeout: "another migration run",
    errors.SchemaOutdated: "the database's migration state, at start-up",
    errors.SchemaMissing: "the database's tables and columns, named by shopdb's own SQL",
    errors.DatabaseNotEmpty: "table names",
    errors.Conflict: "raised only as one of its subclasses",
    errors.ShopError: "raised only as one of its subclasses",
}


def _import(url: str, path: Path) -> int:
    with psycopg.connect(url) as conn:
        return import_products(conn, path)


def _agreed(store: Store, user_id: int, product_id: int) -> None:
    """A checkout at a total the shopper did not see (PriceChanged)."""
    store.update_product(product_id, inventory_count=5)
    cart = store.create_cart(user_id).id
    store.add_to_cart(cart, product_id, 1)
    store.checkout(cart, expected_total=Decimal("123456.78"))


def _key_reused(store: Store, user_id: int, product_id: int) -> None:
    """A key that placed an order, used for another cart (IdempotencyKeyReused)."""
    store.update_product(product_id, inventory_count=5)
    carts = []
    for _ in range(2):
        carts.append(store.create_cart(user_id).id)
        store.add_to_cart(carts[-1], product_id, 1)
        store.checkout(carts[-1], idempotency_key=SENTINEL)


def _guess(store: Store, login: str) -> None:
    """Wrong passwords for ``login`` until the throttle refuses one (TooManyAttempts)."""
    for _ in range(100):
        store.authenticate(login, SENTINEL)


def _hostile_calls(store: Store, tmp_path: Path, url: str) -> list[Callable[[], object]]:
    """A call per error a caller can provoke, each fed values no error may repeat."""
    buyer = store.create_user("echo_buyer", "echo_buyer@example.com", "a long password")
    product = store.create_product("Echo kettle", "10.00", 1)
    cart = store.create_cart(buyer.id).id
    store.add_to_cart(cart, product.id, 1)
    order = store.checkout(cart)
    full_cart = store.create_cart(store.create_user("echo_full", "f@example.com", "a long pw1").id)
    for i in range(CART_LINES_MAX):
        store.add_to_cart(full_cart.id, store.create_product(f"Line {i}", "1.00", 1).id)
    csv = tmp_path / "products.csv"
    csv.write_text(
        f"name,description,price,inventory_count\n{SENTINEL},x,{SENTINEL},{HUGE_NUMBER}\n"
    )
    return [
        partial(store.get_product, HUGE_NUMBER),
        partial(store.get_product, SENTINEL),  # type: ignore[arg-type]
        partial(store.add_to_cart, cart, product.id, HUGE_NUMBER),
        partial(store.list_products, None, HUGE_NUMBER),
        partial(store.adjust_inventory, product.id, HUGE_NUMBER),
        partial(store.create_product, SENTINEL * 100, SENTINEL, 1),
        partial(store.create_product, "Kettle", "1.00", HUGE_NUMBER),
        partial(store.create_product, "Kettle", "1.00", 1, SENTINEL * DESCRIPTION_MAX),
        partial(store.create_user, SENTINEL * 10, SENTINEL, SENTINEL),
        partial(store.create_user, "echo_buyer", "new@example.com", "a long password"),
        partial(store.update_product, product.id, price=SENTINEL),
        partial(store.get_product, 2_000_000_000),
        partial(store.add_to_cart, store.create_cart(buyer.id).id, product.id, 1_000),
        partial(store.checkout, store.create_cart(buyer.id).id),
        partial(store.add_to_cart, cart, product.id, 1),
        partial(store.add_to_cart, full_cart.id, store.create_product("Spare", "1.00", 5).id),
        partial(store.ship_order, order.id),
        partial(_import, url, csv),
        partial(_guess, store, SENTINEL),
        partial(store.for_user(buyer.id).require_staff),
        partial(_agreed, store, buyer.id, product.id),
        partial(store.checkout, cart, idempotency_key=SENTINEL * 100),
        partial(_key_reused, store, buyer.id, product.id),
    ]


@pytest.fixture
def import_url(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database for the import, on the test server."""
    target = shopdb_server.create("shopdb_echo", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


def _subclasses(cls: type[ShopError]) -> set[type[ShopError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_no_error_repeats_a_value_the_caller_sent(
    store: Store, tmp_path: Path, import_url: str
) -> None:
    raised: list[ShopError] = []
    for call in _hostile_calls(store, tmp_path, import_url):
        try:
            call()
        except ShopError as exc:
            raised.append(exc)
        else:
            pytest.fail(f"{call} was not refused")
    for error in raised:
        shown = str(error) + json.dumps(error.problem())
        assert SENTINEL not in shown, (type(error).__name__, shown[:300])
        assert str(HUGE_NUMBER) not in shown, (type(error).__name__, shown[:300])
        assert len(shown) < 4096, type(error).__name__
    covered = {type(error) for error in raised}
    every = {cls for cls in _subclasses(ShopError) if cls.__module__ == "shopdb.errors"}
    assert every - covered - set(NOT_FROM_INPUT) == set(), "an error class is not tried"


# -- every stored value is bounded -------------------------------------------------


def test_a_description_over_the_bound_is_refused_and_nothing_changes(
    store: Store, sql: Sql
) -> None:
    before = sql("SELECT count(*) FROM products")
    with pytest.raises(InvalidInput) as caught:
        store.create_product("Kettle", "10.00", 1, "d" * (DESCRIPTION_MAX + 1))
    assert caught.value.field == "description"
    kettle = store.create_product("Kettle", "10.00", 1, "d" * DESCRIPTION_MAX)
    with pytest.raises(InvalidInput) as caught:
        store.update_product(kettle.id, description="d" * (DESCRIPTION_MAX + 1))
    assert caught.value.field == "description"
    assert store.get_product(kettle.id).description == "d" * DESCRIPTION_MAX
    assert sql("SELECT count(*) FROM products") == [(before[0][0] + 1,)]


def test_a_page_of_products_holds_at_most_100(store: Store) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.list_products(None, 101)
    assert caught.value.field == "limit"
    assert len(store.list_products(None, 100)) <= 100


# -- a cart holds at most CART_LINES_MAX products ------------------------------------


def _products(store: Store, count: int, stock: int = 5) -> list[int]:
    return [store.create_product(f"P{i}", "1.00", stock).id for i in range(count)]


def test_a_cart_holds_at_most_100_products(store: Store) -> None:
    user = store.create_user("hoarder", "hoarder@example.com", "a long password")
    cart = store.create_cart(user.id).id
    ids = _products(store, CART_LINES_MAX + 1)
    for product_id in ids[:CART_LINES_MAX]:
        store.add_to_cart(cart, product_id)
    with pytest.raises(CartFull) as caught:
        store.add_to_cart(cart, ids[-1])
    assert caught.value.details() == {"cart_id": cart, "limit": CART_LINES_MAX}
    assert caught.value.http_status == 409
    with pytest.raises(CartFull):
        store.set_quantity(cart, ids[-1], 2)
    # More of a product already in the cart is no new line.
    view = store.add_to_cart(cart, ids[0], 2)
    assert len(view.items) == CART_LINES_MAX
    assert [i.product_id for i in store.get_cart(cart).items] == ids[:CART_LINES_MAX]


def test_the_database_refuses_a_101st_line_written_with_raw_sql(db_connection: Connection) -> None:
    c = db_connection
    user = c.execute(
        text(
            "INSERT INTO users (username, username_key, email, password_hash) "
            "VALUES ('r', 'r', 'r@x.io', 'h') "
            "RETURNING id"
        )
    ).scalar_one()
    cart = c.execute(text("INSERT INTO carts (user_id) VALUES (:u) RETURNING id"), {"u": user})
    cart_id = cart.scalar_one()
    c.execute(
        text(
            "INSERT INTO products (name, price, inventory_count) "
            "SELECT 'P' || n, 1, 1 FROM generate_series(1, 101) n"
        )
    )
    c.execute(
        text(
            "INSERT INTO cart_items (cart_id, product_id, quantity) "
            "SELECT :c, id, 1 FROM products WHERE name ~ '^P[0-9]+$' ORDER BY id LIMIT 100"
        ),
        {"c": cart_id},
    )
    error = refused(
        c,
        "INSERT INTO cart_items (cart_id, product_id, quantity) SELECT :c, max(id), 1 "
        "FROM products WHERE name ~ '^P[0-9]+$'",
        c=cart_id,
    )
    assert isinstance(error, CartFull)


def test_racing_adds_to_a_cart_with_one_place_left_fill_it_once(racing_store: Store) -> None:
    store = racing_store
    user = store.create_user("last_place", "last_place@example.com", "a long password")
    cart = store.create_cart(user.id).id
    for product_id in _products(store, CART_LINES_MAX - 1):
        store.add_to_cart(cart, product_id)
    racers = _products(store, 8)

    results = together([partial(store.add_to_cart, cart, p) for p in racers])

    full = refusals(results, CartFull)
    added = [r for r in results if not isinstance(r, Exception)]
    assert (len(added), len(full)) == (1, 7), results
    assert len(store.get_cart(cart).items) == CART_LINES_MAX


# -- a placed or paid order can always be cancelled ----------------------------------


def test_cancel_at_the_most_stock_there_may_be_succeeds(store: Store, sql: Sql) -> None:
    user = store.create_user("canceller", "canceller@example.com", "a long password")
    lamp = store.create_product("Lamp", "10.00", 10)
    cart = store.create_cart(user.id).id
    store.add_to_cart(cart, lamp.id, 10)
    order = store.checkout(cart)
    assert sql("SELECT inventory_count, units_ordered FROM products WHERE id = %s", (lamp.id,)) == [
        (0, 10)
    ]
    # The most stock there may be counts the 10 units on the open order.
    with pytest.raises(InvalidInput) as caught:
        store.update_product(lamp.id, inventory_count=STOCK_MAX)
    assert caught.value.field == "inventory_count"
    store.update_product(lamp.id, inventory_count=STOCK_MAX - 10)
    with pytest.raises(InvalidInput) as caught:
        store.adjust_inventory(lamp.id, 1)
    assert caught.value.field == "delta"

    cancelled = store.cancel_order(order.id)

    assert cancelled.status == "cancelled"
    assert sql("SELECT inventory_count, units_ordered FROM products WHERE id = %s", (lamp.id,)) == [
        (STOCK_MAX, 0)
    ]


def test_shipping_takes_the_units_off_the_open_orders(store: Store, sql: Sql) -> None:
    user = store.create_user("shipper", "shipper@example.com", "a long password")
    lamp = store.create_product("Lamp", "10.00", 10)
    cart = store.create_cart(user.id).id
    store.add_to_cart(cart, lamp.id, 4)
    order = store.checkout(cart)
    store.pay_order(order.id)
    store.ship_order(order.id)
    assert sql("SELECT inventory_count, units_ordered FROM products WHERE id = %s", (lamp.id,)) == [
        (6, 0)
    ]


# -- no deadlock: one lock order for every statement ----------------------------------


def _backends_gone(url: str, database: str) -> None:
    """Wait until no backend is connected to ``database`` (their stats are flushed then)."""
    deadline = time.monotonic() + 60  # a hang guard, not a timing
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "backends stayed connected"
            time.sleep(0.05)


def _deadlocks(url: str, database: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_deleting_products_while_they_are_checked_out_never_deadlocks(
    shopdb_server: DatabaseFactory,
) -> None:
    target = shopdb_server.create("shopdb_deadlock", migrated=True)
    admin_url = shopdb_server.url("postgres")
    rng = random.Random(17)  # noqa: S311 (a reproducible shuffle, not a secret)
    outcomes: list[object] = []
    try:
        settings = shopdb_server.settings(pool_size=20, pool_timeout=60)
        with Pool(shopdb_server.pooled_target(target.database), settings) as pool:
            store = Store(pool, retries=0)  # a deadlock would surface, not be retried
            for round_ in range(6):
                products = _products(store, 6, stock=50)
                carts = []
                for i in range(10):
                    user = store.create_user(f"r{round_}_{i}", f"r{round_}_{i}@x.io", "a long pw1")
                    cart = store.create_cart(user.id).id
                    for product_id in rng.sample(products, len(products)):
                        store.add_to_cart(cart, product_id)
                    carts.append(cart)
                calls: list[Callable[[], Any]] = [partial(store.checkout, c) for c in carts]
                calls += [partial(store.delete_product, p) for p in reversed(products)]
                outcomes += together(rng.sample(calls, len(calls)))
        _backends_gone(admin_url, target.database)
        deadlocks = _deadlocks(admin_url, target.database)
    finally:
        shopdb_server.drop(target.database)
    refusals(outcomes, EmptyCart, NotFound)  # a deadlock is named, and fails
    assert any(isinstance(o, Order) for o in outcomes)  # sales happened, not only refusals
    assert deadlocks == 0


def test_the_units_ordered_match_the_open_orders_after_a_race(
    committed_pool: Pool, racing_store: Store
) -> None:
    store = racing_store
    product = store.create_product("Raced", "2.00", 40)
    carts = []
    for i in range(12):
        user = store.create_user(f"uo{i}", f"uo{i}@example.com", "a long password")
        cart = store.create_cart(user.id).id
        store.add_to_cart(cart, product.id, 4)
        carts.append(cart)
    results = together([partial(store.checkout, c) for c in carts])
    assert len(refusals(results, InsufficientInventory)) == 2
    sold = [r for r in results if isinstance(r, Order)]
    assert len(sold) == 10
    cancelled = together([partial(store.cancel_order, o.id) for o in sold[:5]])
    assert refusals(cancelled) == []
    assert {r.status for r in cancelled if isinstance(r, Order)} == {"cancelled"}
    with psycopg.connect(libpq_url(committed_pool.target.url)) as conn:
        row = conn.execute(
            "SELECT inventory_count, units_ordered FROM products WHERE id = %s", (product.id,)
        ).fetchone()
    assert row == (20, 20)  # 5 orders of 4 still open, 5 cancelled
