"""Races, with real threads on real connections: stock is conserved, lines are summed."""

from __future__ import annotations

import random
from functools import partial
from typing import TypeVar

from shopdb import Store
from shopdb.errors import InsufficientInventory
from shopdb.schemas import Receipt

from .helpers import together

T = TypeVar("T")
THREADS = 16


def _carts(store: Store, count: int) -> list[int]:
    """``count`` carts, each the open cart of a user of its own (one open cart per user)."""
    users = [
        store.create_user(f"racer{i}", f"racer{i}@example.com", "correct horse").id
        for i in range(count)
    ]
    return [store.create_cart(user).id for user in users]


def test_checkouts_racing_for_scarce_stock_sell_exactly_what_was_there(
    committed_store: Store,
) -> None:
    store = committed_store
    product = store.create_product("Last units", "10.00", 20)
    carts = _carts(store, THREADS)
    for cart in carts:
        store.add_to_cart(cart, product.id, 2)  # 32 wanted, 20 there

    results = together([partial(store.checkout, cart) for cart in carts])

    sold = [r for r in results if isinstance(r, Receipt)]
    refused = [r for r in results if isinstance(r, InsufficientInventory)]
    assert len(sold) + len(refused) == THREADS, [r for r in results if isinstance(r, Exception)]
    remaining = store.get_product(product.id).inventory_count
    assert remaining >= 0
    assert sum(line.quantity for r in sold for line in r.items) == 20 - remaining
    assert len(sold) == 10
    assert remaining == 0
    for cart, result in zip(carts, results, strict=True):
        items = store.get_cart(cart).items
        if isinstance(result, Receipt):
            assert items == []
        else:
            assert [(i.product_id, i.quantity) for i in items] == [(product.id, 2)]


def test_checkouts_of_overlapping_carts_neither_deadlock_nor_oversell(
    committed_store: Store,
) -> None:
    store = committed_store
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

    unexpected = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, InsufficientInventory) for r in unexpected), unexpected
    sold_by_product = {p.id: 0 for p in products}
    for cart, result in zip(carts, results, strict=True):
        if isinstance(result, Receipt):
            assert {i.product_id: i.quantity for i in result.items} == wanted[cart]
            for product_id, quantity in wanted[cart].items():
                sold_by_product[product_id] += quantity
            assert store.get_cart(cart).items == []
        else:
            left = {i.product_id: i.quantity for i in store.get_cart(cart).items}
            assert left == wanted[cart]
    for product in products:
        remaining = store.get_product(product.id).inventory_count
        assert remaining >= 0
        assert sold_by_product[product.id] == 12 - remaining


def test_threads_adding_one_product_to_one_cart_sum_on_one_line(committed_store: Store) -> None:
    store = committed_store
    product = store.create_product("Popular", "2.00", 1000)
    (cart,) = _carts(store, 1)

    results = together([lambda: store.add_to_cart(cart, product.id, 1)] * THREADS)

    assert not [r for r in results if isinstance(r, Exception)]
    items = store.get_cart(cart).items
    assert [(i.product_id, i.quantity) for i in items] == [(product.id, THREADS)]


def test_concurrent_stock_adjustments_never_go_below_zero(committed_store: Store) -> None:
    store = committed_store
    product = store.create_product("Scarce", "2.00", 10)

    results = together([lambda: store.adjust_inventory(product.id, -1)] * THREADS)

    assert sum(isinstance(r, int) for r in results) == 10
    assert sum(isinstance(r, InsufficientInventory) for r in results) == THREADS - 10
    assert store.get_product(product.id).inventory_count == 0
