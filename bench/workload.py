"""The benchmark's dataset and operations, the same for every implementation.

The dataset is ``shopdb seed``'s (10k products, 1k users, 1k carts with a
few lines each), plus what the write operations consume: stock raised so no
add or checkout runs out, and a supply of fresh two-line carts, each of a
buyer of its own, that checkout empties one by one. It is rebuilt before
each cell (one operation at one concurrency).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg

from bench.peers.base import AsyncShop, Shop
from tests.faults_support import MIX  # the soak's mix: one definition for both

PRODUCTS = 10_000
USERS = 1_000
CARTS = 1_000
SEED = 0
#: Fresh two-line carts made for checkout (ids CARTS + 1 ...), for the cells that check
#: out: a checkout cell at 8 threads empties ~200,000 over its slices of every peer. The
#: others get none (the rebuild then takes a second, not fifteen).
CHECKOUT_SUPPLY = {"checkout": 240_000, "mix": 30_000}
CHECKOUT_CARTS = max(CHECKOUT_SUPPLY.values())
PAGE = 20

OPERATIONS = ("get_product", "list_products", "add_to_cart", "get_cart", "checkout", "mix")


def rebuild(url: str, *, checkout_carts: int = CHECKOUT_CARTS) -> None:
    """Empty the tables, seed them, and add what the write operations consume:
    ``checkout_carts`` fresh carts (ids ``CARTS + 1`` on), one per buyer of its own."""
    from shopdb.names import username_key
    from shopdb.seeding import seed_database

    with psycopg.connect(url) as conn:
        seed_database(conn, products=PRODUCTS, users=USERS, carts=CARTS, seed=SEED, truncate=True)
        conn.execute("UPDATE products SET inventory_count = 10000000")
        # A user has one open cart at most (uq_carts_user_id_open): each fresh cart
        # gets a buyer of its own, user and cart k after the seed's.
        names = [f"buyer{k}" for k in range(1, checkout_carts + 1)]
        conn.execute(
            """
            INSERT INTO users (id, username, username_key, email, password_hash)
            SELECT %(users)s + k, name, key, name || '@example.com', ''
            FROM unnest(%(names)s::varchar[], %(keys)s::varchar[])
                 WITH ORDINALITY AS b(name, key, k)
            """,
            {"users": USERS, "names": names, "keys": [username_key(n) for n in names]},
        )
        conn.execute(
            "INSERT INTO carts (id, user_id) "
            "SELECT %(carts)s + k, %(users)s + k FROM generate_series(1, %(n)s::int) k",
            {"carts": CARTS, "users": USERS, "n": checkout_carts},
        )
        # Two distinct products per fresh cart, spread over the catalog.
        conn.execute(
            """
            INSERT INTO cart_items (cart_id, product_id, quantity)
            SELECT c, (c::bigint * 7919) %% 5000 + 1, 1
            FROM generate_series(%(lo)s::int, %(hi)s::int) c
            UNION ALL
            SELECT c, (c::bigint * 104729) %% 5000 + 5001, 2
            FROM generate_series(%(lo)s::int, %(hi)s::int) c
            """,
            {"lo": CARTS + 1, "hi": CARTS + checkout_carts},
        )
        for table in ("users", "carts"):  # later inserts take ids after ours
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        # Write the rebuild's WAL out now, not during the next measurement.
        conn.execute("CHECKPOINT")


@dataclass
class Result:
    """One implementation, one operation, one concurrency."""

    implementation: str
    operation: str
    threads: int
    ops: int
    seconds: float
    latencies_ns: list[int] = field(repr=False, default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: Ops/s of each slice, in round order (one slice per round for every implementation),
    #: so a ratio can be taken round by round and its spread shows the machine's noise.
    slice_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency at quantile ``q``, in milliseconds."""
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


class Calls:
    """Argument streams for each operation; checkout draws fresh carts from a shared supply."""

    def __init__(self) -> None:
        self._fresh: Iterator[int] = itertools.count(CARTS + 1)
        self._lock = threading.Lock()

    def fresh_cart(self) -> int | None:
        with self._lock:
            cart = next(self._fresh)
        return cart if cart <= CARTS + CHECKOUT_CARTS else None

    def maker(
        self, shop: Shop | AsyncShop, operation: str
    ) -> Callable[[random.Random], Callable[[], object] | None]:
        """A function that, given a worker's random source, returns the next call to time
        (for an :class:`AsyncShop`, a call that returns the awaitable to time)."""
        get_product = shop.get_product
        list_products = shop.list_products
        add_to_cart = shop.add_to_cart
        get_cart = shop.get_cart
        checkout = shop.checkout

        def one(rng: random.Random, op: str) -> Callable[[], object] | None:
            if op == "get_product":
                pid = rng.randint(1, PRODUCTS)
                return lambda: get_product(pid)
            if op == "list_products":
                after = rng.randint(0, PRODUCTS - PAGE)
                return lambda: list_products(after)
            if op == "add_to_cart":
                cart, pid = rng.randint(1, CARTS), rng.randint(1, PRODUCTS)
                return lambda: add_to_cart(cart, pid, 1)
            if op == "get_cart":
                cart = rng.randint(1, CARTS)
                return lambda: get_cart(cart)
            fresh = self.fresh_cart()
            return None if fresh is None else (lambda: checkout(fresh))

        if operation != "mix":
            return lambda rng: one(rng, operation)
        names = [name for name, _ in MIX]
        weights = [weight for _, weight in MIX]
        return lambda rng: one(rng, rng.choices(names, weights)[0])


def measure(
    shop: Shop,
    calls: Calls,
    operation: str,
    threads: int,
    *,
    warmup: float,
    duration: float,
) -> Result:
    """Run ``operation`` on ``threads`` threads: ``warmup`` s unrecorded, then ``duration`` s."""
    make = calls.maker(shop, operation)
    result = Result(getattr(shop, "name", "?"), operation, threads, 0, 0.0)
    lock = threading.Lock()
    start_gate = threading.Barrier(threads + 1)
    measure_gate = threading.Barrier(threads + 1)
    phase: dict[str, float] = {}

    def worker(index: int) -> None:
        rng = random.Random(f"{SEED}-{operation}-{index}")
        latencies: list[int] = []
        errors: Counter[str] = Counter()
        start_gate.wait()
        _loop(make, rng, phase["warm_until"], None, Counter())
        measure_gate.wait()
        _loop(make, rng, phase["until"], latencies, errors)
        with lock:
            result.latencies_ns.extend(latencies)
            result.errors.update(errors)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    phase["warm_until"] = time.perf_counter() + warmup
    start_gate.wait()
    # Threads finish the warm-up on their own clock, then start together.
    phase["until"] = phase["warm_until"] + 0.2 + duration
    measure_gate.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    result.seconds = time.perf_counter() - began
    result.ops = len(result.latencies_ns)
    result.slice_rates = [result.rate]
    return result


def _loop(
    make: Callable[[random.Random], Callable[[], object] | None],
    rng: random.Random,
    until: float,
    latencies: list[int] | None,
    errors: Counter[str],
) -> None:
    clock = time.perf_counter
    ns = time.perf_counter_ns
    while clock() < until:
        call = make(rng)
        if call is None:
            return  # the supply of fresh carts ran out
        t0 = ns()
        try:
            call()
        except Exception as exc:  # counted and reported, never hidden
            errors[type(exc).__name__] += 1
        if latencies is not None:
            latencies.append(ns() - t0)
