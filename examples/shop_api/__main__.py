"""``python -m examples.shop_api [--host H] [--port P]``: serve the app with uvicorn.

What one client can make the server hold is capped here and in the app:

* a request's headers: at most :data:`HEADERS_MAX` bytes (h11's incomplete-event
  limit), else the connection is closed with a 400;
* a request's body: at most 1 MiB, else a 413 problem before it is parsed
  (:mod:`examples.shop_api.body_limit`);
* requests in progress at once: :data:`CONCURRENCY_MAX`; past it uvicorn answers
  503 at once instead of queueing without bound;
* an idle keep-alive connection: closed after :data:`KEEP_ALIVE_SECONDS`.
"""

from __future__ import annotations

import argparse
import os

#: Most bytes of request line and headers (h11's default; said here so it is a choice).
HEADERS_MAX = 16 * 1024
#: Most requests served at once; the pool (10 connections) is the real limit behind it.
CONCURRENCY_MAX = 256
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_SECONDS = 5


def main(argv: list[str] | None = None) -> None:
    """Serve :data:`examples.shop_api.app.app` until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m examples.shop_api", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SHOP_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_API_PORT", "8000")))
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run(
        "examples.shop_api.app:app",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        h11_max_incomplete_event_size=HEADERS_MAX,
        limit_concurrency=CONCURRENCY_MAX,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
