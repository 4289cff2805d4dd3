"""``make bench``: every implementation, every operation, concurrency 1 and 8, in one run.

Sync implementations run on threads, async ones as tasks on one event loop
(kept for the whole run), and within a cell every one of them runs in turn,
slice by slice, so the machine's drift meets them all alike. Prints a table
of ops/s, p50 and p99 latency, each implementation's ratio to a bare psycopg
connection and to raw psycopg through a pool (sync rows to the sync ones,
async rows to the async ones) with the per-round spread of the first, then
the Store's CPU per call over the bare connection; ``--write-docs`` puts both
into docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from bench import cpu_cost, store_work, workload
from bench.async_workload import measure_async
from bench.peers import pgbench_shop
from bench.peers.base import AsyncShop, Shop
from bench.workload import Calls, Result, measure

if TYPE_CHECKING:
    from shopdb.config import Settings
    from shopdb.connect import Target

SYNC_KINDS = ("bare", "psycopg", "store", "orm", "django", "pgbench")
ASYNC_KINDS = ("async-bare", "async-psycopg", "async-store", "asyncpg", "async-orm")
IMPLEMENTATIONS = SYNC_KINDS + ASYNC_KINDS
#: The two baselines of each family: a bare connection, and raw psycopg through a pool.
BASELINES = {
    "sync": ("bare psycopg", "psycopg + pool"),
    "async": ("async: bare psycopg", "async: psycopg + pool"),
}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _shop(kind: str, url: str, pool_size: int) -> Shop:
    if kind == "bare":
        from bench.peers.bare_shop import BareShop

        return BareShop(url, pool_size)
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


async def _async_shop(kind: str, url: str, pool_size: int) -> AsyncShop:
    if kind == "async-bare":
        from bench.peers.bare_async_shop import BareAsyncShop

        return await BareAsyncShop.open(url, pool_size)
    if kind == "async-psycopg":
        from bench.peers.psycopg_async_shop import PsycopgAsyncShop

        return await PsycopgAsyncShop.open(url, pool_size)
    if kind == "async-store":
        from bench.peers.async_store_shop import AsyncStoreShop

        return await AsyncStoreShop.open(url, pool_size)
    if kind == "asyncpg":
        from bench.peers.asyncpg_shop import AsyncpgShop

        return await AsyncpgShop.open(url, pool_size)
    from bench.peers.async_orm_shop import AsyncOrmShop

    return await AsyncOrmShop.open(url, pool_size)


def family(implementation: str) -> str:
    """``"async"`` for an async implementation's name, else ``"sync"``."""
    return "async" if implementation.startswith("async:") else "sync"


def _bench_target(name: str) -> tuple[Target, Settings]:
    """Database ``name`` on BENCH_DATABASE_URL's server, else DATABASE_URL's, else the
    embedded one."""
    from shopdb.config import load_settings
    from shopdb.connect import Target, resolve_target

    settings = load_settings()
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    server = resolve_target(base, settings, announce=True)
    return Target(server.url.set(database=name), server.embedded), settings


def database_url_for(name: str) -> str:
    """The URL of the existing benchmark database ``name`` (see :func:`database_for`)."""
    from shopdb.connect import libpq_url

    return libpq_url(_bench_target(name)[0].url)


def database_for(name: str, *, migrated: bool = True) -> str:
    """A fresh scratch database ``name`` (every migration applied unless ``migrated``
    is false) on the benchmark server; returns its URL."""
    from shopdb.connect import libpq_url
    from shopdb.migrate import Migrator
    from shopdb.migrate.admin import create_database, drop_database

    target, settings = _bench_target(name)
    drop_database(target, settings)
    create_database(target, settings)
    if migrated:
        Migrator(target, settings).run()
    return libpq_url(target.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--duration",
        type=float,
        default=0.4,
        help="seconds measured per slice, after 0.2 s more (pgbench: >= 1 in all)",
    )
    parser.add_argument("--warmup", type=float, default=0.1, help="seconds unrecorded per slice")
    parser.add_argument(
        "--rounds", type=int, default=5, help="slices per implementation in each cell"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--only", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument(
        "--operations", nargs="+", choices=workload.OPERATIONS, default=list(workload.OPERATIONS)
    )
    parser.add_argument("--database", default="shopdb_bench")
    parser.add_argument(
        "--no-cpu",
        dest="cpu",
        action="store_false",
        help="skip the Store's CPU per call over a bare connection",
    )
    parser.add_argument(
        "--no-flash-sale",
        dest="flash_sale",
        action="store_false",
        help="skip the flash sale (bench/flash_sale.py: 8 and 64 shoppers, 10 s each)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="put the table into docs/performance.md"
    )
    args = parser.parse_args()

    url = database_for(args.database)
    pool_size = max(args.threads)
    # One event loop for the whole run: the async implementations run on it.
    with asyncio.Runner() as loop:
        results: list[Result] = []
        for op in args.operations:
            for threads in args.threads:
                results += _cell(url, pool_size, loop, op, threads, args)
        costs, work_table = _cpu_costs(url, pool_size, loop, args) if args.cpu else ([], "")
    table = render(results, args.threads, args.operations)
    print(table)
    cpu_table = cpu_cost.render(costs) + "\n\n" + work_table if costs else ""
    print(cpu_table)
    if args.write_docs:
        _write_docs(table, cpu_table, url, args)
    if args.flash_sale:
        _flash_sale(args.write_docs)


