"""The limit of `make bench-e2e`: a raw ASGI app on asyncpg, no framework.

The benchmark's endpoints only, their happy path only, on the Store's own
statements (asyncpg prepares and caches each one), the same bearer tokens
(:mod:`examples.shop_api.tokens`) and the same JSON bytes as the reference
service: a product and a page are written by hand (the page's cursor by
shopdb's own :func:`~shopdb.store.search.encode_cursor`, read back by
:func:`~shopdb.store.search.decode_cursor`: a cursor it refuses is shopdb's
422 problem), a cart and an order by shopdb's own row decoding and pydantic
models (what the JSON must look like). What it leaves out (validation of
every input, problem details for every other error, a pool that heals) is
what the other two services pay for.

``uvicorn bench.e2e_peers.raw_api:app --loop uvloop --http httptools``
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import asyncpg

from bench.peers.asyncpg_shop import dollar_params
from examples.shop_api import tokens
from shopdb.errors import InvalidInput
from shopdb.limits import SEARCH_PAGE_DEFAULT
from shopdb.store import carts, orders, products, search

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SECRET = os.environ.get("SHOP_API_SECRET", "").encode()
_GET, _ = dollar_params(products.GET)
#: The catalog's pages: ``search_products`` without words or filters, newest first.
_NEWEST = search.fingerprint(None, None, None, False, "newest")
_FIRST, _ = dollar_params(
    search.statement(text=False, sort="newest", low=False, high=False, in_stock=False, after=False)
)
_AFTER, _AFTER_NAMES = dollar_params(
    search.statement(text=False, sort="newest", low=False, high=False, in_stock=False, after=True)
)
_VIEW, _VIEW_NAMES = dollar_params(carts.VIEW)
_ADD, _ADD_NAMES = dollar_params(carts.ADD)
_CHECKOUT, _CHECKOUT_NAMES = dollar_params(orders.CHECKOUT)
_JSON = [(b"content-type", b"application/json")]
_PROBLEM = [(b"content-type", b"application/problem+json")]  # a 422: shopdb's problem
_pool: asyncpg.Pool | None = None


def _product(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "description": row[2],
        "price": str(row[3]),
        "inventory_count": row[4],
    }


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def _respond(send: Send, status: int, body: bytes) -> None:
    kind = _PROBLEM if status == 422 else _JSON
    headers = [*kind, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _user(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"authorization" and value.startswith(b"Bearer "):
            return tokens.verify(SECRET, value[7:].decode(), time.time())
    return None


def _args(names: list[str], **values: object) -> list[object]:
    return [values[name] for name in names]


async def _route(  # noqa: PLR0911 (one return per endpoint and outcome)
    scope: Scope, receive: Receive, pool: asyncpg.Pool
) -> tuple[int, bytes]:
    method, path = scope["method"], scope["path"]
    if method == "GET" and path.startswith("/products/"):
        row = await pool.fetchrow(_GET, int(path[10:]))
        return (200, _dumps(_product(row))) if row else (404, b"{}")
    if method == "GET" and path == "/products":
        query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
        limit = int(query["limit"][0]) if "limit" in query else SEARCH_PAGE_DEFAULT
        if "cursor" in query:
            try:
                _, last = search.decode_cursor(query["cursor"][0], "newest", _NEWEST)
            except InvalidInput as refused:
                return refused.http_status, _dumps(refused.problem())
            rows = await pool.fetch(_AFTER, *_args(_AFTER_NAMES, id=last, limit=limit + 1))
        else:
            rows = await pool.fetch(_FIRST, limit + 1)
        following = None
        if len(rows) > limit:  # one row more than the page: there is a next page
            following = search.encode_cursor("newest", _NEWEST, None, rows[limit - 1][0])
        return 200, _dumps({"items": [_product(r) for r in rows[:limit]], "next": following})
    user = _user(scope)
    if user is None:
        return 401, b"{}"
    if method == "GET" and path == "/cart":
        rows = await pool.fetch(_VIEW, *_args(_VIEW_NAMES, cart=None, user=user))
        return 200, carts.view_of([tuple(r) for r in rows]).model_dump_json().encode()
    if method == "POST" and path == "/cart/items":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        line = json.loads(body)
        params = _args(
            _ADD_NAMES, cart=None, user=user, product=line["product_id"], qty=line["quantity"]
        )
        rows = await pool.fetch(_ADD, *params)
        return 200, carts.view_of([tuple(r) for r in rows]).model_dump_json().encode()
    if method == "POST" and path == "/cart/checkout":
        rows = await pool.fetch(
            _CHECKOUT, *_args(_CHECKOUT_NAMES, cart=None, user=user, expected=None, key=None)
        )
        order = orders.order_of([tuple(r) for r in rows])
        return (201, order.model_dump_json().encode()) if order else (409, b"{}")
    return 404, b"{}"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application: the lifespan opens the pool, every request is one statement."""
    global _pool  # noqa: PLW0603 (the process's one pool, opened by the lifespan)
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    os.environ["DATABASE_URL"], min_size=10, max_size=10
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _pool is not None
    status, body = await _route(scope, receive, _pool)
    await _respond(send, status, body)
