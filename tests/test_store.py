"""The Store's behaviour, method by method, inside the test's rolled-back transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from shopdb import Store, passwords
from shopdb.errors import (
    AlreadyExists,
    CartClosed,
    EmptyCart,
    InsufficientInventory,
    InvalidInput,
    NotFound,
)

from .flavours import Sql


def test_create_user_hashes_with_argon2id_and_returns_no_hash(store: Store, sql: Sql) -> None:
    user = store.create_user("alice", "Alice@Example.com", "correct horse")
    assert user.username == "alice"
    assert "password" not in user.model_dump_json()
    ((stored,),) = sql("SELECT password_hash FROM users WHERE id = %s", (user.id,))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "correct horse" not in stored
    assert store.get_user(user.id) == user


def test_usernames_and_emails_are_taken_regardless_of_case(store: Store) -> None:
    store.create_user("alice", "alice@example.com", "correct horse")
    with pytest.raises(AlreadyExists) as caught:
        store.create_user("ALICE", "other@example.com", "correct horse")
    assert caught.value.field == "username"
    with pytest.raises(AlreadyExists) as caught:
        store.create_user("bob", "Alice@EXAMPLE.com", "correct horse")
    assert caught.value.field == "email"


def test_authenticate_by_username_or_email_in_any_case(store: Store) -> None:
    user = store.create_user("alice", "alice@example.com", "correct horse")
    assert store.authenticate("alice", "correct horse") == user
    assert store.authenticate("ALICE", "correct horse") == user
    assert store.authenticate("Alice@Example.COM", "correct horse") == user
    assert store.authenticate("alice", "wrong horse") is None
    assert store.authenticate("nobody", "correct horse") is None
    assert store.authenticate("nobody\x00", "x") is None


def test_authenticate_does_the_same_argon2_work_for_unknown_logins_and_wrong_passwords(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_user("alice", "alice@example.com", "correct horse")
    derived: list[tuple[str, int]] = []
    real = passwords.derive

    def counting(settings: str, length: int, password: str) -> str | None:
        derived.append((settings, length))
        return real(settings, length, password)

    monkeypatch.setattr(passwords, "derive", counting)
    for login in ("alice", "nobody", "nobody@example.com", "nobody"):
        store.authenticate(login, "wrong horse")
    # The same parameters, salt length and digest length, known login or not.
    shapes = {(s.rsplit("$", 1)[0], len(s.rsplit("$", 1)[1]), n) for s, n in derived}
    assert shapes == {("$argon2id$v=19$m=19456,t=2,p=1", 22, 32)}
    # An unknown login's made-up salt is the same every time, as a real one is.
    assert derived[1] == derived[3]
    assert len({s for s, _ in derived}) == 3


def test_product_crud_and_exact_prices(store: Store) -> None:
    tea = store.create_product("Tea", "19.99", 7, description="Green")
    assert tea.price == Decimal("19.99")
    assert json.loads(tea.model_dump_json())["price"] == "19.99"
    assert store.get_product(tea.id) == tea
    changed = store.update_product(tea.id, price=Decimal("0.10"), description=None)
    assert (changed.price, changed.description, changed.name) == (Decimal("0.10"), None, "Tea")
    assert store.update_product(tea.id) == changed
    store.delete_product(tea.id)
    with pytest.raises(NotFound):
        store.get_product(tea.id)
    with pytest.raises(NotFound):
        store.delete_product(tea.id)


def test_update_product_refuses_nulls_and_unknown_fields(store: Store) -> None:
    tea = store.create_product("Tea", 1, 1)
    with pytest.raises(InvalidInput) as caught:
        store.update_product(tea.id, name=None)
    assert caught.value.field == "name"
    with pytest.raises(InvalidInput) as caught:
        store.update_product(tea.id, sku="T-1")
    assert caught.value.field == "sku"
    with pytest.raises(NotFound):
        store.update_product(2_000_000_000, name="x")


def test_list_products_pages_by_id(store: Store) -> None:
    made = [store.create_product(f"P{i}", i, i) for i in range(7)]
    start = made[0].id - 1
    first = store.list_products(after_id=start, limit=3)
    second = store.list_products(after_id=first[-1].id, limit=3)
    third = store.list_products(after_id=second[-1].id, limit=3)
    assert [p.id for p in [*first, *second, *third]] == [p.id for p in made]
    assert store.list_products(after_id=made[-1].id).items == []
    assert len(store.list_products()) >= 7


def test_adjust_inventory_is_atomic_and_never_below_zero(store: Store) -> None:
    tea = store.create_product("Tea", 1, 5)
    assert store.adjust_inventory(tea.id, -5) == 0
    with pytest.raises(InsufficientInventory) as caught:
        store.adjust_inventory(tea.id, -1)
    assert caught.value.shortages[0].wanted == 1
    assert caught.value.shortages[0].available == 0
    assert store.adjust_inventory(tea.id, 3) == 3
    with pytest.raises(InvalidInput) as overflow:
        store.adjust_inventory(tea.id, 2**31 - 1)
    assert overflow.value.field == "delta"


@pytest.fixture
def shop(store: Store) -> dict[str, int]:
    user = store.create_user("carol", "carol@example.com", "correct horse")
    tea = store.create_product("Tea", "4.50", 5)
    mug = store.create_product("Mug", "9.99", 2)
    cart = store.create_cart(user.id)
    return {"user": user.id, "tea": tea.id, "mug": mug.id, "cart": cart.id}


def test_add_to_cart_adds_to_the_line_within_stock(store: Store, shop: dict[str, int]) -> None:
    first = store.add_to_cart(shop["cart"], shop["tea"])
    assert [(i.product_id, i.quantity) for i in first.items] == [(shop["tea"], 1)]
    again = store.add_to_cart(shop["cart"], shop["tea"], 3)  # the view, in the same statement
    assert (again.id, again.status, again.total) == (shop["cart"], "open", Decimal("18.00"))
    assert [(i.product_id, i.quantity) for i in again.items] == [(shop["tea"], 4)]
    assert again == store.get_cart(shop["cart"])
    with pytest.raises(InsufficientInventory) as caught:
        store.add_to_cart(shop["cart"], shop["tea"], 2)
    assert (caught.value.shortages[0].wanted, caught.value.shortages[0].available) == (6, 5)
    assert store.get_cart(shop["cart"]).items[0].quantity == 4


def test_set_quantity_and_remove(store: Store, shop: dict[str, int]) -> None:
    assert store.set_quantity(shop["cart"], shop["tea"], 3).items[0].quantity == 3
    store.add_to_cart(shop["cart"], shop["mug"])
    view = store.set_quantity(shop["cart"], shop["tea"], 1)
    assert [(i.product_id, i.quantity) for i in view.items] == [(shop["tea"], 1), (shop["mug"], 1)]
    with pytest.raises(InsufficientInventory):
        store.set_quantity(shop["cart"], shop["tea"], 6)
    view = store.set_quantity(shop["cart"], shop["tea"], 0)
    assert [i.product_id for i in view.items] == [shop["mug"]]
    assert store.remove_from_cart(shop["cart"], shop["mug"]).items == []
    with pytest.raises(NotFound) as caught:
        store.remove_from_cart(shop["cart"], shop["mug"])
    assert str(caught.value) == f"cart {shop['cart']} holds no product with id {shop['mug']}"
    assert (caught.value.entity, caught.value.key) == ("cart item", shop["mug"])


def test_get_cart_shows_lines_and_exact_totals(store: Store, shop: dict[str, int]) -> None:
    store.add_to_cart(shop["cart"], shop["mug"], 2)
    store.add_to_cart(shop["cart"], shop["tea"], 3)
    view = store.get_cart(shop["cart"])
    assert [(i.product_id, i.name, i.quantity) for i in view.items] == [
        (shop["tea"], "Tea", 3),
        (shop["mug"], "Mug", 2),
    ]
    assert view.items[0].line_total == Decimal("13.50")
    assert view.total == Decimal("33.48")
    assert json.loads(view.model_dump_json())["total"] == "33.48"


def test_checkout_sells_everything_and_empties_the_cart(store: Store, shop: dict[str, int]) -> None:
    store.add_to_cart(shop["cart"], shop["tea"], 5)
    store.add_to_cart(shop["cart"], shop["mug"], 1)
    order = store.checkout(shop["cart"])
    assert (order.user_id, order.cart_id, order.status) == (shop["user"], shop["cart"], "placed")
    assert order.total == Decimal("32.49")
    assert [(i.product_id, i.name, i.unit_price, i.quantity) for i in order.items] == [
        (shop["tea"], "Tea", Decimal("4.50"), 5),
        (shop["mug"], "Mug", Decimal("9.99"), 1),
    ]
    assert store.get_product(shop["tea"]).inventory_count == 0
    assert store.get_product(shop["mug"]).inventory_count == 1
    closed = store.get_cart(shop["cart"])
    assert (closed.status, closed.items) == ("closed", [])
    # Checking the same cart out again is the same sale, not a second one.
    assert store.checkout(shop["cart"]) == order
    assert store.get_product(shop["mug"]).inventory_count == 1
    with pytest.raises(CartClosed):
        store.add_to_cart(shop["cart"], shop["mug"])
    fresh = store.create_cart(shop["user"])
    assert fresh.id != shop["cart"]
    with pytest.raises(EmptyCart):
        store.checkout(fresh.id)


def test_checkout_with_a_short_line_changes_nothing_and_lists_every_shortage(
    store: Store, shop: dict[str, int]
) -> None:
    store.add_to_cart(shop["cart"], shop["tea"], 5)
    store.add_to_cart(shop["cart"], shop["mug"], 2)
    store.adjust_inventory(shop["tea"], -2)
    store.adjust_inventory(shop["mug"], -1)
    before = store.get_cart(shop["cart"])
    with pytest.raises(InsufficientInventory) as caught:
        store.checkout(shop["cart"])
    assert {(s.product_id, s.wanted, s.available) for s in caught.value.shortages} == {
        (shop["tea"], 5, 3),
        (shop["mug"], 2, 1),
    }
    assert store.get_cart(shop["cart"]) == before
    assert store.get_product(shop["tea"]).inventory_count == 3


def test_missing_rows_are_not_found(store: Store, shop: dict[str, int]) -> None:
    missing = 2_000_000_000
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: store.get_user(missing), "user"),
        (lambda: store.create_cart(missing), "user"),
        (lambda: store.add_to_cart(missing, shop["tea"]), "cart"),
        (lambda: store.add_to_cart(shop["cart"], missing), "product"),
        (lambda: store.get_cart(missing), "cart"),
        (lambda: store.checkout(missing), "cart"),
        (lambda: store.adjust_inventory(missing, 1), "product"),
        (lambda: store.remove_from_cart(missing, shop["tea"]), "cart"),
        (lambda: store.get_order(missing), "order"),
        (lambda: store.cancel_order(missing), "order"),
    ]
    for call, entity in cases:
        with pytest.raises(NotFound) as caught:
            call()
        # Every NotFound names the kind and the id the caller passed.
        assert (caught.value.entity, caught.value.key) == (entity, missing)
        assert str(caught.value) == f"no {entity} with id {missing}"


def test_transaction_commits_together_or_not_at_all(store: Store, shop: dict[str, int]) -> None:
    with store.transaction() as tx:
        tx.add_to_cart(shop["cart"], shop["tea"], 2)
        tx.add_to_cart(shop["cart"], shop["mug"], 1)
    assert [i.quantity for i in store.get_cart(shop["cart"]).items] == [2, 1]

    def change_of_mind() -> None:
        with store.transaction() as tx:
            tx.checkout(shop["cart"])
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        change_of_mind()
    assert store.get_cart(shop["cart"]).status == "open"
    assert store.get_product(shop["tea"]).inventory_count == 5


def test_a_refused_call_leaves_the_callers_transaction_usable(
    store: Store, shop: dict[str, int]
) -> None:
    with pytest.raises(InsufficientInventory):
        store.add_to_cart(shop["cart"], shop["tea"], 99)
    with pytest.raises(AlreadyExists):
        store.create_user("carol", "x@example.com", "correct horse")
    assert store.add_to_cart(shop["cart"], shop["tea"], 1).items[0].quantity == 1
