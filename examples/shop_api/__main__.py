"""``python -m examples.shop_api [--host H] [--port P]``: serve the app with uvicorn."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    """Serve :data:`examples.shop_api.app.app` until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m examples.shop_api", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SHOP_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_API_PORT", "8000")))
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run(
        "examples.shop_api.app:app", host=args.host, port=args.port, log_level=args.log_level
    )


if __name__ == "__main__":
    main()
