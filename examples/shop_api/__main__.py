"""``python -m examples.shop_api [--host H] [--port P] [--workers N]``: serve the app with uvicorn.

It runs as production would: uvloop's event loop and httptools' parser (the
``examples`` extra installs both), ``--workers`` processes (default 1; one per
core is the usual choice, each with its own pool of ``SHOPDB_POOL_SIZE``
connections, so the server must accept ``workers x (pool size + overflow)``).

What one client can make the server hold is capped here and in the app:

* a request's headers: at most :data:`HEADERS_MAX` bytes, else a 400 and the
  connection is closed (:mod:`examples.shop_api.header_limit`; with ``--http
  h11``, h11's incomplete-event limit at the same size);
* a request's body: at most 1 MiB, else a 413 problem before it is parsed
  (:class:`shopdb.web.BodyLimit`, added by ``shopdb.web.install``);
* requests in progress at once: :data:`CONCURRENCY_MAX` per worker; past it
  uvicorn answers 503 at once instead of queueing without bound;
* an idle keep-alive connection: closed after :data:`KEEP_ALIVE_SECONDS`.
"""

from __future__ import annotations

import argparse
import os

from .header_limit import HEADERS_MAX

__all__ = ["CONCURRENCY_MAX", "HEADERS_MAX", "KEEP_ALIVE_SECONDS", "main"]

#: Most requests served at once; the pool (10 connections) is the real limit behind it.
CONCURRENCY_MAX = 256
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_SECONDS = 5


def main(argv: list[str] | None = None) -> None:
    """Serve :data:`examples.shop_api.app.app` until interrupted."""
    import uvicorn

    from .header_limit import BoundedHttpToolsProtocol

    parser = argparse.ArgumentParser(prog="python -m examples.shop_api", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SHOP_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_API_PORT", "8000")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SHOP_API_WORKERS", "1")),
        help="worker processes (default 1; one per core in production)",
    )
    parser.add_argument(
        "--http",
        choices=("httptools", "h11"),
        default="httptools",
        help="the HTTP parser (httptools, the fast one, by default)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run(
        "examples.shop_api.app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol if args.http == "httptools" else "h11",
        log_level=args.log_level,
        h11_max_incomplete_event_size=HEADERS_MAX,
        limit_concurrency=CONCURRENCY_MAX,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
