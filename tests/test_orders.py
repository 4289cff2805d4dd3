"""The sale is recorded: orders, the cart lifecycle, idempotent checkout, ownership.

Every test takes both flavours (Store and AsyncStore). The races run real
threads (tasks on one loop, for the async flavour) on real connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
import pytest

from shopdb import Store
from shopdb.config import parse_database_url
from shopdb.connect import Target, libpq_url
from shopdb.db import Pool
from shopdb.errors import (
    CartClosed,
    DatabaseUnavailable,
    EmptyCart,
    InvalidTransition,
    NotFound,
)
from shopdb.schemas import Order
from shopdb.testing import DatabaseFactory

from .flavours import Flavour, LoopThread, Sql, pooled_store
from .helpers import refusals, together
from .wire import counting_proxy

T = TypeVar("T")
HANG_GUARD = 120.0


def _refused(sql: Sql, query: str, params: tuple[object, ...]) -> Exception:
    """Run ``query`` in a savepoint of the test's transaction; the error it raised."""
    sql("SAVEPOINT refused")
    try:
        sql(query, params)
    except psycopg.Error as exc:
        sql("ROLLBACK TO SAVEPOINT refused")
        return exc
    raise AssertionError(f"the database accepted {query}")


def _user(store: Store, name: str) -> int:
    return store.create_user(name, f"{name}@example.com", "correct horse").id


# -- the lifecycle --------------------------------------------------------------


def test_a_user_has_one_open_cart_and_checkout_closes_it(store: Store, sql: Sql) -> None:
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "4.50", 10)
    first = store.create_cart(alice)
    assert store.create_cart(alice).id == first.id  # the same open cart
    store.add_to_cart(first.id, tea.id, 2)
    order = store.checkout(first.id)
    assert store.get_cart(first.id).status == "closed"
    # The next cart is a new one; the sold one refuses changes, from raw SQL too.
    assert store.open_cart(alice).id != first.id
    with pytest.raises(CartClosed):
        store.set_quantity(first.id, tea.id, 1)
    line = "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (%s, %s, 1)"
    assert isinstance(_refused(sql, line, (first.id, tea.id)), psycopg.errors.CheckViolation)
    carts = "INSERT INTO carts (user_id) VALUES (%s), (%s)"
    assert isinstance(_refused(sql, carts, (alice, alice)), psycopg.errors.UniqueViolation)
    assert order.status == "placed"


def test_orders_keep_what_was_sold_as_it_was(store: Store) -> None:
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "4.50", 10)
    mug = store.create_product("Mug", "9.99", 3)
    shopper = store.for_user(alice)
    shopper.add(tea.id, 2)
    shopper.add(mug.id, 1)
    order = shopper.checkout()
    assert order.total == Decimal("18.99")
    store.update_product(tea.id, name="Green tea", price="5.00")
    store.delete_product(mug.id)
    again = store.get_order(order.id)
    assert [(i.product_id, i.name, i.unit_price, i.line_total) for i in again.items] == [
        (tea.id, "Tea", Decimal("4.50"), Decimal("9.00")),
        (None, "Mug", Decimal("9.99"), Decimal("9.99")),  # the product is gone, the line stays
    ]
    assert again.total == Decimal("18.99")
    assert again.created_at.utcoffset() is not None


def test_orders_move_placed_paid_shipped_or_cancelled(store: Store) -> None:
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "1.00", 10)
    shopper = store.for_user(alice)
    shopper.add(tea.id, 4)
    order = shopper.checkout()
    assert store.pay_order(order.id).status == "paid"
    with pytest.raises(InvalidTransition) as caught:
        store.pay_order(order.id)
    assert (caught.value.status, caught.value.wanted) == ("paid", "paid")
    assert store.ship_order(order.id).status == "shipped"
    with pytest.raises(InvalidTransition) as caught:
        store.cancel_order(order.id)
    assert caught.value.problem()["status"] == 409
    assert store.get_product(tea.id).inventory_count == 6

    shopper.add(tea.id, 2)
    second = shopper.checkout()
    cancelled = shopper.cancel(second.id)
    assert cancelled.status == "cancelled"
    assert store.get_product(tea.id).inventory_count == 6  # the 2 came back
    assert [o.id for o in shopper.orders()] == [second.id, order.id]  # newest first
    assert [o.id for o in shopper.orders(before_id=second.id)] == [order.id]
    assert shopper.orders(limit=1)[0].status == "cancelled"


def test_an_empty_cart_is_a_conflict_about_the_cart(store: Store) -> None:
    alice = _user(store, "alice")
    with pytest.raises(EmptyCart) as caught:
        store.for_user(alice).checkout()
    assert caught.value.http_status == 409
    cart = store.create_cart(alice)
    with pytest.raises(EmptyCart) as caught:
        store.checkout(cart.id)
    assert caught.value.details() == {"cart_id": cart.id}


# -- ownership ------------------------------------------------------------------


