"""Races, with real threads on real connections: stock is conserved, lines are summed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import TypeVar

import pytest

from shopdb import Store
from shopdb.db import Pool
from shopdb.errors import InsufficientInventory
from shopdb.schemas import Receipt

from .helpers import refusals, together

T = TypeVar("T")
THREADS = 16


def _carts(store: Store, count: int) -> list[int]:
    """``count`` carts, each the open cart of a user of its own (one open cart per user)."""
    users = [
        store.create_user(f"racer{i}", f"racer{i}@example.com", "correct horse").id
        for i in range(count)
    ]
    return [store.create_cart(user).id for user in users]


def _sales(pool: Pool) -> tuple[int, dict[int, int]]:
    """How many orders the database holds, and the units they sold by product."""
    with pool.raw() as probe:
        row = probe.execute("SELECT count(*) FROM orders").fetchone()
        units = probe.execute(
            "SELECT product_id, sum(quantity)::integer FROM order_items GROUP BY product_id"
        ).fetchall()
    assert row is not None
    return row[0], dict(units)


def test_checkouts_racing_for_scarce_stock_sell_exactly_what_was_there(
    racing_store: Store, committed_pool: Pool
) -> None:
    store = racing_store
    product = store.create_product("Last units", "10.00", 20)
    carts = _carts(store, THREADS)
    for cart in carts:
        store.add_to_cart(cart, product.id, 2)  # 32 wanted, 20 there

    results = together([partial(store.checkout, cart) for cart in carts])

    refused = refusals(results, InsufficientInventory)
    sold = [r for r in results if isinstance(r, Receipt)]
    assert len(sold) + len(refused) == THREADS, results
    # Exactly the stock is sold: ten carts of two, no more, no fewer.
    assert len(sold) == 10, results
    assert store.get_product(product.id).inventory_count == 0
    assert all([(i.product_id, i.quantity) for i in r.items] == [(product.id, 2)] for r in sold)
    assert _sales(committed_pool) == (10, {product.id: 20})
    for error in refused:  # each refusal was true when it was made: fewer than 2 left
        assert isinstance(error, InsufficientInventory)
        [(product_id, wanted, available)] = [
            (s.product_id, s.wanted, s.available) for s in error.shortages
        ]
        assert (product_id, wanted) == (product.id, 2)
        assert available < 2
    for cart, result in zip(carts, results, strict=True):
        items = store.get_cart(cart).items
        if isinstance(result, Receipt):
            assert items == []
        else:
            assert [(i.product_id, i.quantity) for i in items] == [(product.id, 2)]


def test_checkouts_of_overlapping_carts_neither_deadlock_nor_oversell(
    racing_store: Store, committed_pool: Pool
) -> None:
    store = racing_store
    rng = random.Random(7)  # noqa: S311 (a reproducible shuffle, not a secret)
    products = [store.create_product(f"P{i}", "1.00", 12) for i in range(5)]
    carts = _carts(store, THREADS)
    wanted: dict[int, dict[int, int]] = {}
    for cart in carts:
        picked = rng.sample(products, 3)
        wanted[cart] = {p.id: rng.randint(1, 3) for p in picked}
        # Lines are added in a random order, so only the lock order protects checkout.
        for product_id, quantity in wanted[cart].items():
            store.add_to_cart(cart, product_id, quantity)

    results = together([partial(store.checkout, cart) for cart in carts])

    refusals(results, InsufficientInventory)  # no deadlock, whatever the retries
    sold = {c: r for c, r in zip(carts, results, strict=True) if isinstance(r, Receipt)}
    # Sales happened: the first checkout to lock its products finds 12 of each, and
    # no cart wants more than 3 of one.
    assert sold, results
    sold_by_product = {p.id: 0 for p in products}
    for cart, receipt in sold.items():
        assert {i.product_id: i.quantity for i in receipt.items} == wanted[cart]
        for product_id, quantity in wanted[cart].items():
            sold_by_product[product_id] += quantity
        assert store.get_cart(cart).items == []
    remaining = {p.id: store.get_product(p.id).inventory_count for p in products}
    # Stock sold + stock left == stock received, for every product; the orders are
    # the acknowledged ones and hold exactly their units.
    assert {p: sold_by_product[p] + remaining[p] for p in remaining} == dict.fromkeys(remaining, 12)
    assert _sales(committed_pool) == (len(sold), {p: n for p, n in sold_by_product.items() if n})
    for cart, result in zip(carts, results, strict=True):
        if cart in sold:
            continue
        left = {i.product_id: i.quantity for i in store.get_cart(cart).items}
        assert left == wanted[cart]
        # Refused only for a true shortage: stock only fell during the race, so a
        # product that was short for this cart then is short for it still.
        assert isinstance(result, InsufficientInventory)
        assert result.shortages, result
        for shortage in result.shortages:
            assert shortage.wanted == wanted[cart][shortage.product_id]
            assert remaining[shortage.product_id] <= shortage.available < shortage.wanted


def test_threads_adding_one_product_to_one_cart_sum_on_one_line(racing_store: Store) -> None:
    store = racing_store
    product = store.create_product("Popular", "2.00", 1000)
    (cart,) = _carts(store, 1)

    results = together([lambda: store.add_to_cart(cart, product.id, 1)] * THREADS)

    assert refusals(results) == []  # every add succeeds
    items = store.get_cart(cart).items
    assert [(i.product_id, i.quantity) for i in items] == [(product.id, THREADS)]


def test_concurrent_stock_adjustments_never_go_below_zero(racing_store: Store) -> None:
    store = racing_store
    product = store.create_product("Scarce", "2.00", 10)

    results = together([lambda: store.adjust_inventory(product.id, -1)] * THREADS)

    refused = refusals(results, InsufficientInventory)
    # Exactly the ten units there were are taken, one each, each seeing the one before.
    assert sorted(r for r in results if isinstance(r, int)) == list(range(10))
    assert len(refused) == THREADS - 10
    assert store.get_product(product.id).inventory_count == 0


# -- a product changed while a checkout waits for it -----------------------------------


@contextmanager
def _product_held(pool: Pool, product_id: int, change: str) -> Iterator[Callable[[], None]]:
    """A transaction that ran ``change`` (``%s``: the product's id) and holds the product's
    row lock until the block ends, then commits. Yields a function that returns once
    another backend of the database waits for a lock."""
    with pool.raw() as holder, pool.raw() as watcher, holder.transaction():
        holder.execute(change, (product_id,))
        mine = holder.info.backend_pid

        def blocked() -> None:
            deadline = time.monotonic() + 60  # a hang guard, not a timing
            while watcher.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> %s",
                (mine,),
            ).fetchone() == (0,):
                assert time.monotonic() < deadline, "nothing waited for the product"
                time.sleep(0.01)

        yield blocked


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ("UPDATE products SET inventory_count = 1 WHERE id = %s", "short"),
        ("UPDATE products SET price = 4.00 WHERE id = %s", "new price"),
        ("DELETE FROM products WHERE id = %s", "gone"),
    ],
)
def test_a_product_changed_under_a_checkout_gets_the_answer_of_its_new_state(
    racing_store: Store, committed_pool: Pool, change: str, outcome: str
) -> None:
    store = racing_store
    hot = store.create_product("Hot", "3.00", 10)
    cold = store.create_product("Cold", "1.00", 10)
    (cart,) = _carts(store, 1)
    store.add_to_cart(cart, cold.id, 1)
    store.add_to_cart(cart, hot.id, 2)
    with ThreadPoolExecutor(1) as pool:
        with _product_held(committed_pool, hot.id, change) as blocked:
            # The checkout starts while the change is not committed (10 at 3.00), and
            # must answer for the product as the change left it.
            placed = pool.submit(store.checkout, cart)
            blocked()
        if outcome == "short":
            with pytest.raises(InsufficientInventory) as short:
                placed.result(timeout=60)
            assert [(s.product_id, s.wanted, s.available) for s in short.value.shortages] == [
                (hot.id, 2, 1)
            ]
            # Nothing written: no order, the cart open with both lines, stock as it was.
            with committed_pool.raw() as probe:
                orders = probe.execute("SELECT count(*) FROM orders WHERE cart_id = %s", (cart,))
                assert orders.fetchone() == (0,)
            assert len(store.get_cart(cart).items) == 2
            assert store.get_product(hot.id).inventory_count == 1
            assert store.get_product(cold.id).inventory_count == 10
            return
        order = placed.result(timeout=60)
    lines = {(i.product_id, i.unit_price, i.quantity) for i in order.items}
    if outcome == "new price":
        assert lines == {(hot.id, Decimal("4.00"), 2), (cold.id, Decimal("1.00"), 1)}
        assert order.total == Decimal("9.00")
        assert store.get_product(hot.id).inventory_count == 8
    else:  # the deleted product left the cart; the rest is sold
        assert lines == {(cold.id, Decimal("1.00"), 1)}
        assert order.total == Decimal("1.00")
    assert store.get_product(cold.id).inventory_count == 9
    with committed_pool.raw() as probe:
        units = probe.execute("SELECT sum(quantity) FROM order_items").fetchone()
    assert units == (3 if outcome == "new price" else 1,)
