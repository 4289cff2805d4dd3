"""A bare psycopg connection, sync: the baseline the Store is held to.

One ``psycopg.connect`` per worker thread, no pool: the connection the Store
would open (the same ``connection_kwargs``: autocommit, the same session
settings), one cursor kept per connection, every statement the Store's own
and prepared (``prepare=True``, as the Store asks), rows left as the tuples
the driver returns. Nothing is checked, decoded or translated: whatever the
Store costs above this is the price of the Store.

Workers take a connection from a stack and put it back (``list.pop`` and
``list.append``, atomic under the GIL, a tenth of a microsecond): with one
thread that is always the same one connection, with eight, one each.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow

from shopdb.config import Settings
from shopdb.db.connections import connection_kwargs
from shopdb.store import carts, orders, products


def store_connection_kwargs(pool_size: int) -> dict[str, Any]:
    """The keyword arguments the Store's pool opens its connections with (bench settings)."""
    return connection_kwargs(Settings(_env_file=None, pool_size=pool_size, connect_retry=0))


class BareShop:
    """The Store's statements on bare psycopg connections, one per thread."""

    name = "bare psycopg"

    def __init__(self, url: str, pool_size: int) -> None:
        kwargs = store_connection_kwargs(pool_size)
        # A cursor per connection, kept (its connection is ``cursor.connection``).
        self._all: list[psycopg.Cursor[TupleRow]] = [
            psycopg.connect(url, **kwargs).cursor() for _ in range(pool_size)
        ]
        self._free = list(self._all)

    def _run(self, sql: str, params: Any, fetch_all: bool) -> object:
        cursor = self._free.pop()
        try:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall() if fetch_all else cursor.fetchone()
        finally:
            self._free.append(cursor)

    def get_product(self, product_id: int) -> object:
        return self._run(products.GET, (product_id,), False)

    def list_products(self, after_id: int) -> object:
        return self._run(products.PAGE, (after_id, 20), True)

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        params = {"cart": cart_id, "user": None, "product": product_id, "qty": quantity}
        return self._run(carts.ADD, params, True)

    def get_cart(self, cart_id: int) -> object:
        return self._run(carts.VIEW, {"cart": cart_id, "user": None}, True)

    def checkout(self, cart_id: int) -> object:
        return self._run(orders.CHECKOUT, {"cart": cart_id, "user": None, "expected": None}, True)

    def close(self) -> None:
        for cursor in self._all:
            cursor.connection.close()
