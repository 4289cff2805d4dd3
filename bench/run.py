"""``make bench``: every implementation, every operation, concurrency 1 and 8, in one run.

Prints a table of ops/s, p50 and p99 latency and each implementation's ratio
to raw psycopg, and with ``--write-docs`` puts it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

import psycopg

from bench import workload
from bench.peers import pgbench_shop
from bench.peers.base import Shop
from bench.workload import Calls, Result, measure

IMPLEMENTATIONS = ("psycopg", "store", "orm", "django", "pgbench")
BASELINE = "raw psycopg"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _shop(kind: str, url: str, pool_size: int) -> Shop:
    if kind == "psycopg":
        from bench.peers.psycopg_shop import PsycopgShop

        return PsycopgShop(url, pool_size)
    if kind == "store":
        from bench.peers.store_shop import StoreShop

        return StoreShop(url, pool_size)
    if kind == "orm":
        from bench.peers.orm_shop import OrmShop

        return OrmShop(url, pool_size)
    from bench.peers.django_shop import DjangoShop

    return DjangoShop(url, pool_size)


def database_for(name: str) -> str:
    """A fresh, migrated scratch database ``name`` on BENCH_DATABASE_URL's server
    (else DATABASE_URL's, else the embedded one); returns its URL."""
    from shopdb.admin import create_database, drop_database
    from shopdb.config import load_settings
    from shopdb.connect import Target, libpq_url, resolve_target
    from shopdb.migrate import Migrator

    settings = load_settings()
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    server = resolve_target(base, settings, announce=True)
    target = Target(server.url.set(database=name), server.embedded)
    drop_database(target, settings)
    create_database(target, settings)
    Migrator(target, settings).run()
    return libpq_url(target.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--duration", type=float, default=0.5, help="seconds measured per slice (pgbench: >= 1)"
    )
    parser.add_argument("--warmup", type=float, default=0.1, help="seconds unrecorded per slice")
    parser.add_argument(
        "--rounds", type=int, default=6, help="slices per implementation in each cell"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--only", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument(
        "--operations", nargs="+", choices=workload.OPERATIONS, default=list(workload.OPERATIONS)
    )
    parser.add_argument("--database", default="shopdb_bench")
    parser.add_argument(
        "--write-docs", action="store_true", help="put the table into docs/performance.md"
    )
    args = parser.parse_args()

    url = database_for(args.database)
    pool_size = max(args.threads)
    shops = {kind: _shop(kind, url, pool_size) for kind in args.only if kind != "pgbench"}
    results: list[Result] = []
    try:
        for op in args.operations:
            for threads in args.threads:
                results += _cell(url, shops, op, threads, args)
    finally:
        for shop in shops.values():
            shop.close()
    table = render(results, args.threads, args.operations)
    print(table)
    if args.write_docs:
        _write_docs(table, url, args)


def _cell(
    url: str, shops: dict[str, Shop], op: str, threads: int, args: argparse.Namespace
) -> list[Result]:
    """One operation at one concurrency, every implementation, in interleaved slices.

    The machine's speed drifts by tens of percent from one second to the
    next (its neighbours), so each implementation runs in short slices taken
    in turn, and its figures are the sum of its slices: every implementation
    meets the same drift. The dataset is rebuilt before each cell, so all
    start from the same state and then share the changes writes make.
    """
    workload.rebuild(url)
    calls = Calls()
    kinds = [k for k in args.only if k != "pgbench" or op in pgbench_shop.OPERATIONS]
    merged: dict[str, Result] = {}
    for number in range(args.rounds):
        order = kinds[number % len(kinds) :] + kinds[: number % len(kinds)]
        for kind in order:
            if kind == "pgbench":
                part = pgbench_shop.run(url, op, threads, max(1.0, args.duration))
            else:
                part = measure(
                    shops[kind], calls, op, threads, warmup=args.warmup, duration=args.duration
                )
            merged[kind] = _add(merged.get(kind), part)
    for result in merged.values():
        _progress(result)
    return list(merged.values())


def _add(total: Result | None, part: Result) -> Result:
    if total is None:
        return part
    total.ops += part.ops
    total.seconds += part.seconds
    total.latencies_ns.extend(part.latencies_ns)
    total.errors.update(part.errors)
    return total


def _progress(r: Result) -> None:
    errors = f"  errors {dict(r.errors)}" if r.errors else ""
    print(
        f"   {r.implementation:<24} {r.operation:<14} c={r.threads:<2} {r.rate:>9.0f} ops/s"
        f"  p50 {r.percentile(0.5):6.3f} ms  p99 {r.percentile(0.99):6.3f} ms{errors}",
        file=sys.stderr,
    )


def render(results: list[Result], threads: list[int], operations: list[str]) -> str:
    """A Markdown table, grouped by operation and concurrency, with ratios to raw psycopg."""
    lines = [
        "| operation | threads | implementation | ops/s | p50 ms | p99 ms "
        "| vs raw psycopg | errors |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for op in operations:
        for n in threads:
            group = [r for r in results if r.operation == op and r.threads == n]
            base = next((r.rate for r in group if r.implementation == BASELINE), None)
            for r in group:
                ratio = f"{r.rate / base:.2f}x" if base else "-"
                errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or ""
                lines.append(
                    f"| {op} | {n} | {r.implementation} | {r.rate:,.0f} | "
                    f"{r.percentile(0.5):.3f} | {r.percentile(0.99):.3f} | {ratio} | {errors} |"
                )
    return "\n".join(lines)


def environment(url: str) -> str:
    """The machine and versions the table was measured on."""
    import django
    import psycopg as pg
    import sqlalchemy

    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return (
        f"- machine: {platform.machine()}, {os.cpu_count()} cores ({cpu}), {platform.system()}\n"
        f"- PostgreSQL {server[0] if server else '?'}; Python {platform.python_version()}; "
        f"psycopg {pg.__version__}; SQLAlchemy {sqlalchemy.__version__}; "
        f"Django {django.__version__}\n"
        f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def _write_docs(table: str, url: str, args: argparse.Namespace) -> None:
    text = DOCS.read_text()
    command = (
        "make bench"
        if sys.argv[1:] == ["--write-docs"]
        else "python -m bench.run " + " ".join(sys.argv[1:])
    )
    block = (
        f"{START}\n{environment(url)}\n- command: `{command}`: per cell, {args.rounds} "
        f"interleaved slices of {args.duration:g} s per implementation (pgbench: 1 s), "
        f"each after {args.warmup:g} s of warm-up\n\n{table}\n{END}"
    )
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    DOCS.write_text(before + block + after)


if __name__ == "__main__":
    main()
