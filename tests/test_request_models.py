"""The request bodies a shop API takes, and the pages its lists return.

The bodies (:class:`Credentials`, :class:`NewLine`, :class:`LineQuantity`,
:class:`ProductChanges`) are strict: a quantity of ``true``, ``"1"`` or
``1.5`` is refused with the field named and the reason in plain English,
never the value. ``ProductChanges`` says which fields the client sent, and
the Store takes it as it is. Every list method returns a ``Page`` whose
``next`` cursor walks the whole list once; the Store tests take both flavours.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from shopdb import Store
from shopdb.errors import InvalidInput
from shopdb.limits import INT_MAX, LOGIN_MAX, PASSWORD_MAX
from shopdb.schemas import (
    Credentials,
    LineQuantity,
    NewLine,
    OrderSummary,
    Page,
    ProductChanges,
    ProductRead,
    parse,
)

# -- strict bodies -----------------------------------------------------------

REFUSED_QUANTITIES: list[tuple[object, str]] = [
    (True, "must be an integer"),
    (False, "must be an integer"),
    ("1", "must be an integer"),
    (1.5, "must be an integer"),
    (None, "must be an integer"),
    ([1], "must be an integer"),
    (-1, "must be at least 1"),
    (0, "must be at least 1"),
    (INT_MAX + 1, f"must be at most {INT_MAX}"),
]


def _refusal(model: type[BaseModel], data: object) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse(model, data)
    (problem,) = caught.value.problems
    return problem.field, problem.reason


@pytest.mark.parametrize(("quantity", "reason"), REFUSED_QUANTITIES)
def test_a_new_line_refuses_a_quantity_that_is_not_a_whole_number_in_bounds(
    quantity: object, reason: str
) -> None:
    assert _refusal(NewLine, {"product_id": 1, "quantity": quantity}) == ("quantity", reason)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"product_id": 1, "quantity": true}', "quantity"),
        ('{"product_id": 1, "quantity": "1"}', "quantity"),
        ('{"product_id": 1, "quantity": 1.5}', "quantity"),
        ('{"product_id": true, "quantity": 1}', "product_id"),
        ('{"product_id": "7"}', "product_id"),
        ('{"product_id": 0}', "product_id"),
    ],
)
def test_json_bodies_are_as_strict(text: str, field: str) -> None:
    assert _refusal(NewLine, text)[0] == field


def test_a_refusal_never_holds_the_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(NewLine, {"product_id": 1, "quantity": "123456789123456789"})
    assert "123456789" not in str(caught.value)
    assert "123456789" not in str(caught.value.problem())


def test_a_whole_json_number_is_the_integer_json_schema_says_it_is() -> None:
    # JSON Schema's "integer" holds 2.0; refusing it would refuse what the schema allows.
    assert parse(NewLine, '{"product_id": 1, "quantity": 2.0}').quantity == 2
    assert parse(NewLine, {"product_id": 1}).quantity == 1  # the default


@pytest.mark.parametrize(("quantity", "reason"), REFUSED_QUANTITIES[:6])
def test_a_line_quantity_is_as_strict_and_zero_removes(quantity: object, reason: str) -> None:
    assert _refusal(LineQuantity, {"quantity": quantity}) == ("quantity", reason)
    assert parse(LineQuantity, {"quantity": 0}).quantity == 0
    assert _refusal(LineQuantity, {"quantity": -1}) == ("quantity", "must be at least 0")


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (NewLine, {"product_id": 1, "quantity": 1, "price": "0.01"}, "price"),
        (LineQuantity, {"quantity": 1, "product_id": 2}, "product_id"),
        (Credentials, {"login": "alice", "password": "x" * 8, "remember": True}, "remember"),
        (ProductChanges, {"name": "Tea", "sku": "T-1"}, "sku"),
    ],
)
def test_unknown_fields_are_refused_by_name(
    model: type[BaseModel], data: dict[str, Any], field: str
) -> None:
    assert _refusal(model, data) == (field, "is not a known field")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"login": "", "password": "x"}, "login"),
        ({"login": "a" * (LOGIN_MAX + 1), "password": "x"}, "login"),
        ({"login": "ali\x00ce", "password": "x"}, "login"),
        ({"login": 7, "password": "x"}, "login"),
        ({"login": "alice", "password": ""}, "password"),
        ({"login": "alice", "password": "x" * (PASSWORD_MAX + 1)}, "password"),
        ({"login": "alice", "password": "\ud800"}, "password"),
        ({"login": "alice"}, "password"),
    ],
)
def test_credentials_are_bounded(data: dict[str, Any], field: str) -> None:
    assert _refusal(Credentials, data)[0] == field


def test_credentials_keep_the_password_out_of_reprs_and_json() -> None:
    sent = parse(Credentials, '{"login": "Alice@Example.com", "password": "correct horse"}')
    assert sent.login == "Alice@Example.com"  # as typed: authenticate normalizes
    assert sent.password.get_secret_value() == "correct horse"
    assert "correct horse" not in repr(sent)
    assert "correct horse" not in sent.model_dump_json()
    schema = Credentials.model_json_schema()["properties"]["password"]
    assert (schema["format"], schema["writeOnly"]) == ("password", True)


def test_product_changes_give_only_the_fields_sent() -> None:
    assert parse(ProductChanges, "{}").given() == {}
    cleared = parse(ProductChanges, '{"description": null}')
    assert cleared.given() == {"description": None}  # null clears; the rest stays
    priced = parse(ProductChanges, '{"inventory_count": 3, "price": "1.50"}')
    assert priced.given() == {"price": Decimal("1.50"), "inventory_count": 3}
    # The trap given() avoids: model_dump() says "None" for every field not sent.
    assert priced.model_dump()["description"] is None
    assert "description" not in priced.given()
    assert _refusal(ProductChanges, '{"name": null}')[0] == "name"
    assert _refusal(ProductChanges, '{"inventory_count": true}')[0] == "inventory_count"


# -- the Store takes the PATCH body as it is --------------------------------------


def test_update_product_takes_product_changes(store: Store) -> None:
    tea = store.create_product("Tea", "4.50", 10, description="Green")
    changed = store.update_product(tea.id, parse(ProductChanges, '{"price": "5.00"}'))
    assert changed == tea.model_copy(update={"price": Decimal("5.00")})  # description kept
    cleared = store.update_product(tea.id, ProductChanges(description=None))
    assert cleared.description is None
    assert cleared.price == Decimal("5.00")
    assert store.update_product(tea.id, ProductChanges()) == cleared  # nothing sent


def test_update_product_takes_the_model_or_keywords_not_both(store: Store) -> None:
    tea = store.create_product("Tea", "4.50", 10)
    with pytest.raises(InvalidInput) as caught:
        store.update_product(tea.id, ProductChanges(name="Mint"), price="1.00")
    assert caught.value.field == "changes"
    with pytest.raises(InvalidInput) as caught:
        store.update_product(tea.id, {"name": "Mint"})  # type: ignore[arg-type]
    assert caught.value.field == "changes"
    assert store.get_product(tea.id) == tea


# -- pages ---------------------------------------------------------------------


def _walk(first: Page[Any], following: Any) -> list[Any]:
    """Every item of a list, following ``next`` from its first page."""
    pages = [first]
    while pages[-1].next is not None:
        pages.append(following(pages[-1].next))
        assert len(pages) < 100, "the cursors never reached the last page"
    assert all(page.items for page in pages[:-1])
    return [item for page in pages for item in page.items]


def test_list_products_pages_walk_the_catalog_once(store: Store) -> None:
    made = [store.create_product(f"P{i}", i, i) for i in range(7)]
    start = made[0].id - 1
    first = store.list_products(after_id=start, limit=3)
    assert isinstance(first, Page)
    assert len(first) == 3
    assert first.next is not None
    walked = _walk(first, lambda cursor: store.list_products(limit=3, cursor=cursor))
    assert [p.id for p in walked] == [p.id for p in made]  # each once, in order
    assert all(isinstance(p, ProductRead) for p in walked)
    # A page that ends exactly at the last product says so: no empty page after it.
    exact = store.list_products(after_id=made[3].id, limit=3)
    assert [p.id for p in exact] == [p.id for p in made[4:]]
    assert exact.next is None


def test_list_orders_and_shopper_orders_pages_walk_every_order_once(store: Store) -> None:
    alice = store.create_user("alice", "alice@example.com", "correct horse").id
    tea = store.create_product("Tea", "1.00", 100)
    shopper = store.for_user(alice)
    placed = []
    for _ in range(5):
        shopper.add(tea.id, 1)
        placed.append(shopper.checkout().id)
    newest_first = placed[::-1]
    first = store.list_orders(alice, limit=2)
    walked = _walk(first, lambda cursor: store.list_orders(alice, limit=2, cursor=cursor))
    assert [o.id for o in walked] == newest_first
    assert all(isinstance(o, OrderSummary) for o in walked)
    mine = _walk(shopper.orders(limit=2), lambda cursor: shopper.orders(limit=2, cursor=cursor))
    assert [o.id for o in mine] == newest_first
    everything = store.list_orders(alice, limit=5)
    assert (len(everything), everything.next) == (5, None)


def test_a_page_reads_as_the_list_it_replaces(store: Store) -> None:
    made = [store.create_product(f"Q{i}", i, i) for i in range(3)]
    page = store.list_products(after_id=made[0].id - 1, limit=3)
    assert [p.id for p in page] == [p.id for p in made]
    assert (page[0], page[-1], page[1:]) == (made[0], made[-1], made[1:])
    assert made[1] in page
    assert len(page) == 3
    empty = store.list_products(after_id=made[-1].id)
    assert not empty
    assert (empty.items, empty.next) == ([], None)
    assert page.model_dump(mode="json")["items"][0]["price"] == "0.00"


@pytest.mark.parametrize(
    "cursor",
    ["", "not a cursor!", "x" * 5000, "WzEsIm9yZGVycyIsMV0", "WzEsInByb2R1Y3RzIiwwXQ", "bnVsbA"],
)
def test_a_cursor_that_is_not_this_lists_is_refused(store: Store, cursor: str) -> None:
    # (an orders cursor, an id of 0, JSON null: each decodes, none is a products cursor)
    with pytest.raises(InvalidInput) as caught:
        store.list_products(cursor=cursor)
    assert (caught.value.field, caught.value.reason) == ("cursor", "is not a valid cursor")


def test_cursors_do_not_cross_lists_and_do_not_mix_with_ids(store: Store) -> None:
    made = [store.create_product(f"R{i}", i, i) for i in range(2)]
    products_cursor = store.list_products(after_id=made[0].id - 1, limit=1).next
    assert products_cursor is not None
    alice = store.create_user("alice", "alice@example.com", "correct horse").id
    with pytest.raises(InvalidInput) as caught:
        store.list_orders(alice, cursor=products_cursor)
    assert caught.value.field == "cursor"
    searched = store.search_products(limit=1).next
    assert searched is not None
    with pytest.raises(InvalidInput) as caught:
        store.list_products(cursor=searched)
    assert caught.value.field == "cursor"
    with pytest.raises(InvalidInput) as caught:
        store.list_products(after_id=made[0].id, cursor=products_cursor)
    assert (caught.value.field, caught.value.reason) == (
        "cursor",
        "must not be given with after_id",
    )
