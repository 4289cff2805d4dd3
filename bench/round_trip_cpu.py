"""Client CPU of one bare round trip, psycopg's async driver beside asyncpg, on uvloop.

``python -m bench.round_trip_cpu [--calls 5000] [--rounds 3]``: one connection
each, the e2e benchmark's product read (a prepared ``SELECT`` of one product by
id), awaited one after the other; ``time.process_time`` over the calls (the
client process only: the server's work is not counted). What the whole data
layer of a request may cost is bounded below by this: the driver's part alone,
with no pool, no Store, no model. docs/performance.md ("The whole request")
sets it beside the framework floor of ``make bench-e2e``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import asyncpg
import psycopg
import uvloop

SQL = "SELECT id, name, description, price, inventory_count FROM products WHERE id = %s"
PRODUCTS = 1000


async def _psycopg(url: str, calls: int) -> float:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cursor = conn.cursor()
        for i in range(500):  # prepared, warm
            await cursor.execute(SQL, (i % PRODUCTS + 1,), prepare=True)
            await cursor.fetchone()
        began = time.process_time()
        for i in range(calls):
            await cursor.execute(SQL, (i % PRODUCTS + 1,), prepare=True)
            await cursor.fetchone()
        return (time.process_time() - began) / calls * 1e6


async def _asyncpg(url: str, calls: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        statement = await conn.prepare(SQL.replace("%s", "$1"))
        for i in range(500):
            await statement.fetchrow(i % PRODUCTS + 1)
        began = time.process_time()
        for i in range(calls):
            await statement.fetchrow(i % PRODUCTS + 1)
        return (time.process_time() - began) / calls * 1e6
    finally:
        await conn.close()


async def measure(url: str, calls: int, rounds: int) -> dict[str, list[float]]:
    """Microseconds of client CPU per round trip, per driver, one figure per round."""
    figures: dict[str, list[float]] = {"psycopg (async)": [], "asyncpg": []}
    for _ in range(rounds):
        figures["psycopg (async)"].append(await _psycopg(url, calls))
        figures["asyncpg"].append(await _asyncpg(url, calls))
    return figures


def main() -> None:
    from bench.run import database_for

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = database_for("shopdb_round_trip")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (name, description, price, inventory_count)"
            " SELECT 'Product ' || k, 'A product of the benchmark', 9.99, 1000"
            " FROM generate_series(1, %s) k",
            (PRODUCTS,),
        )
    figures = uvloop.run(measure(url, args.calls, args.rounds))
    for driver, values in figures.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"{driver:<16} median {statistics.median(values):5.0f} us CPU per round trip ({shown})"
        )


if __name__ == "__main__":
    main()
