"""The Store's own CPU per call, without the network: where its overhead goes.

:mod:`bench.cpu_cost` measures whole calls, and a call that waits on the
server also pays, on a busy machine, for being put to sleep and woken (tens
of microseconds that vary with the wait). The Store's core does no I/O
(:mod:`shopdb.store.core`), so its part can be measured alone: the Store's
own runner, on a stand-in pool whose cursor answers with rows a bare
connection really got for the same call, runs each operation through its
argument checks, its generator and its row decoding into pydantic models.
The real pool's checkout and checkin are measured beside it.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from bench.peers.bare_shop import BareShop
from shopdb.db import Pool
from shopdb.errors import translating
from shopdb.store import Store
from shopdb.store.runner import PooledRunner


class _Cursor:
    """Answers every statement with the rows it was given."""

    rowcount = 0

    def __init__(self, rows: Any) -> None:
        self.rows = rows

    def execute(self, sql: str, params: object, prepare: bool | None = None) -> None:
        pass

    def fetchone(self) -> Any:
        return self.rows

    def fetchall(self) -> Any:
        return self.rows


class _Connection:
    def __init__(self, cursor: _Cursor) -> None:
        self._cursor = cursor

    def cursor(self) -> _Cursor:
        return self._cursor


class _Pool:
    """What the runner uses of a :class:`~shopdb.db.Pool`, with no connection behind it."""

    errors = translating
    replicas = None

    def __init__(self, cursor: _Cursor) -> None:
        self._conn = _Connection(cursor)

    def checkout(self) -> _Connection:
        return self._conn

    def checkin(self, conn: object) -> None:
        pass

    def heal(self, conn: object = None) -> None:
        pass


@dataclass
class Work:
    """Microseconds of CPU per call of the Store with no I/O, for one operation."""

    operation: str
    us: float


def _per_call(fn: Callable[[], object], count: int = 2000, repeats: int = 7) -> float:
    """The median over ``repeats`` runs of ``count`` calls, in microseconds per call."""
    runs = []
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(count):
            fn()
        runs.append((time.thread_time() - t0) / count * 1e6)
    return statistics.median(runs)


def store_work(bare: BareShop, fresh_cart: int) -> list[Work]:
    """Each operation of the Store on rows ``bare`` got for the same call (checkout:
    of ``fresh_cart``, which it checks out)."""
    answers: dict[str, tuple[Any, Callable[[Store], object]]] = {
        "get_product": (bare.get_product(42), lambda s: s.get_product(42)),
        "list_products": (bare.list_products(420), lambda s: s.list_products(420, limit=20)),
        "add_to_cart": (bare.add_to_cart(7, 4242, 1), lambda s: s.add_to_cart(7, 4242, 1)),
        "get_cart": (bare.get_cart(7), lambda s: s.get_cart(7)),
        "checkout": (bare.checkout(fresh_cart), lambda s: s.checkout(fresh_cart)),
    }
    work = []
    for op, (rows, call) in answers.items():
        runner = PooledRunner(cast(Pool, _Pool(_Cursor(rows))), retries=5)
        store = Store(runner)
        call(store)  # the answer decodes: it is a real one
        work.append(Work(op, _per_call(functools.partial(call, store))))
    return work


def pool_cycle(pool: Pool) -> float:
    """Microseconds of CPU for one checkout and checkin of the Store's real pool."""

    def cycle() -> None:
        pool.checkin(pool.checkout())

    return _per_call(cycle)


def render(work: list[Work], cycle_us: float) -> str:
    """One line per operation, and the pool's."""
    lines = ["| Store, no I/O | us/call |", "|---|---:|"]
    lines += [f"| {w.operation}: checks, driving, decoding | {w.us:.1f} |" for w in work]
    lines.append(f"| pool checkout + checkin | {cycle_us:.1f} |")
    return "\n".join(lines)
