"""The shop a migration benchmark runs beside: a bulk-loaded catalog and steady traffic.

The dataset and the mix are the ones issue 10 measured: N products and N
cart_items (each product in one cart line), N/10 users with a cart each, and
4 clients at 200 transactions/s in all, 50% ``UPDATE products``, 25%
``UPDATE cart_items``, 25% ``SELECT`` of a product by id, each its own
transaction, prepared.

Transactions are scheduled like ``pgbench -R``: a Poisson arrival schedule
per client, and a statement's latency counts from its scheduled start, so
one held up by a lock also holds up the ones queued behind it in its client,
and they count. Every statement's scheduled start and completion is kept.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

import psycopg

#: (kind, weight, statement)
MIX = (
    (
        "update products",
        50,
        "UPDATE products SET inventory_count = inventory_count + 1 WHERE id = %s",
    ),
    ("update cart_items", 25, "UPDATE cart_items SET quantity = quantity %% 5 + 1 WHERE id = %s"),
    ("read products", 25, "SELECT id, name, price, inventory_count FROM products WHERE id = %s"),
)
KINDS = tuple(kind for kind, _, _ in MIX)
_BATCH = 100_000


@dataclass(frozen=True)
class Sample:
    """One statement: what it was, when it was due, when it completed (perf_counter)."""

    kind: str
    due: float
    done: float
    error: str | None = None

    @property
    def latency(self) -> float:
        """Seconds from its scheduled start to its completion."""
        return self.done - self.due


def load(url: str, rows: int, users: int) -> None:
    """Bulk-load the dataset with COPY into empty tables, then VACUUM ANALYZE them."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        _copy(
            cur,
            "COPY users (username, email, password_hash) FROM STDIN",
            (f"user{i}\tuser{i}@example.com\tx" for i in range(1, users + 1)),
        )
        _copy(
            cur,
            "COPY products (name, description, price, inventory_count) FROM STDIN",
            (f"Product {i}\t\\N\t{i % 1000}.{i % 100:02d}\t1000" for i in range(1, rows + 1)),
        )
        _copy(cur, "COPY carts (user_id) FROM STDIN", (str(i) for i in range(1, users + 1)))
        # Product i is in exactly one cart line, so no cart holds a product twice.
        _copy(
            cur,
            "COPY cart_items (cart_id, product_id, quantity) FROM STDIN",
            (f"{i % users + 1}\t{i}\t{i % 5 + 1}" for i in range(1, rows + 1)),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("users", "products", "carts", "cart_items"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


def _copy(cur: psycopg.Cursor[tuple[object, ...]], statement: str, lines: Iterator[str]) -> None:
    with cur.copy(statement) as copy:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == _BATCH:
                copy.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            copy.write("\n".join(batch) + "\n")


@dataclass
class Traffic:
    """``clients`` threads sending the mix at ``rate`` transactions/s in all, until closed."""

    url: str
    rows: int
    rate: float = 200.0
    clients: int = 4
    seed: int = 0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Traffic:
        ready = threading.Barrier(self.clients + 1)
        for number in range(self.clients):
            thread = threading.Thread(
                target=self._client, args=(number, ready), name=f"traffic-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        ready.wait(timeout=60)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _client(self, number: int, ready: threading.Barrier) -> None:
        chooser = random.Random(self.seed * 1000 + number)
        weights = [weight for _, weight, _ in MIX]
        per_client = self.rate / self.clients
        mine: list[Sample] = []
        with psycopg.connect(self.url, autocommit=True, application_name="bench-traffic") as conn:
            ready.wait(timeout=60)
            due = time.perf_counter()
            while not self._stop.is_set():
                due += chooser.expovariate(per_client)
                pause = due - time.perf_counter()
                if pause > 0 and self._stop.wait(pause):
                    break
                kind, _, statement = chooser.choices(MIX, weights)[0]
                error = None
                try:
                    conn.execute(statement, (chooser.randint(1, self.rows),), prepare=True)
                except psycopg.Error as exc:
                    error = type(exc).__name__
                mine.append(Sample(kind, due, time.perf_counter(), error))
        with self._lock:
            self.samples.extend(mine)
