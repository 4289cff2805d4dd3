"""``make bench-replicas``: reads on streaming replicas and failover, measured.

On a primary and two streaming replicas of it started for the run from the
embedded wheel's binaries (``tests/replication.py``), all on this machine:

* **catalog throughput**: ``get_product`` of a random product from 8 threads
  for a few seconds, on a pool with 0, 1 and 2 replicas (rounds interleaved,
  so drift hits every configuration alike);
* **what a read costs** on one thread: from the primary, from a replica,
  with a token a probe has seen replayed (no check), and with a token the
  replica must be asked about (the replay check, one more round trip); and
  what a token costs to take;
* **failover**: a writer writes in a loop on a multi-host DATABASE_URL; the
  primary stops (fast) and its replica is promoted; the time from the
  promotion to the first write the new primary acknowledged.

One machine cannot show scale-out: every server and the client share its
cores, so a replica adds no CPU, only work. What the figures do show is the
price of the routing itself, of read-your-writes, and of a failover.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from shopdb import Store
from shopdb.config import Settings
from shopdb.db import Pool, establish_connection_pool
from shopdb.errors import DatabaseUnavailable
from shopdb.migrate import migrator
from tests.replication import Cluster, Server

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
START, END = "<!-- replicas:start -->", "<!-- replicas:end -->"
THREADS = 8
PRODUCTS = 10_000
NEVER = 3600.0


def _settings(replicas: list[Server], **overrides: object) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "connect_retry": 0,
        "pool_size": THREADS,
        "replica_urls": ",".join(r.url() for r in replicas),
        "replica_max_lag": NEVER,
        "replica_probe_interval": 1.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def _pool(cluster: Cluster, replicas: int, **overrides: object) -> Iterator[Pool]:
    settings = _settings(cluster.replicas[:replicas], **overrides)
    with establish_connection_pool(
        cluster.primary.url(), settings=settings, announce=False
    ) as pool:
        yield pool


def _seed(cluster: Cluster) -> None:
    migrator(cluster.primary.url(), settings=_settings([])).run()
    cluster.primary.sql(
        "INSERT INTO products (name, price, inventory_count) "
        "SELECT 'Product ' || i, 1.00 + i %% 100, 1000 FROM generate_series(1, %s) AS i",
        (PRODUCTS,),
    )
    cluster.primary.sql("ANALYZE products")
    cluster.sync()


def throughput(cluster: Cluster, replicas: int, seconds: float) -> float:
    """Catalog reads per second from :data:`THREADS` threads on a pool with ``replicas``."""
    with _pool(cluster, replicas) as pool:
        store = Store(pool)
        for product_id in range(1, 200):  # warm every connection and the caches
            store.get_product(product_id)
        counts = [0] * THREADS
        stop = threading.Event()

        def reader(index: int) -> None:
            rng = random.Random(index)  # a reproducible workload
            done = 0
            while not stop.is_set():
                store.get_product(rng.randint(1, PRODUCTS))
                done += 1
            counts[index] = done

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(THREADS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if replicas and pool.replicas is not None:
            served = [r.served for r in pool.replicas.stats().replicas]
            assert sum(served) >= sum(counts), "reads did not go to the replicas"
    return sum(counts) / elapsed


def latencies(cluster: Cluster, calls: int, rounds: int) -> dict[str, float]:
    """Microseconds per call on one thread, for each way a read can go.

    Every variant runs one batch of ``calls`` per round, in turn, so drift on
    a shared machine hits them alike; the first round warms up and is dropped.
    """
    rng = random.Random(7)  # a reproducible workload

    def product_id() -> int:
        return rng.randint(1, PRODUCTS)

    with _pool(cluster, 0) as plain, _pool(cluster, 1, replica_probe_interval=NEVER) as routed:
        primary, store = Store(plain), Store(routed)
        replicas = routed.replicas
        assert replicas is not None
        replica = replicas.replicas[0]
        user = primary.create_user("bench", "bench@example.com", "correct horse battery")
        token = primary.freshness_token()
        cluster.sync()
        fresh = store.after(token)

        def checked() -> None:
            replica.replayed = 0  # forget what the last check learnt: check again
            fresh.get_product(product_id())

        variants: dict[str, Callable[[], object]] = {
            "`get_product` from the primary, no replicas configured": lambda: primary.get_product(
                product_id()
            ),
            "`get_product` from a replica": lambda: store.get_product(product_id()),
            "`get_product` from a replica, token checked there first": checked,
            # The check just before left the replica known to be past the token.
            "`get_product` from a replica, token known replayed (no check)": lambda: (
                fresh.get_product(product_id())
            ),
            "`get_user`, no replicas configured": lambda: primary.get_user(user.id),
            "`get_user`, replicas configured (routed to the primary)": lambda: store.get_user(
                user.id
            ),
            "`freshness_token()`": primary.freshness_token,
        }
        batches: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds + 1):
            for name, call in variants.items():
                started = time.perf_counter()
                for _ in range(calls):
                    call()
                batches[name].append((time.perf_counter() - started) / calls * 1e6)
        served = replicas.stats().replicas[0]
        assert served.behind == 0, "the replica was behind: checked reads went to the primary"
    return {name: statistics.median(values[1:]) for name, values in batches.items()}


def failover(hang_guard: float = 120.0) -> tuple[float, float, int]:
    """One failover under a writer: seconds from the old primary being down to the first
    write the new one acknowledged, of which ``pg_ctl promote``; and the failed writes."""
    with Cluster(replicas=1) as cluster:
        migrator(cluster.primary.url(), settings=_settings([])).run()
        old, new = cluster.primary, cluster.replicas[0]
        url = f"postgresql://postgres@{old.host},{new.host}/shopdb"
        settings = _settings([], pool_size=2, pool_timeout=hang_guard)
        with establish_connection_pool(url, settings=settings, announce=False) as pool:
            store = Store(pool)
            acknowledged: list[float] = []
            failures = 0
            stop = threading.Event()

            def writer() -> None:
                nonlocal failures
                while not stop.is_set():
                    try:
                        store.create_product("Failover", "1.00", 1)
                    except DatabaseUnavailable:
                        failures += 1
                    else:
                        acknowledged.append(time.perf_counter())

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                while len(acknowledged) < 50:  # the writer is going
                    time.sleep(0.01)
                old.stop()
                down = time.perf_counter()  # from here on, only the new primary can say yes
                new.promote()
                promoted = time.perf_counter() - down
                deadline = down + hang_guard
                while not acknowledged or acknowledged[-1] <= down:
                    if time.perf_counter() > deadline:
                        raise RuntimeError("writes never resumed")
                    time.sleep(0.001)
            finally:
                stop.set()
                thread.join()
            first = next(t for t in acknowledged if t > down)
            return first - down, promoted, failures


def main() -> None:
    # The pool logs every failed reconnection during a failover: expected here.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per setup")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput round")
    parser.add_argument("--calls", type=int, default=1000, help="per latency batch")
    parser.add_argument("--batches", type=int, default=10, help="latency batches per variant")
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    rates: dict[int, list[float]] = {0: [], 1: [], 2: []}
    with Cluster(replicas=2) as cluster:
        _seed(cluster)
        for round_ in range(args.rounds):
            for replicas, measured in rates.items():
                rate = throughput(cluster, replicas, args.seconds)
                measured.append(rate)
                print(f"round {round_ + 1}, {replicas} replicas: {rate:,.0f} reads/s", flush=True)
        costs = latencies(cluster, args.calls, args.batches)
        for name, micros in costs.items():
            print(f"{name}: {micros:.0f} us", flush=True)
    failovers = []
    for round_ in range(args.failovers):
        result = failover()
        failovers.append(result)
        print(f"failover {round_ + 1}: {result}", flush=True)
    report = _report(rates, costs, failovers, args)
    print(report)
    if args.write_docs:
        text = DOCS.read_text()
        before, rest = text.split(START, 1)
        DOCS.write_text(before + START + "\n" + report + "\n" + END + rest.split(END, 1)[1])


def _report(
    rates: dict[int, list[float]],
    costs: dict[str, float],
    failovers: list[tuple[float, float, int]],
    args: argparse.Namespace,
) -> str:
    cpus = os.cpu_count()
    base = statistics.median(rates[0])
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        f"`make bench-replicas` on {cpus} cores shared by the client, the primary and "
        f"both replicas (PostgreSQL 18 from the embedded wheel, loopback TCP, "
        f"{PRODUCTS:,} products).",
        "",
        f"**Catalog reads**, `get_product` of a random product from {THREADS} threads, "
        f"{args.rounds} rounds of {args.seconds:g} s, interleaved (median, and the range):",
        "",
        "| replicas | reads/s | vs. primary only |",
        "|---|---|---|",
    ]
    for replicas, values in rates.items():
        median = statistics.median(values)
        lines.append(
            f"| {replicas} | {median:,.0f} ({min(values):,.0f} to {max(values):,.0f}) "
            f"| {median / base:.2f}x |"
        )
    lines += [
        "",
        f"**What one call costs**, one thread (median of {args.batches} batches of "
        f"{args.calls:,} calls, the variants taking turns):",
        "",
        "| call | µs |",
        "|---|---|",
    ]
    lines += [f"| {name} | {micros:.0f} |" for name, micros in costs.items()]
    resumed = [f[0] for f in failovers]
    promoting = [f[1] for f in failovers]
    failed = [f[2] for f in failovers]
    lines += [
        "",
        f"**Failover**, {len(failovers)} rounds: one writer in a loop on "
        "`postgresql://primary,replica/shopdb` (shopdb adds `target_session_attrs=read-write`), "
        "the primary stopped (`pg_ctl stop -m fast`), then the replica promoted (`pg_ctl "
        "promote`) at once:",
        "",
        "| from the old primary down | median | worst |",
        "|---|---|---|",
        f"| to the first write the new primary acknowledged | {statistics.median(resumed):.2f} s "
        f"| {max(resumed):.2f} s |",
        f"| of which `pg_ctl promote` | {statistics.median(promoting):.2f} s "
        f"| {max(promoting):.2f} s |",
        "",
        f"Writes that failed with `DatabaseUnavailable` meanwhile (then waited for a "
        f"connection): median {statistics.median(failed):g}, most {max(failed)}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
