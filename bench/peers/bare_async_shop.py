"""A bare psycopg ``AsyncConnection``: the baseline the AsyncStore is held to.

:mod:`bench.peers.bare_shop` for ``async def`` code: the Store's connection
settings, one cursor kept per connection, the Store's statements prepared,
rows left as tuples. Tasks take a connection from a stack and put it back
(no await between, so no lock is needed): one task, one connection; eight
tasks, one each.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow

from bench.peers.bare_shop import store_connection_kwargs
from shopdb.store import carts, orders, products


class BareAsyncShop:
    """The Store's statements on bare psycopg AsyncConnections, one per task."""

    name = "async: bare psycopg"

    def __init__(self, cursors: list[psycopg.AsyncCursor[TupleRow]]) -> None:
        self._all = cursors
        self._free = list(cursors)

    @classmethod
    async def open(cls, url: str, pool_size: int) -> BareAsyncShop:
        """``pool_size`` connections, as the Store's pool would open them."""
        kwargs = store_connection_kwargs(pool_size)
        conns = [await psycopg.AsyncConnection.connect(url, **kwargs) for _ in range(pool_size)]
        return cls([conn.cursor() for conn in conns])

    async def _run(self, sql: str, params: Any, fetch_all: bool) -> object:
        cursor = self._free.pop()
        try:
            await cursor.execute(sql, params, prepare=True)
            return await (cursor.fetchall() if fetch_all else cursor.fetchone())
        finally:
            self._free.append(cursor)

    async def get_product(self, product_id: int) -> object:
        return await self._run(products.GET, (product_id,), False)

    async def list_products(self, after_id: int) -> object:
        return await self._run(products.PAGE, (after_id, 20), True)

    async def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        params = {"cart": cart_id, "user": None, "product": product_id, "qty": quantity}
        return await self._run(carts.ADD, params, True)

    async def get_cart(self, cart_id: int) -> object:
        return await self._run(carts.VIEW, {"cart": cart_id, "user": None}, True)

    async def checkout(self, cart_id: int) -> object:
        params = {"cart": cart_id, "user": None, "expected": None}
        return await self._run(orders.CHECKOUT, params, True)

    async def close(self) -> None:
        for cursor in self._all:
            await cursor.connection.close()
