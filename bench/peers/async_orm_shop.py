"""SQLAlchemy's async ORM as its documentation writes it, on ``postgresql+psycopg``.

``async_sessionmaker`` and an ``AsyncSession`` per operation, ``session.get``
and ``select()``; relationships loaded with ``selectinload`` (the async ORM
cannot lazy-load, and its docs load eagerly); read-modify-write for
``add_to_cart`` and ``checkout``, as :mod:`bench.peers.orm_shop` does (the
same mapped classes), so it races the same way: only its speed is measured.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import selectinload

from bench.peers.orm_shop import Cart, CartItem, OutOfStock, Product


class AsyncOrmShop:
    """Documentation-style async SQLAlchemy ORM: ``async with sessions() as session`` per call."""

    name = "async: SQLAlchemy ORM"

    def __init__(self, url: str, pool_size: int) -> None:
        self._engine = create_async_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=pool_size
        )
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str, pool_size: int) -> AsyncOrmShop:
        """The engine (it connects on first use)."""
        return cls(url, pool_size)

    async def get_product(self, product_id: int) -> object:
        async with self._sessions() as session:
            return await session.get(Product, product_id)

    async def list_products(self, after_id: int) -> object:
        async with self._sessions() as session:
            query = select(Product).where(Product.id > after_id).order_by(Product.id).limit(20)
            return (await session.scalars(query)).all()

    async def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        async with self._sessions() as session, session.begin():
            product = await session.get(Product, product_id)
            item = (
                await session.scalars(
                    select(CartItem).where(
                        CartItem.cart_id == cart_id, CartItem.product_id == product_id
                    )
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
            await session.flush()
            return item.id

    async def get_cart(self, cart_id: int) -> object:
        async with self._sessions() as session:
            cart = await session.get(
                Cart, cart_id, options=[selectinload(Cart.items).selectinload(CartItem.product)]
            )
            assert cart is not None
            lines = [
                (i.product_id, i.product.name, i.product.price, i.quantity) for i in cart.items
            ]
            return lines, sum((price * qty for _, _, price, qty in lines), Decimal(0))

    async def checkout(self, cart_id: int) -> object:
        async with self._sessions() as session, session.begin():
            cart = await session.get(
                Cart, cart_id, options=[selectinload(Cart.items).selectinload(CartItem.product)]
            )
            assert cart is not None
            for item in cart.items:
                if item.product.inventory_count < item.quantity:
                    raise OutOfStock(item.product_id)
            for item in cart.items:
                item.product.inventory_count -= item.quantity
                await session.delete(item)
            return cart_id

    async def close(self) -> None:
        await self._engine.dispose()
