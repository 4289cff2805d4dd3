"""Models: JSON round trips, exact money, no password hash out, relationships both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, selectinload

from shopdb.errors import InvalidInput
from shopdb.models import (
    Cart,
    CartItem,
    CartItemRead,
    CartRead,
    NewCart,
    NewCartItem,
    NewProduct,
    NewUser,
    Product,
    ProductRead,
    User,
    UserRead,
)
from shopdb.schemas import CartLine, CartView, Order, OrderLine, OrderSummary, parse

NOW = datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=UTC)

LINE = CartLine(
    product_id=2, name="Tea", unit_price=Decimal("19.99"), quantity=2, line_total=Decimal("39.98")
)
READ_EXAMPLES: list[BaseModel] = [
    LINE,
    CartView(id=4, user_id=1, status="open", items=[LINE], total=Decimal("39.98")),
    Order(
        id=9,
        user_id=1,
        cart_id=4,
        status="placed",
        total=Decimal("39.98"),
        created_at=NOW,
        updated_at=NOW,
        items=[
            OrderLine(
                product_id=None,
                name="Tea",
                unit_price=Decimal("19.99"),
                quantity=2,
                line_total=Decimal("39.98"),
            )
        ],
    ),
    OrderSummary(
        id=9,
        user_id=1,
        cart_id=4,
        status="cancelled",
        total=Decimal("0.00"),
        created_at=NOW,
        updated_at=NOW,
    ),
    UserRead(id=1, username="alice", email="alice@example.com", created_at=NOW, role="staff"),
    ProductRead(id=2, name="Tea", description=None, price=Decimal("19.99"), inventory_count=7),
    ProductRead(id=3, name="Mug", description="Blue", price=Decimal("0.10"), inventory_count=0),
    CartRead(id=4, user_id=1, created_at=NOW),
    CartItemRead(id=5, cart_id=4, product_id=2, quantity=3),
]


@pytest.mark.parametrize("model", READ_EXAMPLES, ids=lambda m: type(m).__name__)
def test_read_models_round_trip_through_json(model: BaseModel) -> None:
    again = type(model).model_validate_json(model.model_dump_json())
    assert again == model
    assert type(model).model_json_schema()["type"] == "object"


INPUT_EXAMPLES: list[tuple[type[BaseModel], str]] = [
    (NewProduct, '{"name": "Tea", "price": "19.99", "inventory_count": 7}'),
    (NewProduct, '{"name": "Tea", "description": "Green", "price": "0.10", "inventory_count": 0}'),
    (NewCart, '{"user_id": 1}'),
    (NewCartItem, '{"cart_id": 1, "product_id": 2, "quantity": 3}'),
]


@pytest.mark.parametrize(("model", "payload"), INPUT_EXAMPLES)
def test_input_models_round_trip_through_json(model: type[BaseModel], payload: str) -> None:
    parsed = parse(model, payload)
    assert parse(model, parsed.model_dump_json()) == parsed


def test_price_is_exact_decimal_and_a_string_in_json() -> None:
    product = parse(NewProduct, '{"name": "Tea", "price": "19.99", "inventory_count": 1}')
    assert product.price == Decimal("19.99")
    assert str(product.price) == "19.99"
    assert '"price":"19.99"' in product.model_dump_json()
    cents = parse(NewProduct, '{"name": "x", "price": "0.1", "inventory_count": 1}').price
    assert cents + Decimal("0.2") == Decimal("0.3")


@pytest.mark.parametrize("price", [19.99, float("nan"), True])
def test_a_float_price_is_refused(price: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(NewProduct, {"name": "x", "price": price, "inventory_count": 1})
    assert caught.value.field == "price"


def test_description_is_optional() -> None:
    assert parse(NewProduct, {"name": "x", "price": "1", "inventory_count": 1}).description is None


def test_user_json_never_contains_the_password_or_its_hash() -> None:
    new = NewUser(username="alice", email="alice@example.com", password=SecretStr("correct horse"))
    assert "correct horse" not in new.model_dump_json()
    assert "correct horse" not in repr(new)
    assert "password_hash" not in UserRead.model_json_schema()["properties"]
    row = User(
        id=1,
        username="alice",
        email="a@x.io",
        password_hash="$argon2id$secret",
        created_at=NOW,
        role="customer",
    )
    public = UserRead.model_validate(row)
    assert "argon2" not in public.model_dump_json()
    assert "argon2" not in repr(row)
    values = new.insert_values()
    assert values["password_hash"].startswith("$argon2id$")
    assert "password" not in values


@pytest.mark.parametrize(
    ("model", "payload", "field"),
    [
        (NewProduct, {"name": "x", "price": "1", "inventory_count": 1, "sku": "A1"}, "sku"),
        (NewProduct, {"name": "x", "price": "1", "inventory_count": "1"}, "inventory_count"),
        (NewCart, {"user_id": "1"}, "user_id"),
        (NewCartItem, {"cart_id": 1, "product_id": 1, "quantity": 0}, "quantity"),
        (NewUser, {"username": "a", "email": "not-an-email", "password": "long enough"}, "email"),
        (
            NewUser,
            {"username": "a", "email": "a@x.io", "password": "long enough", "password_hash": "h"},
            "password_hash",
        ),
    ],
)
def test_input_models_reject_unknown_fields_and_wrong_types(
    model: type[BaseModel], payload: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(model, payload)
    assert caught.value.field == field


def test_orm_relationships_both_ways(db_session: Session) -> None:
    new_user = NewUser(
        username="carol", email="carol@example.com", password=SecretStr("long enough")
    )
    user = User(**new_user.insert_values())
    product = Product(
        **NewProduct(name="Tea", price=Decimal("4.50"), inventory_count=3).insert_values()
    )
    cart = Cart(user=user)
    item = CartItem(cart=cart, product=product, quantity=2)
    db_session.add_all([user, product, cart, item])
    db_session.commit()

    loaded = db_session.scalars(
        select(User)
        .where(User.id == user.id)
        .options(selectinload(User.carts).selectinload(Cart.items).selectinload(CartItem.product))
    ).one()
    assert loaded.carts[0].items[0].product.price == Decimal("4.50")
    assert loaded.carts[0].user is loaded
    assert loaded.carts[0].items[0].cart is loaded.carts[0]
    assert isinstance(loaded.created_at, datetime)
    assert UserRead.model_validate(loaded).username == "carol"
    assert ProductRead.model_validate(product).price == Decimal("4.50")


def test_relationships_do_not_load_behind_your_back(db_session: Session) -> None:
    user = User(username="dave", email="dave@example.com", password_hash="x")
    db_session.add(user)
    db_session.commit()
    db_session.expunge_all()
    fresh = db_session.get(User, user.id)
    assert fresh is not None
    with pytest.raises(InvalidRequestError):
        _ = fresh.carts
