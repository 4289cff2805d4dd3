# GENERATED from shopdb/store/runner_async.py by tools/async_to_sync.py: edit that, not this.
"""The shell of the Store: runs the core's operations on psycopg connections.

Written once, async; :mod:`shopdb.store.runner` (the Store's) is generated
from it by ``tools/async_to_sync.py``. A pooled run takes a connection in
autocommit mode, so an operation that is one statement costs one round trip:
no BEGIN, no COMMIT. A bound run (a connection the caller holds, or
``Store.transaction()``) runs each operation inside a savepoint of the
caller's transaction, so a refused operation leaves that transaction usable
and the database as it was. CPU-heavy steps (argon2) run in a worker thread
in the async flavour, so the event loop keeps serving while a password is
hashed (:func:`shopdb.db.concurrency_async.to_thread`). The operations
themselves (SQL, checks, decoding, errors) are the core's.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from shopdb.db.concurrency import sleep, to_thread
from shopdb.errors import DatabaseUnavailable, ShopError, Translating, translating
from shopdb.store.core import ALL, ONE, Offload, Operation, P, RetryPolicy, Steps

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.db.pool import Pool
    from shopdb.db.replicas import Replicas

T = TypeVar("T")


def _execute(cursor: psycopg.Cursor[TupleRow], query: Any, errors: Translating) -> Any:
    """Run one :class:`~shopdb.store.core.Query` and fetch what it asks for."""
    with errors:
        cursor.execute(query.sql, query.params, prepare=query.prepare)
        fetch = query.fetch
        if fetch == ONE:
            return cursor.fetchone()
        if fetch == ALL:
            return cursor.fetchall()
        return cursor.rowcount


class PooledRunner:
    """Each operation on a pooled connection, in autocommit mode, retried as the policy says."""

    __slots__ = ("after", "cursors", "policy", "pool", "replicas")

    def __init__(self, pool: Pool, retries: int) -> None:
        self.pool = pool
        self.policy = RetryPolicy(retries)
        # One cursor per connection, reused: a fresh cursor per statement sets
        # up its loaders again, which measured ~20 us of CPU per call here.
        self.cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        #: The pool's replicas (None: every operation on the pool), and the WAL
        #: position the caller's reads must show (Store.after).
        self.replicas: Replicas | None = pool.replicas
        self.after: int | None = None

    def reading_after(self, position: int) -> PooledRunner:
        """This runner (same pool, cursors, policy) for reads that must show ``position``."""
        runner = PooledRunner(self.pool, self.policy.retries)
        runner.cursors, runner.after = self.cursors, position
        return runner

    def run(self, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op``; run it again after a deadlock, or a read that met a dead connection."""
        if self.replicas is not None:
            return self._routed(self.replicas, op, *args, **kwargs)
        attempt = 0
        while True:
            try:
                return self._drive(op.steps(*args, **kwargs), self.pool, not op.read_only)
            except ShopError as error:
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                sleep(delay)
            attempt += 1

    def _routed(
        self, replicas: Replicas, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`run` where the router says; a read a replica could not serve moves at once."""
        route = replicas.route(op, self.after)
        attempt = 0
        while True:
            try:
                return self._drive(
                    route.steps(op.steps(*args, **kwargs)), route.pool, not op.read_only
                )
            except ShopError as error:
                moved = replicas.reroute(route, error)
                if moved is not None:
                    route = moved
                    continue
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                sleep(delay)
            attempt += 1
            route = replicas.route(op, self.after)

    def _drive(self, steps: Steps[T], pool: Pool, writes: bool) -> T:
        errors = pool.errors
        try:
            instruction = next(steps)
            while True:
                if type(instruction) is Offload:
                    # CPU work holds no connection (async: and runs off the event loop).
                    done = to_thread(instruction.fn, *instruction.args)
                    instruction = steps.send(done)
                    continue
                conn = pool.checkout()
                cursor = self.cursors.get(conn)
                if cursor is None:
                    cursor = self.cursors[conn] = conn.cursor()
                try:
                    while type(instruction) is not Offload:
                        try:
                            answer = _execute(cursor, instruction, errors)
                        except ShopError as error:  # the op may say what it means
                            if isinstance(error, DatabaseUnavailable):
                                # Dead, or alive on a server that takes no writes
                                # (25006): either way no use; drop it and its peers.
                                pool.heal(conn)
                                if writes:
                                    # Sent, unanswered: it may have committed. The
                                    # operation may know better (a keyed checkout).
                                    error = error.after_write()
                            instruction = steps.throw(error)
                        else:
                            instruction = steps.send(answer)
                finally:
                    pool.checkin(conn)
        except StopIteration as stopped:
            result: T = stopped.value
            return result


class BoundRunner:
    """Every operation on one connection, inside the caller's transaction, in a savepoint."""

    __slots__ = ("conn", "cursor")

    def __init__(self, conn: psycopg.Connection[TupleRow]) -> None:
        self.conn = conn
        self.cursor = conn.cursor()

    def run(self, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op`` in a savepoint; a failure rolls back to it and propagates."""
        steps = op.steps(*args, **kwargs)
        conn, cursor = self.conn, self.cursor
        try:
            instruction = next(steps)  # checks the arguments before anything is sent
        except StopIteration as stopped:
            result: T = stopped.value
            return result
        with translating, conn.transaction():
            try:
                while True:
                    if type(instruction) is Offload:
                        done = to_thread(instruction.fn, *instruction.args)
                        instruction = steps.send(done)
                    else:
                        try:
                            answer = _execute(cursor, instruction, translating)
                        except ShopError as error:
                            instruction = steps.throw(error)
                        else:
                            instruction = steps.send(answer)
            except StopIteration as stopped:
                result = stopped.value
        return result


def runner_for(source: object, retries: int) -> PooledRunner | BoundRunner:
    """The runner for a Store made on ``source``: a pool, or a connection the caller holds."""
    import psycopg

    from shopdb.db.pool import Pool

    if isinstance(source, PooledRunner):  # from Store.after: same pool, later reads
        return source
    if isinstance(source, Pool):
        return PooledRunner(source, retries)
    if isinstance(source, psycopg.Connection):
        return BoundRunner(source)
    pool, conn = Pool.__name__, psycopg.Connection.__name__
    raise TypeError(
        f"this Store needs a shopdb {pool} or a psycopg {conn}, not {type(source).__name__} "
        "(a sync Pool goes with Store, an AsyncPool with AsyncStore)"
    )


@contextmanager
def transaction(
    runner: PooledRunner | BoundRunner,
) -> Iterator[psycopg.Connection[TupleRow]]:
    """A connection inside a transaction committed when the block ends (a savepoint
    when the runner is already in one)."""
    if isinstance(runner, BoundRunner):
        with translating, runner.conn.transaction():
            yield runner.conn
        return
    with runner.pool.errors, runner.pool.raw() as conn, conn.transaction():
        yield conn
