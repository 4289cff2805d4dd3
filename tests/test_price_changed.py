"""What the shopper saw is what they pay: checkout's ``expected_total``, sync and async.

(The reference service sending it is in tests/test_shop_api.py.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from shopdb import Store
from shopdb.errors import InvalidInput, PriceChange, PriceChanged

from .flavours import Sql

PASSWORD = "correct horse battery"


def _shop(store: Store) -> tuple[int, int, int, int]:
    """A user, their cart with 2 lamps at 10.00 and 1 mug at 3.00 (total 23.00)."""
    user = store.create_user("shopper", "shopper@example.com", PASSWORD).id
    lamp = store.create_product("Lamp", "10.00", 5).id
    mug = store.create_product("Mug", "3.00", 5).id
    cart = store.create_cart(user).id
    store.add_to_cart(cart, lamp, 2)
    view = store.add_to_cart(cart, mug, 1)
    assert view.total == Decimal("23.00")
    return user, cart, lamp, mug


def _stock(sql: Sql, *products: int) -> list[int]:
    rows = sql(
        "SELECT inventory_count FROM products WHERE id = ANY(%s) ORDER BY id", (list(products),)
    )
    return [int(r[0]) for r in rows]


def test_a_line_records_the_price_it_went_in_at(store: Store, sql: Sql) -> None:
    _, cart, lamp, mug = _shop(store)
    recorded = (
        "SELECT product_id, unit_price FROM cart_items WHERE cart_id = %s ORDER BY product_id"
    )
    assert sql(recorded, (cart,)) == [(lamp, Decimal("10.00")), (mug, Decimal("3.00"))]
    store.update_product(lamp, price="12.50")
    assert sql(recorded, (cart,))[0] == (lamp, Decimal("10.00"))  # what the shopper saw
    store.add_to_cart(cart, lamp, 1)  # the view they get now shows 12.50
    assert sql(recorded, (cart,))[0] == (lamp, Decimal("12.50"))
    store.update_product(mug, price="4.00")
    store.set_quantity(cart, mug, 2)
    assert sql(recorded, (cart,))[1] == (mug, Decimal("4.00"))


def test_a_price_raised_after_add_sells_nothing_at_the_total_seen(store: Store, sql: Sql) -> None:
    _, cart, lamp, mug = _shop(store)
    store.update_product(lamp, price="999999999.99")
    with pytest.raises(PriceChanged) as caught:
        store.checkout(cart, expected_total="23.00")
    changed = caught.value
    assert (changed.expected_total, changed.actual_total) == (
        Decimal("23.00"),
        Decimal("2000000002.98"),
    )
    assert changed.changes == (PriceChange(lamp, Decimal("10.00"), Decimal("999999999.99")),)
    assert changed.problem()["status"] == 409
    assert changed.details() == {
        "actual_total": "2000000002.98",
        "changes": [
            {"product_id": lamp, "old_unit_price": "10.00", "new_unit_price": "999999999.99"}
        ],
    }
    # Nothing was sold: stock as it was, the cart open with its lines, no order.
    assert _stock(sql, lamp, mug) == [5, 5]
    view = store.get_cart(cart)
    assert (view.status, [i.quantity for i in view.items]) == ("open", [2, 1])
    assert sql("SELECT count(*) FROM orders") == [(0,)]


def test_at_the_right_total_it_sells_at_the_new_price(store: Store, sql: Sql) -> None:
    _, cart, lamp, mug = _shop(store)
    store.update_product(lamp, price="12.50")
    for seen in ("28.00", Decimal("28"), 28):
        order = store.checkout(cart, expected_total=seen)  # a retry returns the same order
        assert order.total == Decimal("28.00")
    assert [(i.product_id, i.unit_price) for i in order.items] == [
        (lamp, Decimal("12.50")),
        (mug, Decimal("3.00")),
    ]
    assert _stock(sql, lamp, mug) == [3, 4]
    # The order's lines keep the price charged, whatever the product costs later.
    store.update_product(lamp, price="1.00")
    assert store.get_order(order.id).items[0].unit_price == Decimal("12.50")
    assert sql("SELECT unit_price FROM order_items WHERE product_id = %s", (lamp,)) == [
        (Decimal("12.50"),)
    ]


def test_without_expected_total_it_sells_at_the_new_price_as_before(store: Store, sql: Sql) -> None:
    _, cart, lamp, mug = _shop(store)
    store.update_product(lamp, price="12.50")
    order = store.checkout(cart)
    assert order.total == Decimal("28.00")
    assert _stock(sql, lamp, mug) == [3, 4]


def test_a_total_that_fell_is_a_change_too(store: Store) -> None:
    _, cart, lamp, _ = _shop(store)
    store.update_product(lamp, price="9.00")
    with pytest.raises(PriceChanged) as caught:
        store.checkout(cart, expected_total="23.00")
    assert caught.value.actual_total == Decimal("21.00")


def test_the_shoppers_checkout_takes_it_too(store: Store, sql: Sql) -> None:
    user, _, lamp, mug = _shop(store)
    me = store.for_user(user)
    store.update_product(mug, price="3.50")
    with pytest.raises(PriceChanged) as caught:
        me.checkout(expected_total="23.00")
    assert [c.product_id for c in caught.value.changes] == [mug]
    assert _stock(sql, lamp, mug) == [5, 5]
    assert me.checkout(expected_total=me.cart().total).total == Decimal("23.50")


def test_lines_older_than_the_recorded_price_are_not_listed(store: Store, sql: Sql) -> None:
    _, cart, lamp, _ = _shop(store)
    sql("UPDATE cart_items SET unit_price = NULL WHERE cart_id = %s", (cart,))  # as before 0010
    store.update_product(lamp, price="11.00")
    with pytest.raises(PriceChanged) as caught:
        store.checkout(cart, expected_total="23.00")
    assert caught.value.changes == ()
    assert caught.value.actual_total == Decimal("25.00")


@pytest.mark.parametrize(
    "bad", ["10.001", "-1", "NaN", "1e3", " 23.00", 23.0, True, Decimal("Inf")]
)
def test_a_bad_expected_total_is_refused_and_sells_nothing(
    store: Store, sql: Sql, bad: object
) -> None:
    _, cart, lamp, mug = _shop(store)
    with pytest.raises(InvalidInput) as caught:
        store.checkout(cart, expected_total=bad)  # type: ignore[arg-type]
    assert caught.value.field == "expected_total"
    assert _stock(sql, lamp, mug) == [5, 5]


def test_an_empty_cart_is_still_an_empty_cart(store: Store) -> None:
    from shopdb.errors import EmptyCart

    user = store.create_user("shopper", "shopper@example.com", PASSWORD).id
    cart = store.create_cart(user).id
    with pytest.raises(EmptyCart):
        store.checkout(cart, expected_total="0.00")
