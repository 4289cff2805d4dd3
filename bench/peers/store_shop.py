"""shopdb's Store, used as the README shows."""

from __future__ import annotations

from shopdb import Store, establish_connection_pool
from shopdb.config import Settings


class StoreShop:
    """shopdb.Store on shopdb's pool."""

    name = "shopdb Store"

    def __init__(self, url: str, pool_size: int) -> None:
        settings = Settings(_env_file=None, pool_size=pool_size, connect_retry=0)
        self.pool = establish_connection_pool(url, settings=settings, announce=False)
        self.pool.driver.wait()  # every connection open before the clock starts
        self._store = Store(self.pool)
        self.get_product = self._store.get_product
        self.get_cart = self._store.get_cart
        self.checkout = self._store.checkout
        self.add_to_cart = self._store.add_to_cart

    def list_products(self, after_id: int) -> object:
        return self._store.list_products(after_id=after_id, limit=20)

    def close(self) -> None:
        self.pool.close()
