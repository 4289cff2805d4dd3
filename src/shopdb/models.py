"""The seed's ``models.rs``: ORM classes over :mod:`shopdb.schema`, and the ``New*`` inserts.

``User``, ``Product``, ``Cart`` and ``CartItem`` (and shopdb's ``Order``,
``OrderItem``, ``InventoryAdjustment``) are mapped onto the tables
of :mod:`shopdb.schema` (so there is one definition of each column), with the
relationships of the seed's diagram in both directions. Relationships load
nothing by themselves (``lazy="raise"``): a query says what it loads, e.g.
``select(Cart).options(selectinload(Cart.items))``.

The ``New*`` classes are the seed's ``Insertable`` structs, as pydantic input
schemas (see :mod:`shopdb.schemas`)::

    new = NewProduct(name="Tea", price="4.50", inventory_count=10)
    with pool.transaction() as session:
        session.add(Product(**new.insert_values()))
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from shopdb import schema
from shopdb.schemas import (
    CartItemRead,
    CartRead,
    NewCart,
    NewCartItem,
    NewProduct,
    NewUser,
    ProductRead,
    UserRead,
)

__all__ = [
    "Base",
    "Cart",
    "CartItem",
    "CartItemRead",
    "CartRead",
    "InventoryAdjustment",
    "NewCart",
    "NewCartItem",
    "NewProduct",
    "NewUser",
    "Order",
    "OrderItem",
    "Product",
    "ProductRead",
    "User",
    "UserRead",
]


class Base(DeclarativeBase):
    """Declarative base bound to :data:`shopdb.schema.metadata`."""

    metadata = schema.metadata


class User(Base):
    """A row of ``users``. Serialize it with :class:`UserRead`, which has no hash."""

    __table__ = schema.users

    id: Mapped[int]
    username: Mapped[str]
    email: Mapped[str]
    password_hash: Mapped[str]
    created_at: Mapped[datetime]
    role: Mapped[str]
    username_key: Mapped[str]

    carts: Mapped[list[Cart]] = relationship(
        back_populates="user", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r})"


class Product(Base):
    """A row of ``products``; ``price`` is an exact Decimal, ``description`` may be None."""

    __table__ = schema.products
    # The search document is the database's to keep (a trigger), not the model's.
    __mapper_args__ = {"exclude_properties": ["search"]}  # noqa: RUF012 (SQLAlchemy's own)

    id: Mapped[int]
    name: Mapped[str]
    description: Mapped[str | None]
    price: Mapped[Decimal]
    inventory_count: Mapped[int]
    #: Units on placed or paid orders (kept by checkout, ship and cancel).
    units_ordered: Mapped[int]

    cart_items: Mapped[list[CartItem]] = relationship(
        back_populates="product", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Product(id={self.id!r}, name={self.name!r}, price={self.price!r})"


class Cart(Base):
    """A row of ``carts``, belonging to a user."""

    __table__ = schema.carts

    id: Mapped[int]
    user_id: Mapped[int]
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="carts", lazy="raise")
    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart", lazy="raise", passive_deletes=True, order_by="CartItem.id"
    )

    def __repr__(self) -> str:
        return f"Cart(id={self.id!r}, user_id={self.user_id!r})"


class CartItem(Base):
    """A row of ``cart_items``: a quantity of one product in one cart."""

    __table__ = schema.cart_items

    id: Mapped[int]
    cart_id: Mapped[int]
    product_id: Mapped[int]
    quantity: Mapped[int]
    unit_price: Mapped[Decimal | None]

    cart: Mapped[Cart] = relationship(back_populates="items", lazy="raise")
    product: Mapped[Product] = relationship(back_populates="cart_items", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"CartItem(id={self.id!r}, cart_id={self.cart_id!r}, "
            f"product_id={self.product_id!r}, quantity={self.quantity!r})"
        )


class Order(Base):
    """A row of ``orders``: a sale. Serialize it with :class:`~shopdb.schemas.Order`."""

    __table__ = schema.orders

    id: Mapped[int]
    user_id: Mapped[int]
    cart_id: Mapped[int]
    status: Mapped[str]
    total: Mapped[Decimal]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", lazy="raise", passive_deletes=True, order_by="OrderItem.id"
    )

    def __repr__(self) -> str:
        return f"Order(id={self.id!r}, user_id={self.user_id!r}, status={self.status!r})"


class OrderItem(Base):
    """A row of ``order_items``: what one line of an order sold, as it was."""

    __table__ = schema.order_items

    id: Mapped[int]
    order_id: Mapped[int]
    product_id: Mapped[int | None]
    name: Mapped[str]
    unit_price: Mapped[Decimal]
    quantity: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")

    def __repr__(self) -> str:
        return f"OrderItem(id={self.id!r}, order_id={self.order_id!r}, name={self.name!r})"


class InventoryAdjustment(Base):
    """A row of ``inventory_adjustments``: stock received (or corrected) for a product."""

    __table__ = schema.inventory_adjustments

    id: Mapped[int]
    product_id: Mapped[int]
    delta: Mapped[int]
    created_at: Mapped[datetime]