def test_every_cart_and_order_method_is_scoped_to_its_user(store: Store) -> None:
    alice, bob = _user(store, "alice"), _user(store, "bob")
    tea = store.create_product("Tea", "1.00", 10)
    store.for_user(alice).add(tea.id, 1)
    cart = store.for_user(alice).cart().id
    order = store.for_user(alice).checkout(cart)
    store.for_user(alice).add(tea.id, 1)
    open_cart = store.for_user(alice).cart().id
    as_bob: list[Callable[[], object]] = [
        lambda: store.get_cart(open_cart, user_id=bob),
        lambda: store.add_to_cart(open_cart, tea.id, 1, user_id=bob),
        lambda: store.set_quantity(open_cart, tea.id, 2, user_id=bob),
        lambda: store.remove_from_cart(open_cart, tea.id, user_id=bob),
        lambda: store.checkout(open_cart, user_id=bob),
        lambda: store.checkout(cart, user_id=bob),
        lambda: store.get_order(order.id, user_id=bob),
        lambda: store.cancel_order(order.id, user_id=bob),
        lambda: store.pay_order(order.id, user_id=bob),
        lambda: store.for_user(bob).order(order.id),
        lambda: store.for_user(bob).cancel(order.id),
        lambda: store.for_user(bob).checkout(cart),
    ]
    for call in as_bob:
        with pytest.raises(NotFound):  # not "forbidden": ids must not leak
            call()
    assert store.for_user(bob).orders().items == []
    # Nothing changed for Alice.
    assert store.get_order(order.id).status == "placed"
    assert [i.quantity for i in store.for_user(alice).cart().items] == [1]
    assert store.for_user(alice).checkout(cart) == order  # her retry still works


# -- races ---------------------------------------------------------------------


def test_twenty_checkouts_of_one_cart_make_one_order_and_twenty_equal_answers(
    racing_store: Store,
) -> None:
    store = racing_store
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "2.00", 100)
    cart = store.create_cart(alice).id
    store.add_to_cart(cart, tea.id, 3)

    answers = together([lambda: store.checkout(cart)] * 20)

    assert refusals(answers) == []  # every one of them is answered with the order
    assert len({a.id for a in answers if isinstance(a, Order)}) == 1
    assert all(a == answers[0] for a in answers)
    assert store.get_product(tea.id).inventory_count == 97
    assert len(store.list_orders(alice)) == 1


def test_concurrent_cancels_return_the_stock_exactly_once(racing_store: Store) -> None:
    store = racing_store
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "2.00", 10)
    store.for_user(alice).add(tea.id, 4)
    order = store.for_user(alice).checkout()

    answers = together([lambda: store.cancel_order(order.id)] * 16)

    refused = refusals(answers, InvalidTransition)
    assert [a.status for a in answers if isinstance(a, Order)] == ["cancelled"]
    assert len(refused) == 15
    assert store.get_product(tea.id).inventory_count == 10


def test_racing_shoppers_share_one_open_cart(racing_store: Store) -> None:
    store = racing_store
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "2.00", 100)

    answers = together([lambda: store.for_user(alice).add(tea.id, 1)] * 16)

    # Every add succeeds (stock is ample), whichever of them opened the cart.
    assert refusals(answers) == []
    assert {a.id for a in answers if not isinstance(a, Exception)} == {
        store.for_user(alice).cart().id
    }
    assert [i.quantity for i in store.for_user(alice).cart().items] == [16]


def test_racing_first_changes_to_a_new_shoppers_cart_all_succeed(racing_store: Store) -> None:
    store = racing_store
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "2.00", 100)
    shopper, other = store.for_user(alice), store.for_user(_user(store, "bob"))

    sets = together([lambda: shopper.set_quantity(tea.id, 3)] * 8)
    clears = together([lambda: other.set_quantity(tea.id, 0)] * 8)

    assert refusals(sets + clears) == []
    assert [(i.product_id, i.quantity) for i in shopper.cart().items] == [(tea.id, 3)]
    assert other.cart().items == []


@pytest.fixture
def proxied_store(
    flavour: Flavour, shopdb_server: DatabaseFactory, committed_pool: Pool, loop_thread: LoopThread
) -> Iterator[tuple[Store, Any]]:
    """A store whose one connection goes through a proxy that can cut it."""
    with counting_proxy(committed_pool.target.url) as proxy:
        target = Target(parse_database_url(libpq_url(proxy.url())))
        settings = shopdb_server.settings(pool_size=1, prepared_statements=False)
        with pooled_store(flavour, target, settings, loop_thread) as store:
            yield store, proxy


def test_a_checkout_cut_off_after_its_commit_returns_the_same_order_when_retried(
    proxied_store: tuple[Store, Any],
) -> None:
    store, proxy = proxied_store
    alice = _user(store, "alice")
    tea = store.create_product("Tea", "2.00", 10)
    cart = store.create_cart(alice).id
    store.add_to_cart(cart, tea.id, 3)

    proxy.cut_after_next_commit()
    with pytest.raises(DatabaseUnavailable):
        store.checkout(cart)  # it committed; the answer was lost on the way
    assert proxy.was_cut.is_set()

    order = store.checkout(cart)  # the client retries
    assert [(i.product_id, i.quantity) for i in order.items] == [(tea.id, 3)]
    assert store.get_product(tea.id).inventory_count == 7  # sold once
    assert [o.id for o in store.list_orders(alice)] == [order.id]
