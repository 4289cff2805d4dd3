"""shopdb's AsyncStore on ``establish_async_pool``, used as the README shows."""

from __future__ import annotations

from shopdb import AsyncStore, establish_async_pool
from shopdb.config import Settings
from shopdb.db import AsyncPool


class AsyncStoreShop:
    """shopdb.AsyncStore on shopdb's async pool; make it with :meth:`open` in the loop."""

    name = "async: shopdb AsyncStore"

    def __init__(self, pool: AsyncPool) -> None:
        self._pool = pool
        self._store = AsyncStore(pool)
        self.get_product = self._store.get_product
        self.get_cart = self._store.get_cart
        self.checkout = self._store.checkout
        self.add_to_cart = self._store.add_to_cart

    @classmethod
    async def open(cls, url: str, pool_size: int) -> AsyncStoreShop:
        """The AsyncStore on a pool of ``pool_size`` connections, all open."""
        settings = Settings(_env_file=None, pool_size=pool_size, connect_retry=0)
        pool = await establish_async_pool(url, settings=settings, announce=False)
        await pool.driver.wait()
        return cls(pool)

    async def list_products(self, after_id: int) -> object:
        return await self._store.list_products(after_id=after_id, limit=20)

    async def close(self) -> None:
        await self._pool.close()
