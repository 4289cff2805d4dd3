"""The mixed workload, the ledger of what it acknowledged, and the invariants the
tables must hold afterwards: what the fault and soak tests assert.

:func:`mixed_load` runs :data:`MIX` on threads, each as a user of its own
(``store.for_user``), cancelling every tenth order it placed. The
:class:`Ledger` keeps every order whose checkout or cancel was acknowledged.
:func:`violations` then checks, from the database's tables alone: for every
product, stock now plus units in orders not cancelled equals the stock it
received (``inventory_adjustments``); every acknowledged order is there, as it
was acknowledged; no negative stock, no zero-quantity or duplicate line, no
line in a closed cart, no user with two open carts, no two users equal up to
case. A checkout cut off by a fault (``DatabaseUnavailable``) may or may not
have committed: the conservation check holds either way, so nothing needs
settling by guesswork. :func:`inject` runs the load across a fault.

The tests own these checks (``tests/test_faults.py``, ``tests/test_soak.py``);
the benchmarks that report figures for the same runs (``bench/soak.py``,
``bench/faults.py``, ``make soak``, ``make bench-faults``) import them from here,
so there is one definition of what must hold.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from shopdb import Store
from shopdb.errors import DatabaseUnavailable, EmptyCart, InsufficientInventory, ShopError
from shopdb.schemas import Order

#: The operations of the mixed workload and their weights (the benchmark's ``mix`` too).
MIX = (
    ("get_product", 50),
    ("list_products", 20),
    ("add_to_cart", 15),
    ("get_cart", 10),
    ("checkout", 5),
)
KINDS = tuple(name for name, _ in MIX)

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
            args=(store, catalog, ledger, stop),
            kwargs={"seed": seed * 1000 + i, "user": catalog.users[i % len(catalog.users)]},
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


def _worker(
    store: Store, catalog: Catalog, ledger: Ledger, stop: threading.Event, *, seed: int, user: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 (a reproducible workload, not a secret)
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


@dataclass
class Outcome:
    """What one injected fault did to the workload."""

    #: What the transaction held across the fault raised (None: it survived).
    met: ShopError | None
    #: Every kind of operation succeeded again after the server was back.
    resumed: bool
    #: Seconds from the server being back to the first success, and to every kind's.
    first_success: float | None
    full_service: float | None
    #: Operations that met ``DatabaseUnavailable`` after the server was back.
    failures_after: int
    last_failure_after: float | None


def inject(
    store: Store,
    catalog: Catalog,
    ledger: Ledger,
    fault: Callable[[], None],
    *,
    threads: int = 8,
    hang_guard: float = 120.0,
) -> Outcome:
    """Run the mix on ``threads`` threads and inject ``fault`` while it runs.

    ``fault`` must return once the server serves again. Waits (at most
    ``hang_guard`` seconds per wait) for the load to get going, then for
    every kind of operation to succeed again after the fault.
    """
    held = catalog.products[0]
    met: ShopError | None = None
    with mixed_load(store, catalog, ledger, threads=threads):
        started = ledger.wait_for(lambda led: all(led.ops[k] > 0 for k in KINDS), hang_guard)
        if not started:
            raise RuntimeError(f"the workload did not get going: {ledger.ops}")
        try:
            _across(store, held, fault)
        except ShopError as exc:
            met = exc
        before = ledger.mark()
        with ledger.changed:
            failed_before = ledger.unavailable
        resumed = ledger.wait_for(
            lambda led: all(led.ops[k] > before[k] for k in KINDS), hang_guard
        )
    with ledger.changed:
        back = ledger.marked_at or 0.0
        firsts = [ledger.first_after_mark[k] - back for k in KINDS if k in ledger.first_after_mark]
        failures = ledger.unavailable - failed_before
        last = ledger.last_unavailable - back if ledger.last_unavailable > back else None
    return Outcome(
        met=met,
        resumed=resumed,
        first_success=min(firsts) if firsts else None,
        full_service=max(firsts) if resumed else None,
        failures_after=failures,
        last_failure_after=last,
    )


def _across(store: Store, product_id: int, fault: Callable[[], None]) -> None:
    """A transaction that holds its pooled connection while ``fault`` happens."""
    with store.transaction() as tx:
        tx.get_product(product_id)
        fault()
        tx.get_product(product_id)  # on the connection the fault took away
