"""Raw psycopg through ``psycopg_pool.AsyncConnectionPool``: :mod:`bench.peers.psycopg_shop`
for ``async def`` code, the baseline of the AsyncStore's mix at concurrency 8."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from shopdb.store import carts, orders, products


class PsycopgAsyncShop:
    """Hand-written SQL on an AsyncConnectionPool; make it with :meth:`open` in the loop."""

    name = "async: psycopg + pool"

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, pool_size: int) -> PsycopgAsyncShop:
        """A pool of ``pool_size`` connections, all open."""
        pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
            url,
            min_size=pool_size,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            open=False,
        )
        await pool.open(wait=True)
        return cls(pool)

    async def get_product(self, product_id: int) -> object:
        async with self._pool.connection() as conn:
            return await (await conn.execute(products.GET, (product_id,))).fetchone()

    async def list_products(self, after_id: int) -> object:
        async with self._pool.connection() as conn:
            return await (await conn.execute(products.PAGE, (after_id, 20))).fetchall()

    async def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        params = {"cart": cart_id, "user": None, "product": product_id, "qty": quantity}
        async with self._pool.connection() as conn:
            return await (await conn.execute(carts.ADD, params)).fetchall()

    async def get_cart(self, cart_id: int) -> object:
        params = {"cart": cart_id, "user": None}
        async with self._pool.connection() as conn:
            return await (await conn.execute(carts.VIEW, params)).fetchall()

    async def checkout(self, cart_id: int) -> object:
        params = {"cart": cart_id, "user": None, "expected": None}
        async with self._pool.connection() as conn:
            return await (await conn.execute(orders.CHECKOUT, params)).fetchall()

    async def close(self) -> None:
        await self._pool.close()
