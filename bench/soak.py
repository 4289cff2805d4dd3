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

The fault tests in ``tests/test_faults.py`` run the same workload while they
restart or cut off the server.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.workload import MIX
from shopdb import Store
from shopdb.errors import DatabaseUnavailable, EmptyCart, InsufficientInventory
from shopdb.schemas import Order

#: Business answers, not failures: a product ran out.
EXPECTED = (InsufficientInventory, EmptyCart)


@dataclass
class Ledger:
    """What the workload did, as far as its callers were told.

    Every change happens under ``changed`` (a condition), so a test can wait
    for an event ("every kind of operation succeeded again") instead of
    sleeping: :meth:`wait_for`.
    """

    #: Orders acknowledged to a caller, as last acknowledged (placed or cancelled).
    orders: dict[int, Order] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    unavailable: int = 0
    unexpected: list[str] = field(default_factory=list)
    #: For the fault benchmark: when each kind of operation last succeeded, and
    #: when an operation last met ``DatabaseUnavailable`` (``time.monotonic()``).
    last_success: dict[str, float] = field(default_factory=dict)
    last_unavailable: float = 0.0
    #: The first success of each kind after :meth:`mark` (for recovery times).
    first_after_mark: dict[str, float] = field(default_factory=dict)
    marked_at: float | None = None
    changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def succeeded(self, op: str) -> None:
        """Book one successful operation of kind ``op``."""
        now = time.monotonic()
        with self.changed:
            self.ops[op] += 1
            self.last_success[op] = now
            if self.marked_at is not None and op not in self.first_after_mark:
                self.first_after_mark[op] = now
            self.changed.notify_all()

    def acknowledged(self, order: Order) -> None:
        """Book an order a checkout or a cancel returned."""
        with self.changed:
            self.orders[order.id] = order

    def met_unavailable(self) -> None:
        """Book one operation that met ``DatabaseUnavailable``."""
        with self.changed:
            self.unavailable += 1
            self.last_unavailable = time.monotonic()
            self.changed.notify_all()

    def mark(self) -> Counter[str]:
        """Note this moment (the server is back); return the counts so far."""
        with self.changed:
            self.marked_at = time.monotonic()
            self.first_after_mark.clear()
            return Counter(self.ops)

    def wait_for(self, predicate: Callable[[Ledger], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds, at most ``timeout`` seconds (a hang guard)."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)


@dataclass
class Catalog:
    """The products the workload shops from, and the users it shops as."""

    users: list[int]
    products: list[int]


def prepare(
    store: Store, products: int = 200, stock: int = 100_000, tag: str = "", shoppers: int = 32
) -> Catalog:
    """``shoppers`` users and ``products`` products with ``stock`` units each.

    ``tag`` tells apart the users of several catalogs in one database.
    """
    name = f"soak{os.getpid()}{tag}".replace(" ", "_")
    users = [
        store.create_user(f"{name}_{i}", f"{name}_{i}@example.com", "soak-password").id
        for i in range(shoppers)
    ]
    made = [store.create_product(f"Soak {i}", "1.25", stock).id for i in range(products)]
    return Catalog(users, made)


@contextmanager
def mixed_load(
    store: Store, catalog: Catalog, ledger: Ledger, *, threads: int, seed: int = 0
) -> Iterator[threading.Event]:
    """Run the mix on ``threads`` threads for as long as the block runs.

    Thread ``i`` shops as user ``catalog.users[i % len(catalog.users)]``. The
    threads stop (and are joined) when the block ends, however it ends; the
    block may also end the load early with the yielded event's ``set()``.
    """
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=_worker,
            args=(
                store,
                catalog,
                ledger,
                stop,
                seed * 1000 + i,
                catalog.users[i % len(catalog.users)],
            ),
        )
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    try:
        yield stop
    finally:
        stop.set()
        for w in workers:
            w.join()


def _user(catalog: Catalog, thread: int) -> int:
    return catalog.users[thread % len(catalog.users)]


def _worker(
    store: Store, catalog: Catalog, ledger: Ledger, stop: threading.Event, seed: int, user: int
) -> None:
    rng = random.Random(seed)
    ids = catalog.products
    names = [n for n, _ in MIX]
    weights = [w for _, w in MIX]
    shopper = store.for_user(user)
    placed = 0
    while not stop.is_set():
        op = rng.choices(names, weights)[0]
        try:
            if op == "get_product":
                store.get_product(rng.choice(ids))
            elif op == "list_products":
                store.list_products(after_id=rng.randint(0, max(ids)), limit=20)
            elif op == "add_to_cart":
                shopper.add(rng.choice(ids), rng.randint(1, 3))
            elif op == "get_cart":
                shopper.cart()
            elif shopper.cart().items:
                order = shopper.checkout()
                ledger.acknowledged(order)
                placed += 1
                if placed % 10 == 0:
                    ledger.acknowledged(shopper.cancel(order.id))
            ledger.succeeded(op)
        except DatabaseUnavailable:
            ledger.met_unavailable()
            stop.wait(0.01)
        except EXPECTED as exc:
            with ledger.changed:
                ledger.refused[type(exc).__name__] += 1
        except Exception as exc:  # anything else is a bug: collected, reported, failed on
            with ledger.changed:
                ledger.unexpected.append(f"{op}: {type(exc).__name__}: {exc}")


#: Invariants the tables must hold, each a query counting the rows that break it.
INVARIANTS = {
    "negative stock": "SELECT count(*) FROM products WHERE inventory_count < 0",
    "zero-quantity lines": "SELECT count(*) FROM cart_items WHERE quantity <= 0",
    "duplicate lines": "SELECT count(*) FROM (SELECT 1 FROM cart_items "
    "GROUP BY cart_id, product_id HAVING count(*) > 1) d",
    "users equal up to case": "SELECT count(*) FROM (SELECT 1 FROM users "
    "GROUP BY lower(username) HAVING count(*) > 1 UNION ALL SELECT 1 FROM users "
    "GROUP BY lower(email) HAVING count(*) > 1) d",
    "users with two open carts": "SELECT count(*) FROM (SELECT 1 FROM carts "
    "WHERE closed_at IS NULL GROUP BY user_id HAVING count(*) > 1) d",
    "lines in checked-out carts": "SELECT count(*) FROM cart_items ci "
    "JOIN orders o ON o.cart_id = ci.cart_id",
    # Conservation: stock now + units in orders not cancelled = stock received.
    "products whose stock does not add up": """
        SELECT count(*) FROM products p
        WHERE p.inventory_count
              + coalesce((SELECT sum(oi.quantity) FROM order_items oi
                          JOIN orders o ON o.id = oi.order_id
                          WHERE oi.product_id = p.id AND o.status <> 'cancelled'), 0)
              <> coalesce((SELECT sum(delta) FROM inventory_adjustments a
                           WHERE a.product_id = p.id), 0)
    """,
}


def violations(store: Store, catalog: Catalog, ledger: Ledger, url: str) -> list[str]:
    """Every way the tables break an invariant or lost what the ledger was told."""
    import psycopg

    problems = []
    with psycopg.connect(url) as conn:
        for name, query in INVARIANTS.items():
            row = conn.execute(query).fetchone()
            if row and row[0]:
                problems.append(f"{row[0]} {name}")
        stored = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT o.id, o.status, o.total, "
                "(SELECT sum(quantity) FROM order_items WHERE order_id = o.id) "
                "FROM orders o WHERE o.id = ANY(%s)",
                (list(ledger.orders),),
            ).fetchall()
        }
    for order in ledger.orders.values():
        units = sum(line.quantity for line in order.items)
        if stored.get(order.id) != (order.status, order.total, units):
            problems.append(f"order {order.id} was acknowledged as {order.status} but is not so")
    return problems


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
