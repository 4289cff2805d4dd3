"""Fewest round trips, counted on the wire: the Store's operations are one statement each."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from shopdb import Store
from shopdb.db import Pool, establish_connection_pool
from shopdb.testing import DatabaseFactory

from .wire import CountingProxy, counting_proxy


@pytest.fixture
def proxied(
    shopdb_server: DatabaseFactory, committed_pool: Pool
) -> Iterator[tuple[Store, CountingProxy]]:
    """A Store whose connections pass through a round-trip-counting proxy."""
    with counting_proxy(committed_pool.target.url) as proxy:
        url = proxy.url().set(drivername="postgresql").render_as_string(hide_password=False)
        with establish_connection_pool(url, settings=shopdb_server.settings(pool_size=1)) as pool:
            yield Store(pool), proxy


def _trips(proxy: CountingProxy, call: Callable[[], object]) -> int:
    call()  # the first call on a connection prepares the statement
    proxy.reset()
    call()
    return proxy.round_trips


def test_each_store_operation_is_one_round_trip(
    proxied: tuple[Store, CountingProxy],
) -> None:
    store, proxy = proxied
    users = [
        store.create_user(f"wire{i}", f"wire{i}@example.com", "correct horse") for i in range(5)
    ]
    products = [store.create_product(f"P{i}", "1.00", 1000) for i in range(12)]
    carts = [store.create_cart(user.id).id for user in users[:4]]  # one open cart per user
    for cart in carts[:2]:
        for product in products[:2]:
            store.add_to_cart(cart, product.id)
    for cart in carts[2:]:
        for product in products:
            store.add_to_cart(cart, product.id)

    assert _trips(proxy, lambda: store.get_product(products[0].id)) == 1
    assert _trips(proxy, lambda: store.list_products(limit=20)) == 1
    # A mutation returns the cart view from the same statement.
    assert _trips(proxy, lambda: store.add_to_cart(carts[0], products[3].id)) == 1
    assert _trips(proxy, lambda: store.set_quantity(carts[0], products[3].id, 2)) == 1
    assert _trips(proxy, lambda: store.get_cart(carts[2])) == 1
    shopper = store.for_user(users[0].id)
    assert _trips(proxy, lambda: shopper.add(products[4].id)) == 1
    assert _trips(proxy, shopper.cart) == 1
    assert _trips(proxy, lambda: store.adjust_inventory(products[0].id, 1)) == 1
    # Checkout costs the same for 2 lines and for 12.
    store.checkout(carts[0])  # prepares the statement
    proxy.reset()
    store.checkout(carts[1])
    two_lines = proxy.round_trips
    proxy.reset()
    store.checkout(carts[2])
    twelve_lines = proxy.round_trips
    assert two_lines == twelve_lines == 1
    # An order with its lines, and a move between states, are one statement each.
    order = store.checkout(carts[3])
    assert _trips(proxy, lambda: store.get_order(order.id)) == 1
    assert _trips(proxy, lambda: store.list_orders(users[3].id)) == 1
    store.pay_order(order.id)  # prepares the statement every move shares
    proxy.reset()
    store.ship_order(order.id)
    assert proxy.round_trips == 1


def test_the_counter_sees_every_round_trip_of_a_transaction(
    proxied: tuple[Store, CountingProxy],
) -> None:
    store, proxy = proxied
    product = store.create_product("Counted", "1.00", 1)
    store.get_product(product.id)
    proxy.reset()
    with store.transaction() as tx:
        tx.get_product(product.id)
    # BEGIN, SAVEPOINT, the SELECT, RELEASE, COMMIT
    assert proxy.round_trips == 5
