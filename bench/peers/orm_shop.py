"""The SQLAlchemy ORM written the way its tutorials write it.

A session per operation, lazy-loaded relationships (so ``get_cart`` issues one
query per line), and read-modify-write for ``add_to_cart`` and ``checkout``:
read the row, change the attribute in Python, flush. That last part is also
what makes it race (two requests read the same quantity); the benchmark only
measures its speed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    description: Mapped[str | None]
    price: Mapped[Decimal]
    inventory_count: Mapped[int]


class Cart(Base):
    __tablename__ = "carts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]
    created_at: Mapped[datetime]
    items: Mapped[list[CartItem]] = relationship(back_populates="cart")


class CartItem(Base):
    __tablename__ = "cart_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    cart: Mapped[Cart] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()


class OutOfStock(Exception):
    """Not enough inventory for a line."""


class OrmShop:
    """Tutorial-style SQLAlchemy ORM: ``with Session(engine) as session`` per call."""

    name = "SQLAlchemy ORM (naive)"

    def __init__(self, url: str, pool_size: int) -> None:
        self._engine = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=pool_size
        )

    def get_product(self, product_id: int) -> object:
        with Session(self._engine) as session:
            return session.get(Product, product_id)

    def list_products(self, after_id: int) -> object:
        with Session(self._engine) as session:
            query = select(Product).where(Product.id > after_id).order_by(Product.id).limit(20)
            return session.scalars(query).all()

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        with Session(self._engine) as session:
            product = session.get(Product, product_id)
            item = session.scalars(
                select(CartItem).where(
                    CartItem.cart_id == cart_id, CartItem.product_id == product_id
                )
            ).first()
            current = item.quantity if item else 0
            if product is None or current + quantity > product.inventory_count:
                raise OutOfStock(product_id)
            if item is None:
                item = CartItem(cart_id=cart_id, product_id=product_id, quantity=quantity)
                session.add(item)
            else:
                item.quantity = current + quantity
            session.commit()
            return item.id

    def get_cart(self, cart_id: int) -> object:
        with Session(self._engine) as session:
            cart = session.get(Cart, cart_id)
            assert cart is not None
            lines = [
                (i.product_id, i.product.name, i.product.price, i.quantity) for i in cart.items
            ]
            return lines, sum((price * qty for _, _, price, qty in lines), Decimal(0))

    def checkout(self, cart_id: int) -> object:
        with Session(self._engine) as session:
            cart = session.get(Cart, cart_id)
            assert cart is not None
            for item in cart.items:
                if item.product.inventory_count < item.quantity:
                    raise OutOfStock(item.product_id)
            for item in cart.items:
                item.product.inventory_count -= item.quantity
                session.delete(item)
            session.commit()
            return cart_id

    def close(self) -> None:
        self._engine.dispose()
