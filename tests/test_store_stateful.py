"""Hypothesis drives the Store and an in-memory model of carts and stock side by side."""

from __future__ import annotations

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
from shopdb.errors import InsufficientInventory, InvalidInput, NotFound
from shopdb.testing import DatabaseFactory

from .flavours import Flavour, LoopThread, Sql, bound_store

PRICES = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)


class ShopModel(RuleBasedStateMachine):
    """Stock and carts as plain dicts; the database must always agree."""

    products = Bundle("products")
    carts = Bundle("carts")

    def __init__(self, opened: Callable[[], AbstractContextManager[tuple[Store, Sql]]]) -> None:
        super().__init__()
        # The same arrangement as the `store` fixture: one transaction per
        # example, rolled back in teardown.
        self._resources = ExitStack()
        self.store, _ = self._resources.enter_context(opened())
        self.user_id = self.store.create_user("model", "model@example.com", "correct horse").id
        self.stock: dict[int, int] = {}
        self.price: dict[int, Decimal] = {}
        self.lines: dict[int, dict[int, int]] = {}

    def teardown(self) -> None:
        self._resources.close()

    @rule(target=products, stock=st.integers(0, 20), price=PRICES)
    def create_product(self, stock: int, price: Decimal) -> int:
        product = self.store.create_product("Thing", price, stock)
        self.stock[product.id] = stock
        self.price[product.id] = price
        return product.id

    @rule(target=carts)
    def create_cart(self) -> int:
        cart = self.store.create_cart(self.user_id).id
        self.lines[cart] = {}
        return cart

    @rule(cart=carts, product=products, quantity=st.integers(1, 6))
    def add_to_cart(self, cart: int, product: int, quantity: int) -> None:
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
        assert self.store.add_to_cart(cart, product, quantity).quantity == wanted
        self.lines[cart][product] = wanted

    @rule(cart=carts, product=products, quantity=st.integers(0, 6))
    def set_quantity(self, cart: int, product: int, quantity: int) -> None:
        if product not in self.stock and quantity > 0:
            with pytest.raises(NotFound):
                self.store.set_quantity(cart, product, quantity)
            return
        if quantity > self.stock.get(product, 0):
            with pytest.raises(InsufficientInventory):
                self.store.set_quantity(cart, product, quantity)
            return
        self.store.set_quantity(cart, product, quantity)
        if quantity:
            self.lines[cart][product] = quantity
        else:
            self.lines[cart].pop(product, None)

    @rule(cart=carts, product=products)
    def remove_from_cart(self, cart: int, product: int) -> None:
        if product in self.lines[cart]:
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

    @rule(cart=carts)
    def checkout(self, cart: int) -> None:
        lines = self.lines[cart]
        short = {p: (q, self.stock[p]) for p, q in lines.items() if q > self.stock[p]}
        if not lines:
            with pytest.raises(InvalidInput):
                self.store.checkout(cart)
        elif short:
            with pytest.raises(InsufficientInventory) as caught:
                self.store.checkout(cart)
            reported = {s.product_id: (s.wanted, s.available) for s in caught.value.shortages}
            assert reported == short
        else:
            receipt = self.store.checkout(cart)
            assert receipt.total == sum(self.price[p] * q for p, q in lines.items())
            for product, quantity in lines.items():
                self.stock[product] -= quantity
            lines.clear()

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        for cart, lines in self.lines.items():
            view = self.store.get_cart(cart)
            assert {i.product_id: i.quantity for i in view.items} == lines
            assert view.total == sum(self.price[p] * q for p, q in lines.items())
        for product, stock in self.stock.items():
            assert self.store.get_product(product).inventory_count == stock


def test_store_agrees_with_a_model_of_carts_and_stock(
    flavour: Flavour,
    shopdb_server: DatabaseFactory,
    shopdb_target: Target,
    loop_thread: LoopThread,
) -> None:
    route = shopdb_server.pooled_target(shopdb_target.database)

    def opened() -> AbstractContextManager[tuple[Store, Sql]]:
        return bound_store(flavour, route, shopdb_server.settings(), loop_thread)

    run_state_machine_as_test(
        lambda: ShopModel(opened),  # type: ignore[arg-type]
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