def _flash_sale(write_docs: bool) -> None:
    """The flash sale on a database of its own, beside pgbench (bench/flash_sale.py)."""
    from bench import flash_sale

    print("   flash sale ...", file=sys.stderr)
    url = database_for("shopdb_flash")
    settings = flash_sale.Sale()
    rows = flash_sale.run(url, settings.shoppers, settings.seconds, settings.rounds)
    table = flash_sale.render(rows)
    print(table)
    if write_docs:
        flash_sale.write_docs(table, environment(url), settings)


def _cpu_costs(
    url: str, pool_size: int, loop: asyncio.Runner, args: argparse.Namespace
) -> tuple[list[cpu_cost.Cost], str]:
    """The Store's CPU per call over the bare connection (and the AsyncStore's, when both
    async peers are in the run), on a rebuilt dataset; and the Store's own work without
    I/O, as a Markdown table."""
    from bench.peers.bare_shop import BareShop
    from bench.peers.store_shop import StoreShop

    if not {"bare", "store"} <= set(args.only):
        return [], ""
    print("   CPU per call, Store over bare connection ...", file=sys.stderr)
    workload.rebuild(url)
    store, bare = StoreShop(url, pool_size), BareShop(url, pool_size)
    try:
        calls = Calls()
        costs = cpu_cost.sync_costs(store, bare, calls)
        fresh = calls.fresh_cart()
        assert fresh is not None
        work = store_work.render(
            store_work.store_work(bare, fresh), store_work.pool_cycle(store.pool)
        )
    finally:
        store.close()
        bare.close()
    if {"async-store", "async-bare"} <= set(args.only):
        costs += loop.run(_async_cpu_costs(url, pool_size))
    return costs, work


async def _async_cpu_costs(url: str, pool_size: int) -> list[cpu_cost.Cost]:
    store = await _async_shop("async-store", url, pool_size)
    bare = await _async_shop("async-bare", url, pool_size)
    try:
        return await cpu_cost.async_costs(store, bare, Calls())
    finally:
        await store.close()
        await bare.close()


def _cell(
    url: str,
    pool_size: int,
    loop: asyncio.Runner,
    op: str,
    threads: int,
    args: argparse.Namespace,
) -> list[Result]:
    """One operation at one concurrency, every implementation, in interleaved slices.

    The machine's speed drifts by tens of percent from one second to the
    next (its neighbours), so each implementation runs in short slices taken
    in turn, and its figures are the sum of its slices: every implementation
    meets the same drift. The dataset is rebuilt before each cell, so all
    start from the same state and then share the changes writes make.
    Async implementations run ``threads`` tasks on the run's event loop.
    """
    workload.rebuild(url, checkout_carts=workload.CHECKOUT_SUPPLY.get(op, 0))
    calls = Calls()
    kinds = [k for k in args.only if k != "pgbench" or op in pgbench_shop.OPERATIONS]
    merged: dict[str, Result] = {}
    for number in range(args.rounds):
        order = kinds[number % len(kinds) :] + kinds[: number % len(kinds)]
        for kind in order:
            part = _slice(url, pool_size, loop, kind, calls, op, threads, args)
            merged[kind] = _add(merged.get(kind), part)
    for result in merged.values():
        _progress(result)
    return list(merged.values())


