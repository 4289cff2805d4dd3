"""Hypothesis drives the Store and an in-memory model of carts, stock and orders side by side.

The model knows every cart's lines and whether it is closed, every product's
stock and the stock it received, and every order's lines and status. After
every step the database must agree with it, and conservation must hold from
the tables alone: stock now + units in orders not cancelled = stock received.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from shopdb import Store
from shopdb.connect import Target
from shopdb.errors import (
    CartClosed,
    EmptyCart,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
)
from shopdb.schemas import Order
from shopdb.testing import DatabaseFactory

from .flavours import Flavour, LoopThread, Sql, bound_store

PRICES = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
CONSERVATION = """
SELECT p.id FROM products p
WHERE p.inventory_count
      + coalesce((SELECT sum(oi.quantity) FROM order_items oi JOIN orders o ON o.id = oi.order_id
                  WHERE oi.product_id = p.id AND o.status <> 'cancelled'), 0)
      <> coalesce((SELECT sum(delta) FROM inventory_adjustments WHERE product_id = p.id), 0)
"""


class ShopModel(RuleBasedStateMachine):
    """Stock, carts and orders as plain dicts; the database must always agree."""

    products = Bundle("products")
    carts = Bundle("carts")
    orders = Bundle("orders")

    def __init__(self, opened: Callable[[], AbstractContextManager[tuple[Store, Sql]]]) -> None:
        super().__init__()
        # The same arrangement as the `store` fixture: one transaction per
        # example, rolled back in teardown.
        self._resources = ExitStack()
        self.store, self.sql = self._resources.enter_context(opened())
        self._names = itertools.count()
        self.stock: dict[int, int] = {}
        self.price: dict[int, Decimal] = {}
        self.lines: dict[int, dict[int, int]] = {}
        self.closed: dict[int, Order] = {}  # cart -> the order it became
        self.status: dict[int, str] = {}  # order -> status

    def teardown(self) -> None:
        self._resources.close()

    @rule(target=products, price=PRICES, stock=st.integers(0, 8))
    def create_product(self, price: Decimal, stock: int) -> int:
        product = self.store.create_product("Thing", price, stock)
        self.stock[product.id] = stock
        self.price[product.id] = price
        return product.id

    @rule(target=carts)
    def open_cart(self) -> int:
        n = next(self._names)
        user = self.store.create_user(f"shopper{n}", f"shopper{n}@example.com", "correct horse")
        cart = self.store.create_cart(user.id).id
        self.lines[cart] = {}
        return cart

    @rule(cart=carts, product=products, quantity=st.integers(1, 6))
    def add_to_cart(self, cart: int, product: int, quantity: int) -> None:
        if cart in self.closed:
            with pytest.raises(CartClosed):
                self.store.add_to_cart(cart, product, quantity)
            return
        if product not in self.stock:
            with pytest.raises(NotFound):
                self.store.add_to_cart(cart, product, quantity)
            return
        wanted = self.lines[cart].get(product, 0) + quantity
        if wanted > self.stock[product]:
            with pytest.raises(InsufficientInventory) as caught:
                self.store.add_to_cart(cart, product, quantity)
            assert caught.value.shortages[0].wanted == wanted
            return
        view = self.store.add_to_cart(cart, product, quantity)
        self.lines[cart][product] = wanted
        assert {i.product_id: i.quantity for i in view.items} == self.lines[cart]

    @rule(cart=carts, product=products, quantity=st.integers(0, 6))
    def set_quantity(self, cart: int, product: int, quantity: int) -> None:
        if cart in self.closed:
            with pytest.raises(CartClosed):
                self.store.set_quantity(cart, product, quantity)
            return
        if product not in self.stock and quantity > 0:
            with pytest.raises(NotFound):
                self.store.set_quantity(cart, product, quantity)
            return
        if quantity > self.stock.get(product, 0):
            with pytest.raises(InsufficientInventory):
                self.store.set_quantity(cart, product, quantity)
            return
        view = self.store.set_quantity(cart, product, quantity)
        if quantity:
            self.lines[cart][product] = quantity
        else:
            self.lines[cart].pop(product, None)
        assert {i.product_id: i.quantity for i in view.items} == self.lines[cart]

    @rule(cart=carts, product=products)
    def remove_from_cart(self, cart: int, product: int) -> None:
        if cart in self.closed:
            with pytest.raises(CartClosed):
                self.store.remove_from_cart(cart, product)
        elif product in self.lines[cart]:
            self.store.remove_from_cart(cart, product)
            del self.lines[cart][product]
        else:
            with pytest.raises(NotFound):
                self.store.remove_from_cart(cart, product)

    @rule(product=products, delta=st.integers(-6, 6))
    def adjust_inventory(self, product: int, delta: int) -> None:
        if product not in self.stock:
            with pytest.raises(NotFound):
                self.store.adjust_inventory(product, delta)
        elif self.stock[product] + delta < 0:
            with pytest.raises(InsufficientInventory):
                self.store.adjust_inventory(product, delta)
        else:
            self.stock[product] += delta
            assert self.store.adjust_inventory(product, delta) == self.stock[product]

    @rule(product=products)
    def delete_product(self, product: int) -> None:
        if product not in self.stock:
            with pytest.raises(NotFound):
                self.store.delete_product(product)
            return
        self.store.delete_product(product)
        del self.stock[product]
        for lines in self.lines.values():
            lines.pop(product, None)

    @rule(target=orders, cart=carts)
    def checkout(self, cart: int) -> int:
        if cart in self.closed:
            # The same sale again: nothing is sold twice.
            again = self.store.checkout(cart)
            assert again.id == self.closed[cart].id
            # A deleted product's lines stay, with product_id None (and so sorted last).
            sold = [(i.product_id, i.name, i.unit_price, i.quantity) for i in again.items]
            kept = [
                (
                    i.product_id if i.product_id in self.stock else None,
                    i.name,
                    i.unit_price,
                    i.quantity,
                )
                for i in self.closed[cart].items
            ]
            assert sorted(sold, key=repr) == sorted(kept, key=repr)
            return again.id
        lines = self.lines[cart]
        short = {p: (q, self.stock[p]) for p, q in lines.items() if q > self.stock[p]}
        if not lines:
            with pytest.raises(EmptyCart):
                self.store.checkout(cart)
            return 0
        if short:
            with pytest.raises(InsufficientInventory) as caught:
                self.store.checkout(cart)
            reported = {s.product_id: (s.wanted, s.available) for s in caught.value.shortages}
            assert reported == short
            return 0
        order = self.store.checkout(cart)
        assert order.total == sum(self.price[p] * q for p, q in lines.items())
        assert {i.product_id: i.quantity for i in order.items} == lines
        for product, quantity in lines.items():
            self.stock[product] -= quantity
        self.closed[cart] = order
        self.status[order.id] = "placed"
        lines.clear()
        return order.id

    def _move(self, order: int, call: Callable[[int], Order], to: str, allowed: set[str]) -> None:
        if order == 0:
            return  # a checkout that placed no order
        if self.status[order] not in allowed:
            with pytest.raises(InvalidTransition) as caught:
                call(order)
            assert caught.value.status == self.status[order]
            return
        moved = call(order)
        assert moved.status == to
        if to == "cancelled":
            for line in moved.items:
                if line.product_id in self.stock:
                    self.stock[line.product_id] += line.quantity
        self.status[order] = to

    @rule(order=orders)
    def pay(self, order: int) -> None:
        self._move(order, self.store.pay_order, "paid", {"placed"})

    @rule(order=orders)
    def ship(self, order: int) -> None:
        self._move(order, self.store.ship_order, "shipped", {"paid"})

    @rule(order=orders)
    def cancel(self, order: int) -> None:
        self._move(order, self.store.cancel_order, "cancelled", {"placed", "paid"})

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        for cart, lines in self.lines.items():
            view = self.store.get_cart(cart)
            assert {i.product_id: i.quantity for i in view.items} == lines
            assert view.status == ("closed" if cart in self.closed else "open")
            assert view.total == sum(self.price[p] * q for p, q in lines.items())
        for product, stock in self.stock.items():
            assert self.store.get_product(product).inventory_count == stock
        for order, status in self.status.items():
            assert self.store.get_order(order).status == status

    @invariant()
    def stock_is_conserved_in_the_tables(self) -> None:
        assert self.sql(CONSERVATION) == []


def test_store_agrees_with_a_model_of_carts_stock_and_orders(
    flavour: Flavour,
    shopdb_server: DatabaseFactory,
    shopdb_target: Target,
    loop_thread: LoopThread,
) -> None:
    route = shopdb_server.pooled_target(shopdb_target.database)

    def opened() -> AbstractContextManager[tuple[Store, Sql]]:
        return bound_store(
            flavour, route, shopdb_server.settings(), loop_thread, as_role=shopdb_server.app_role
        )

    run_state_machine_as_test(
        lambda: ShopModel(opened),  # type: ignore[arg-type]
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
