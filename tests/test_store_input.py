"""Every bad input to the Store gets InvalidInput naming the field, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from shopdb import Store
from shopdb.errors import InvalidInput, NotFound

from .flavours import Sql

BIG = 2**31
# The store is Any here: these calls pass wrong types on purpose.
Call = Callable[[Any, dict[str, int]], object]


def _snapshot(sql: Sql) -> dict[str, list[Any]]:
    return {
        table: sql(f"SELECT * FROM {table} ORDER BY id")
        for table in ("users", "products", "carts", "cart_items")
    }


@pytest.fixture
def shop(store: Store) -> dict[str, int]:
    user = store.create_user("dora", "dora@example.com", "correct horse")
    tea = store.create_product("Tea", "4.50", 5)
    cart = store.create_cart(user.id)
    store.add_to_cart(cart.id, tea.id, 2)
    return {"user": user.id, "tea": tea.id, "cart": cart.id}


BAD: list[tuple[str, str, Call]] = [
    # quantities: zero, negative, over 2**31, wrong type
    ("quantity", "add zero", lambda s, k: s.add_to_cart(k["cart"], k["tea"], 0)),
    ("quantity", "add negative", lambda s, k: s.add_to_cart(k["cart"], k["tea"], -1)),
    ("quantity", "add 2**31", lambda s, k: s.add_to_cart(k["cart"], k["tea"], BIG)),
    ("quantity", "add float", lambda s, k: s.add_to_cart(k["cart"], k["tea"], 1.0)),
    ("quantity", "add bool", lambda s, k: s.add_to_cart(k["cart"], k["tea"], True)),
    ("quantity", "add str", lambda s, k: s.add_to_cart(k["cart"], k["tea"], "2")),
    ("quantity", "set negative", lambda s, k: s.set_quantity(k["cart"], k["tea"], -2)),
    ("quantity", "set 2**31", lambda s, k: s.set_quantity(k["cart"], k["tea"], BIG)),
    ("inventory_count", "stock negative", lambda s, k: s.create_product("x", 1, -1)),
    ("inventory_count", "stock 2**31", lambda s, k: s.create_product("x", 1, BIG)),
    ("inventory_count", "stock str", lambda s, k: s.create_product("x", 1, "3")),
    (
        "inventory_count",
        "update stock <0",
        lambda s, k: s.update_product(k["tea"], inventory_count=-1),
    ),
    ("delta", "delta 2**31", lambda s, k: s.adjust_inventory(k["tea"], BIG)),
    ("delta", "delta float", lambda s, k: s.adjust_inventory(k["tea"], 0.5)),
    # prices: negative, NaN, infinite, non-numeric, float
    ("price", "negative", lambda s, k: s.create_product("x", Decimal("-0.01"), 1)),
    ("price", "NaN", lambda s, k: s.create_product("x", Decimal("NaN"), 1)),
    ("price", "sNaN", lambda s, k: s.create_product("x", "sNaN", 1)),
    ("price", "Infinity", lambda s, k: s.create_product("x", "Infinity", 1)),
    ("price", "-Infinity", lambda s, k: s.create_product("x", Decimal("-Infinity"), 1)),
    ("price", "text", lambda s, k: s.create_product("x", "cheap", 1)),
    ("price", "float", lambda s, k: s.create_product("x", 4.5, 1)),
    ("price", "None", lambda s, k: s.create_product("x", None, 1)),
    ("price", "update NaN", lambda s, k: s.update_product(k["tea"], price="NaN")),
    # names: empty, blank, over-long, NUL, lone surrogate, wrong type
    ("name", "empty", lambda s, k: s.create_product("", 1, 1)),
    ("name", "blank", lambda s, k: s.create_product("   ", 1, 1)),
    ("name", "201 chars", lambda s, k: s.create_product("n" * 201, 1, 1)),
    ("name", "NUL", lambda s, k: s.create_product("Te\x00a", 1, 1)),
    ("name", "surrogate", lambda s, k: s.create_product("Te\ud800a", 1, 1)),
    ("name", "int", lambda s, k: s.create_product(42, 1, 1)),
    ("description", "NUL", lambda s, k: s.create_product("x", 1, 1, description="a\x00")),
    ("name", "update empty", lambda s, k: s.update_product(k["tea"], name="")),
    ("username", "empty", lambda s, k: s.create_user("", "e@example.com", "correct horse")),
    (
        "username",
        "65 chars",
        lambda s, k: s.create_user("u" * 65, "e@example.com", "correct horse"),
    ),
    ("username", "NUL", lambda s, k: s.create_user("a\x00b", "e@example.com", "correct horse")),
    ("username", "with @", lambda s, k: s.create_user("a@b", "e@example.com", "correct horse")),
    ("username", "bytes", lambda s, k: s.create_user(b"abc", "e@example.com", "correct horse")),
    # emails
    ("email", "no @", lambda s, k: s.create_user("eve", "example.com", "correct horse")),
    ("email", "no dot", lambda s, k: s.create_user("eve", "eve@localhost", "correct horse")),
    ("email", "space", lambda s, k: s.create_user("eve", "e ve@example.com", "correct horse")),
    ("email", "too long", lambda s, k: s.create_user("eve", "e" * 250 + "@x.io", "correct horse")),
    ("password", "too short", lambda s, k: s.create_user("eve", "eve@example.com", "short")),
    ("password", "int", lambda s, k: s.create_user("eve", "eve@example.com", 12345678)),
    # ids: zero, negative, over 2**31, wrong types
    ("cart_id", "zero", lambda s, k: s.add_to_cart(0, k["tea"])),
    ("cart_id", "2**31", lambda s, k: s.checkout(BIG)),
    ("cart_id", "str", lambda s, k: s.get_cart("1")),
    ("product_id", "negative", lambda s, k: s.get_product(-1)),
    ("product_id", "None", lambda s, k: s.delete_product(None)),
    ("user_id", "float", lambda s, k: s.create_cart(1.0)),
    ("after_id", "negative", lambda s, k: s.list_products(after_id=-1)),
    ("limit", "zero", lambda s, k: s.list_products(limit=0)),
    ("limit", "too many", lambda s, k: s.list_products(limit=10_001)),
    ("login", "int", lambda s, k: s.authenticate(1, "x")),
]
#: Well-formed ids of nothing: NotFound (a 404, not a bad field), naming kind and id.
UNKNOWN: list[tuple[str, Call]] = [
    ("product", lambda s, k: s.add_to_cart(k["cart"], BIG - 1)),
    ("user", lambda s, k: s.create_cart(BIG - 1)),
    ("cart", lambda s, k: s.set_quantity(BIG - 1, k["tea"], 1)),
    ("order", lambda s, k: s.cancel_order(BIG - 1)),
]


@pytest.mark.parametrize(
    ("field", "call"), [(f, c) for f, _, c in BAD], ids=[f"{f}: {c}" for f, c, _ in BAD]
)
def test_bad_input_is_refused_by_field_and_writes_nothing(
    store: Store, shop: dict[str, int], sql: Sql, field: str, call: Call
) -> None:
    before = _snapshot(sql)
    with pytest.raises(InvalidInput) as caught:
        call(store, shop)
    assert caught.value.field == field, str(caught.value)
    assert caught.value.reason
    assert _snapshot(sql) == before


@pytest.mark.parametrize(("entity", "call"), UNKNOWN, ids=[e for e, _ in UNKNOWN])
def test_unknown_ids_are_not_found_and_write_nothing(
    store: Store, shop: dict[str, int], sql: Sql, entity: str, call: Call
) -> None:
    before = _snapshot(sql)
    with pytest.raises(NotFound) as caught:
        call(store, shop)
    assert (caught.value.entity, caught.value.key) == (entity, BIG - 1)
    assert _snapshot(sql) == before
