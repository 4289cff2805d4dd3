"""The reference service on a bare driver: `make bench-e2e`'s data layer with no data layer.

The reference app (examples/shop_api), its Store dependency swapped for the least a
data layer can do on psycopg: a psycopg_pool ``AsyncConnectionPool``, the Store's own
statements prepared, the rows made into the same models by shopdb's own functions
(``product``, ``search.plan`` and ``search.page_of``): no runner, no retries, no error
translation, no pool healing. Beside the reference service it shows what shopdb's own
machinery costs per request; beside the limit, what FastAPI plus a bare psycopg round
trip reach at best. The two catalog endpoints only.
"""

from __future__ import annotations

import os
from typing import Any

from psycopg_pool import AsyncConnectionPool

from examples.shop_api.app import app, get_store
from shopdb.errors import NotFound
from shopdb.schemas import Page, ProductRead
from shopdb.store import products, search


class BareStore:
    """The two catalog reads of an AsyncStore, on psycopg_pool and nothing else."""

    def __init__(self) -> None:
        self.pool: AsyncConnectionPool | None = None

    async def _rows(self, sql: str, params: Any, *, prepare: bool) -> list[tuple[Any, ...]]:
        if self.pool is None:
            self.pool = AsyncConnectionPool(
                os.environ["DATABASE_URL"],
                min_size=10,
                max_size=10,
                kwargs={"autocommit": True},
                open=False,
            )
            await self.pool.open(wait=True)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params, prepare=prepare)
            return await cursor.fetchall()

    async def get_product(self, product_id: int) -> ProductRead:
        """The product, as the Store's ``get_product`` answers it."""
        rows = await self._rows(products.GET, (product_id,), prepare=True)
        if not rows:
            raise NotFound("product", product_id)
        return products.product(rows[0])

    async def search_products(self, query: str | None = None, **asked: Any) -> Page[ProductRead]:
        """The Store's search: its plan and page, the statement run on the bare pool."""
        checked = search.plan(query, **asked)
        rows = await self._rows(checked.sql, checked.params, prepare=checked.prepare)
        return search.page_of(checked, rows)


_store = BareStore()


async def _bare_store() -> BareStore:
    return _store


app.dependency_overrides[get_store] = _bare_store
