"""Where a Store operation runs: a pooled connection or the caller's, with retries.

A pooled connection runs in autocommit mode, so an operation that is one
statement (all of them are) costs one round trip: no BEGIN, no COMMIT. A
caller's connection (``Store.transaction()``, ``Store.bound()``) runs each
operation inside a savepoint, so a refused operation leaves the caller's
transaction usable and the database as it was.

Deadlocks and serialization failures are retried, whole, a bounded number of
times; so are reads that met a connection the server had already closed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import TupleRow

from shopdb.errors import (
    ConcurrencyConflict,
    DatabaseUnavailable,
    PoolTimeout,
    ShopError,
    translate,
)

if TYPE_CHECKING:
    from shopdb.db import Pool

T = TypeVar("T")
Conn = psycopg.Connection[TupleRow]


class PooledRunner:
    """Each operation on its own pooled connection, in autocommit mode, retried as needed."""

    def __init__(self, pool: Pool, retries: int) -> None:
        self.pool = pool
        self.retries = retries
        self.prepare = pool.settings.prepared_statements

    def run(self, operation: Callable[[Conn], T], *, read_only: bool = False) -> T:
        """Run ``operation``; retry deadlocks, and reads that met a dead connection."""
        attempt = 0
        while True:
            try:
                with self.pool.raw() as conn:
                    return operation(conn)
            except psycopg.Error as exc:
                error = translate(exc)
                if not self._again(error, attempt, read_only):
                    raise error from exc
            except ShopError as error:
                if not self._again(error, attempt, read_only):
                    raise
            attempt += 1

    def _again(self, error: ShopError, attempt: int, read_only: bool) -> bool:
        if isinstance(error, ConcurrencyConflict) and attempt < self.retries:
            # Jittered backoff so the transactions that collided do not collide again.
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 (jitter, not crypto)
            return True
        # A read that met a connection the server had closed (a restart, a
        # failover) is safe to run once more, on a connection opened afresh.
        return (
            read_only
            and attempt == 0
            and isinstance(error, DatabaseUnavailable)
            and not isinstance(error, PoolTimeout)
        )


class BoundRunner:
    """Every operation on one connection, inside the caller's transaction, in a savepoint."""

    def __init__(self, conn: Conn, prepare: bool) -> None:
        self.conn = conn
        self.prepare = prepare

    def run(self, operation: Callable[[Conn], T], *, read_only: bool = False) -> T:
        """Run ``operation`` in a savepoint; a failure rolls back to it."""
        try:
            with self.conn.transaction():
                return operation(self.conn)
        except psycopg.Error as exc:
            raise translate(exc) from exc


def returned(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The row of an ``INSERT ... RETURNING``, which PostgreSQL always sends or raises."""
    if row is None:
        raise ShopError("the database returned no row for INSERT ... RETURNING")
    return row
