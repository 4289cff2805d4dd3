"""A cap on request bodies: a body over :data:`BODY_MAX` bytes is a 413 before it is parsed.

An ASGI middleware, so it holds for every route and for what FastAPI does
before a route runs (JSON parsing, validation): a ``Content-Length`` over the
cap is refused at once, without reading the body; a chunked body is read up
to the cap and refused as soon as it passes it. At most ``BODY_MAX`` bytes of
one request are ever held in memory.

:func:`shopdb.web.install` adds it (``body_max=None`` leaves it out); any
ASGI app can use it alone: ``app.add_middleware(BodyLimit, limit=...)``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shopdb.errors import ShopError

#: Largest request body accepted by default, in bytes. The largest valid body a shop
#: API takes is a product: a 200-character name and a 10,000-character description,
#: at most ~120 KiB as JSON even with every character escaped. 1 MiB leaves room.
BODY_MAX = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(ShopError):
    """The request body is larger than the app accepts (413 ``body_too_large``, ``limit``)."""

    code = "body_too_large"
    http_status = 413
    title = "The request body is too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"a request body may hold at most {limit:,} bytes")
        self.limit = limit

    def details(self) -> dict[str, Any]:
        """``{"limit": 1048576}``."""
        return {"limit": self.limit}


class BodyLimit:
    """Answer 413 (problem+json) to an HTTP request whose body passes ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = BODY_MAX) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, its body read first if it may have one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], then=receive), send)

    async def _refuse(self, send: Send) -> None:
        error = BodyTooLarge(self.limit)
        content = json.dumps(error.problem()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.http_status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A ``receive`` that gives ``messages`` first, then waits on ``then`` (a disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
