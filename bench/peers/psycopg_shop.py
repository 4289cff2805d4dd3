"""Raw psycopg 3 with psycopg_pool: the best hand-written SQL, nothing around it.

This is the Python limit: autocommit connections, server-side prepared
statements, one statement per operation, rows returned as the driver gives
them (tuples), no validation and no models. The statements are the Store's
own (one INSERT ... ON CONFLICT for add_to_cart, one CTE for checkout), so the
gap between the two is exactly what the Store adds around them.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from shopdb.store import carts, orders, products


class PsycopgShop:
    """Hand-written SQL on a psycopg_pool."""

    name = "psycopg + pool"

    def __init__(self, url: str, pool_size: int) -> None:
        self._pool = ConnectionPool(
            url,
            min_size=pool_size,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            open=True,
        )
        self._pool.wait()

    def get_product(self, product_id: int) -> object:
        with self._pool.connection() as conn:
            return conn.execute(products.GET, (product_id,)).fetchone()

    def list_products(self, after_id: int) -> object:
        with self._pool.connection() as conn:
            return conn.execute(products.PAGE, (after_id, 20)).fetchall()

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        params = {"cart": cart_id, "user": None, "product": product_id, "qty": quantity}
        with self._pool.connection() as conn:
            return conn.execute(carts.ADD, params).fetchall()

    def get_cart(self, cart_id: int) -> object:
        with self._pool.connection() as conn:
            return conn.execute(carts.VIEW, {"cart": cart_id, "user": None}).fetchall()

    def checkout(self, cart_id: int) -> object:
        params = {"cart": cart_id, "user": None, "expected": None}
        with self._pool.connection() as conn:
            return conn.execute(orders.CHECKOUT, params).fetchall()

    def close(self) -> None:
        self._pool.close()