def _slice(
    url: str,
    pool_size: int,
    loop: asyncio.Runner,
    kind: str,
    calls: Calls,
    op: str,
    threads: int,
    args: argparse.Namespace,
) -> Result:
    """One slice of one implementation, on connections opened for it and closed after.

    Eleven implementations holding 8 connections each all run long would take
    88 of the server's 100 (shared with whoever else uses it), so each holds
    its connections only for its slice; its warm-up prepares the statements.
    """
    if kind == "pgbench":
        return pgbench_shop.run(url, op, threads, max(1.0, args.duration))
    if kind in ASYNC_KINDS:
        return loop.run(_async_slice(url, pool_size, kind, calls, op, threads, args))
    shop = _shop(kind, url, pool_size)
    try:
        return measure(shop, calls, op, threads, warmup=args.warmup, duration=args.duration)
    finally:
        shop.close()


async def _async_slice(
    url: str,
    pool_size: int,
    kind: str,
    calls: Calls,
    op: str,
    tasks: int,
    args: argparse.Namespace,
) -> Result:
    shop = await _async_shop(kind, url, pool_size)
    try:
        return await measure_async(
            shop, calls, op, tasks, warmup=args.warmup, duration=args.duration
        )
    finally:
        await shop.close()


def _add(total: Result | None, part: Result) -> Result:
    if total is None:
        return part
    total.ops += part.ops
    total.seconds += part.seconds
    total.latencies_ns.extend(part.latencies_ns)
    total.errors.update(part.errors)
    total.slice_rates.extend(part.slice_rates)
    return total


def _progress(r: Result) -> None:
    errors = f"  errors {dict(r.errors)}" if r.errors else ""
    print(
        f"   {r.implementation:<24} {r.operation:<14} c={r.threads:<2} {r.rate:>9.0f} ops/s"
        f"  p50 {r.percentile(0.5):6.3f} ms  p99 {r.percentile(0.99):6.3f} ms{errors}",
        file=sys.stderr,
    )


def render(results: list[Result], threads: list[int], operations: list[str]) -> str:
    """A Markdown table, grouped by operation and concurrency, with each row's ratios to
    its family's bare connection and pooled raw psycopg, and the spread of the first
    over the rounds (each round's slices ran back to back, so their ratio is paired)."""
    lines = [
        "| operation | conc. | implementation | ops/s | p50 ms | p99 ms "
        "| vs bare conn. | vs psycopg + pool | vs bare, per round | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for op in operations:
        for n in threads:
            group = [r for r in results if r.operation == op and r.threads == n]
            by_name = {r.implementation: r for r in group}
            for r in group:
                bare_name, pool_name = BASELINES[family(r.implementation)]
                bare, pool = by_name.get(bare_name), by_name.get(pool_name)
                errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or ""
                lines.append(
                    f"| {op} | {n} | {r.implementation} | {r.rate:,.0f} | "
                    f"{r.percentile(0.5):.3f} | {r.percentile(0.99):.3f} | "
                    f"{_ratio(r, bare)} | {_ratio(r, pool)} | {_spread(r, bare)} | {errors} |"
                )
    return "\n".join(lines)


def _ratio(result: Result, base: Result | None) -> str:
    return f"{result.rate / base.rate:.2f}x" if base and base.rate else "-"


def _spread(result: Result, base: Result | None) -> str:
    """The lowest and highest ratio of one round's slice to the baseline's slice."""
    if base is None or base is result or len(base.slice_rates) != len(result.slice_rates):
        return ""
    ratios = [a / b for a, b in zip(result.slice_rates, base.slice_rates, strict=True) if b]
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else ""


def environment(url: str) -> str:
    """The machine and versions the table was measured on."""
    import asyncpg
    import django
    import psycopg as pg
    import pydantic
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
        f"psycopg {pg.__version__}; pydantic {pydantic.VERSION}; "
        f"SQLAlchemy {sqlalchemy.__version__}; Django {django.__version__}; "
        f"asyncpg {asyncpg.__version__}\n"
        f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def _write_docs(table: str, cpu_table: str, url: str, args: argparse.Namespace) -> None:
    text = DOCS.read_text()
    command = (
        "make bench"
        if sys.argv[1:] == ["--write-docs"]
        else "python -m bench.run " + " ".join(sys.argv[1:])
    )
    cpu = (
        "\n\nClient CPU per call (`time.process_time`, one worker, the median of 10 "
        f"blocks of 200 calls each, Store and bare in turn):\n\n{cpu_table}"
    )
    block = (
        f"{START}\n{environment(url)}\n- command: `{command}`: per cell, {args.rounds} "
        f"interleaved slices of {args.duration + 0.2:g} s per implementation (pgbench: "
        f"{max(1, round(args.duration)):g} s), each after {args.warmup:g} s of warm-up\n\n"
        f"{table}{cpu if cpu_table else ''}\n{END}"
    )
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    DOCS.write_text(before + block + after)


if __name__ == "__main__":
    main()
