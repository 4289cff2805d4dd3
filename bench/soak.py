"""``make soak``: the mixed workload for minutes, and proof that nothing was lost.

32 threads share a pool of 10 connections and run the mix (50% get, 20%
list, 15% add_to_cart, 10% get_cart, 5% checkout), each as a user of its
own (``store.for_user``), cancelling every tenth order it placed. A ledger
keeps every order whose checkout or cancel was acknowledged. At the end the
database must agree, from its tables alone: for every product, stock now
plus units in orders not cancelled equals the stock it received
(``inventory_adjustments``); every acknowledged order is there, as it was
acknowledged; no negative stock, no zero-quantity or duplicate line, no
line in a closed cart, no user with two open carts, no two users equal up to
case. A checkout cut off by a fault (``DatabaseUnavailable``) may or may not
have committed: the conservation check holds either way, so nothing needs
settling by guesswork.

The workload, the ledger and the invariants are the tests' own
(``tests/faults_support.py``): this runs them for longer and reports figures.
The fault tests in ``tests/test_faults.py`` run the same workload while they
restart or cut off the server.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psutil

from shopdb import Store
from tests.faults_support import Ledger, mixed_load, prepare, violations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    from bench.run import database_for
    from shopdb.config import load_settings
    from shopdb.connect import libpq_url
    from shopdb.db import establish_connection_pool

    url = database_for("shopdb_soak")
    settings = load_settings(pool_size=args.pool_size, max_overflow=0, pool_timeout=60)
    pool = establish_connection_pool(url, settings=settings, announce=False)
    store = Store(pool)
    catalog = prepare(store)
    ledger = Ledger()
    process = psutil.Process()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    with mixed_load(store, catalog, ledger, threads=args.threads) as stop:
        while not stop.wait(10):
            samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))
            if time.monotonic() - started >= args.minutes * 60:
                stop.set()
    problems = violations(store, catalog, ledger, libpq_url(pool.target.url))
    total = sum(ledger.ops.values())
    report = _report(args, ledger, total, time.monotonic() - started, samples, problems, pool)
    print(report)
    if args.write_docs:
        _write_docs(report)
    pool.close()
    if problems or ledger.unexpected:
        sys.exit(1)


def _report(
    args: argparse.Namespace,
    ledger: Ledger,
    total: int,
    seconds: float,
    samples: list[tuple[float, float]],
    problems: list[str],
    pool: object,
) -> str:
    settled = [rss for t, rss in samples if t >= 30] or [rss for _, rss in samples]
    lines = [
        f"- run: {args.minutes:g} min, {args.threads} threads on a pool of {args.pool_size}, "
        f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- operations: {total:,} ({total / seconds:,.0f}/s): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(ledger.ops.items())),
        f"- refused as business answers: {dict(ledger.refused) or 'none'}",
        f"- unexpected errors: {len(ledger.unexpected)}"
        + (f" (first: {ledger.unexpected[0]})" if ledger.unexpected else ""),
        f"- orders acknowledged: {len(ledger.orders):,} "
        f"({sum(o.status == 'cancelled' for o in ledger.orders.values()):,} cancelled); "
        "invariants: "
        + (
            "; ".join(problems)
            if problems
            else "all hold (stock + units ordered = stock received, for every product)"
        ),
        f"- memory (RSS) after 30 s: {min(settled):.1f} MiB min, {max(settled):.1f} MiB max, "
        f"{settled[-1]:.1f} MiB at the end",
        f"- pool at the end: {pool.status()}",  # type: ignore[attr-defined]
    ]
    return "\n".join(lines)


def _write_docs(report: str) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
    text = docs.read_text()
    start, end = "<!-- soak:start -->", "<!-- soak:end -->"
    before, rest = text.split(start, 1)
    docs.write_text(before + start + "\n" + report + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
