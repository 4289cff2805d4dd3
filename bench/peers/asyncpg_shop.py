"""Raw asyncpg: the fastest async PostgreSQL driver, the limit for ``async def`` code.

The Store's own statements, their ``%(name)s`` and ``%s`` placeholders
turned into asyncpg's ``$1`` (:func:`dollar_params`), prepared (asyncpg's
statement cache), rows left as asyncpg ``Record``\\s; one bare connection per
task as in :mod:`bench.peers.bare_async_shop`, so the two differ by the
driver alone. asyncpg is a bench dependency only: shopdb runs on psycopg.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from shopdb.store import carts, orders, products

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")


def dollar_params(sql: str) -> tuple[str, list[str]]:
    """``sql`` with psycopg placeholders as ``$n``, and the parameter names in ``$n`` order
    (positional ``%s`` are named ``"0"``, ``"1"``, ... by position)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1) or str(sum(1 for n in names if n.isdigit()))
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql), names


_GET, _ = dollar_params(products.GET)
_PAGE, _ = dollar_params(products.PAGE)
_ADD, _ADD_NAMES = dollar_params(carts.ADD)
_VIEW, _VIEW_NAMES = dollar_params(carts.VIEW)
_CHECKOUT, _CHECKOUT_NAMES = dollar_params(orders.CHECKOUT)


class AsyncpgShop:
    """The Store's statements on bare asyncpg connections, one per task."""

    name = "async: asyncpg (bare)"

    def __init__(self, conns: list[Any]) -> None:
        self._all = conns
        self._free = list(conns)

    @classmethod
    async def open(cls, url: str, pool_size: int) -> AsyncpgShop:
        """``pool_size`` connections (asyncpg prepares and caches every statement)."""
        return cls([await asyncpg.connect(url) for _ in range(pool_size)])

    async def _fetch(self, sql: str, *args: object) -> object:
        conn = self._free.pop()
        try:
            return await conn.fetch(sql, *args)
        finally:
            self._free.append(conn)

    async def get_product(self, product_id: int) -> object:
        conn = self._free.pop()
        try:
            return await conn.fetchrow(_GET, product_id)
        finally:
            self._free.append(conn)

    async def list_products(self, after_id: int) -> object:
        return await self._fetch(_PAGE, after_id, 20)

    async def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        params = {"cart": cart_id, "user": None, "product": product_id, "qty": quantity}
        return await self._fetch(_ADD, *(params[n] for n in _ADD_NAMES))

    async def get_cart(self, cart_id: int) -> object:
        params = {"cart": cart_id, "user": None}
        return await self._fetch(_VIEW, *(params[n] for n in _VIEW_NAMES))

    async def checkout(self, cart_id: int) -> object:
        params = {"cart": cart_id, "user": None, "expected": None, "key": None}
        return await self._fetch(_CHECKOUT, *(params[n] for n in _CHECKOUT_NAMES))

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
