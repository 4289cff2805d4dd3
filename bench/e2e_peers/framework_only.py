"""The reference service without its database: `make bench-e2e`'s framework floor.

This is the reference app itself (examples/shop_api: uvicorn, FastAPI, shopdb.web's
handlers and body limit, the same endpoint functions, the same response models),
with its Store dependency answering the two catalog endpoints from memory: the
products are read once, on the first request, and each page is built once (by
shopdb's own search plan and page code) and then served from a dict. So a request
costs everything the reference service does except the database round trip and
the Store's call. What it reaches against the limit (raw ASGI + asyncpg) is the
most any data layer could reach under this framework: the floor under issue
22's 0.6x target. Only ``GET /products/{id}`` and ``GET /products`` (no text).
"""

from __future__ import annotations

import os
from typing import Any

import psycopg

from examples.shop_api.app import app, get_store
from shopdb.errors import NotFound
from shopdb.schemas import Page, ProductRead
from shopdb.store import search
from shopdb.store.products import COLUMNS, product

#: Pages built at most (each distinct request's answer is kept).
PAGES_KEPT = 10_000


class MemoryStore:
    """The two catalog reads of an AsyncStore, from the products in memory."""

    def __init__(self) -> None:
        self.products: dict[int, ProductRead] = {}
        self.rows: list[tuple[Any, ...]] = []
        self.pages: dict[tuple[Any, ...], Page[ProductRead]] = {}

    def _load(self) -> None:
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            self.rows = conn.execute(f"SELECT {COLUMNS} FROM products ORDER BY id DESC").fetchall()
        self.products = {row[0]: product(row) for row in self.rows}

    async def get_product(self, product_id: int) -> ProductRead:
        """The product, as the Store's ``get_product`` answers it."""
        if not self.rows:
            self._load()
        found = self.products.get(product_id)
        if found is None:
            raise NotFound("product", product_id)
        return found

    async def search_products(self, query: str | None = None, **asked: Any) -> Page[ProductRead]:
        """Newest first from a cursor (the only search the benchmark asks for)."""
        key = (query, *sorted(asked.items()))
        page = self.pages.get(key)
        if page is not None:
            return page
        if not self.rows:
            self._load()
        checked = search.plan(query, **asked)
        filtered = any(asked.get(k) for k in ("min_price", "max_price", "in_stock"))
        if query or filtered or checked.sort != "newest":
            raise NotImplementedError("the framework floor serves newest-first pages only")
        after = checked.params.get("id")
        rows = [r for r in self.rows if after is None or r[0] < after][: checked.limit + 1]
        page = search.page_of(checked, rows)
        if len(self.pages) < PAGES_KEPT:
            self.pages[key] = page
        return page


_store = MemoryStore()


async def _memory_store() -> MemoryStore:
    return _store


app.dependency_overrides[get_store] = _memory_store
