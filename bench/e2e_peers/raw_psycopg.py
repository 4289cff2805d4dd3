"""The limit of `make bench-e2e` on psycopg: :mod:`bench.e2e_peers.raw_api` with its driver swapped.

The same raw ASGI app, the same statements and bytes, on psycopg's async driver
through psycopg_pool (prepared statements, one cursor per request) instead of
asyncpg: the two catalog endpoints only. Beside the asyncpg limit it shows what
the driver alone costs per request, under the benchmark's load, with no
framework and no data layer around it.

``uvicorn bench.e2e_peers.raw_psycopg:app --loop uvloop --http httptools``
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from psycopg_pool import AsyncConnectionPool

from bench.e2e_peers.raw_api import _NEWEST, Receive, Scope, Send, _dumps, _product, _respond
from shopdb.errors import InvalidInput
from shopdb.limits import SEARCH_PAGE_DEFAULT
from shopdb.store import products, search

_FIRST = search.statement(
    text=False, sort="newest", low=False, high=False, in_stock=False, after=False
)
_AFTER = search.statement(
    text=False, sort="newest", low=False, high=False, in_stock=False, after=True
)
_pool: AsyncConnectionPool | None = None


async def _fetch(pool: AsyncConnectionPool, sql: str, params: Any) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params, prepare=True)
        return await cursor.fetchall()


async def _route(scope: Scope, pool: AsyncConnectionPool) -> tuple[int, bytes]:
    method, path = scope["method"], scope["path"]
    if method == "GET" and path.startswith("/products/"):
        rows = await _fetch(pool, products.GET, (int(path[10:]),))
        return (200, _dumps(_product(rows[0]))) if rows else (404, b"{}")
    if method == "GET" and path == "/products":
        query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
        limit = int(query["limit"][0]) if "limit" in query else SEARCH_PAGE_DEFAULT
        if "cursor" in query:
            try:
                _, last = search.decode_cursor(query["cursor"][0], "newest", _NEWEST)
            except InvalidInput as refused:
                return refused.http_status, _dumps(refused.problem())
            rows = await _fetch(pool, _AFTER, {"id": last, "limit": limit + 1})
        else:
            rows = await _fetch(pool, _FIRST, {"limit": limit + 1})
        following = None
        if len(rows) > limit:
            following = search.encode_cursor("newest", _NEWEST, None, rows[limit - 1][0])
        return 200, _dumps({"items": [_product(r) for r in rows[:limit]], "next": following})
    return 404, b"{}"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application: the lifespan opens the pool, every request is one statement."""
    global _pool  # noqa: PLW0603 (the process's one pool, opened by the lifespan)
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = AsyncConnectionPool(
                    os.environ["DATABASE_URL"],
                    min_size=10,
                    max_size=10,
                    kwargs={"autocommit": True},
                    open=False,
                )
                await _pool.open(wait=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _pool is not None
    status, body = await _route(scope, _pool)
    await _respond(send, status, body)
