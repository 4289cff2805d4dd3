"""Where the reference service's CPU goes on one endpoint: py-spy under wrk.

``python -m bench.profile_service [--endpoint product] [--seconds 15]``: starts
the reference service (``python -m examples.shop_api``, one worker) under
``py-spy record`` on a benchmark database (``bench.e2e``'s), runs wrk against
one endpoint, and prints (py-spy leaves idle samples out: the loop waiting in
epoll) the share of the samples in which each layer is on
the stack (inclusive: a psycopg call made by shopdb counts for both), and the
share at the top of the stack (exclusive: where the CPU is spent itself).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench import e2e

#: Layers by the path of a frame's file, first match wins.
LAYERS = (
    ("shopdb", ("shopdb/",)),
    ("examples.shop_api", ("examples/shop_api/",)),
    ("psycopg_pool", ("psycopg_pool/",)),
    ("psycopg", ("psycopg/", "psycopg_binary/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("fastapi", ("fastapi/",)),
    ("starlette", ("starlette/",)),
    ("uvicorn", ("uvicorn/",)),
    ("uvloop", ("uvloop/",)),
    ("asyncio", ("asyncio/",)),
    ("anyio", ("anyio/",)),
)


def _layer(frame: str) -> str:
    for name, marks in LAYERS:
        if any(mark in frame for mark in marks):
            return name
    return "other"


def main() -> None:
    from bench.run import database_for

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", choices=e2e.ENDPOINTS[:2], default="product")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--database", default="shopdb_profile")
    parser.add_argument("--keep", type=Path, help="also write py-spy's folded stacks here")
    args = parser.parse_args()
    url = database_for(args.database)
    e2e._seed(url)
    port = e2e._free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env.update(DATABASE_URL=url, SHOP_API_SECRET=e2e.SECRET, PYTHONPATH=str(e2e.ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        folded = Path(tmp) / "profile.txt"
        spy = subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw"),
                *("--rate", "250", "--nonblocking", "-o", str(folded), "--"),
                *(sys.executable, "-m", "examples.shop_api", "--port", str(port)),
                *("--log-level", "warning"),
            ],
            cwd=e2e.ROOT,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/products/1", timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the service did not start"
                    time.sleep(0.2)
            service = e2e.Service("reference", base, spy)
            result = e2e._wrk(service, args.endpoint, args.seconds, Path(tmp))
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=120)
        if args.keep:
            args.keep.write_text(folded.read_text())
        inclusive: Counter[str] = Counter()
        exclusive: Counter[str] = Counter()
        total = 0
        for line in folded.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            samples = int(count)
            total += samples
            for layer in {_layer(f) for f in frames}:
                inclusive[layer] += samples
            exclusive[_layer(frames[-1])] += samples
    print(f"{args.endpoint}: {result.requests / result.seconds:,.0f} req/s under py-spy")
    print("| layer | on the stack (inclusive) | at the top (exclusive) |")
    print("|---|---:|---:|")
    for layer, _ in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        print(
            f"| {layer} | {100 * inclusive[layer] / total:.0f}% |"
            f" {100 * exclusive[layer] / total:.0f}% |"
        )


if __name__ == "__main__":
    main()
