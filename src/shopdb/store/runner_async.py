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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from shopdb.db.concurrency_async import sleep, to_thread
from shopdb.errors import DatabaseUnavailable, ShopError, Translating, translating
from shopdb.store.core import ALL, ONE, Offload, Operation, P, RetryPolicy, Steps

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.db.pool_async import AsyncPool
    from shopdb.db.replicas_async import AsyncReplicas

T = TypeVar("T")


async def _execute(cursor: psycopg.AsyncCursor[TupleRow], query: Any, errors: Translating) -> Any:
    """Run one :class:`~shopdb.store.core.Query` and fetch what it asks for."""
    with errors:
        await cursor.execute(query.sql, query.params, prepare=query.prepare)
        fetch = query.fetch
        if fetch == ONE:
            return await cursor.fetchone()
        if fetch == ALL:
            return await cursor.fetchall()
        return cursor.rowcount


class AsyncPooledRunner:
    """Each operation on a pooled connection, in autocommit mode, retried as the policy says."""

    __slots__ = ("after", "cursors", "policy", "pool", "replicas")

    def __init__(self, pool: AsyncPool, retries: int) -> None:
        self.pool = pool
        self.policy = RetryPolicy(retries)
        # One cursor per connection, reused: a fresh cursor per statement sets
        # up its loaders again, which measured ~20 us of CPU per call here.
        self.cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        #: The pool's replicas (None: every operation on the pool), and the WAL
        #: position the caller's reads must show (Store.after).
        self.replicas: AsyncReplicas | None = pool.replicas
        self.after: int | None = None

    def reading_after(self, position: int) -> AsyncPooledRunner:
        """This runner (same pool, cursors, policy) for reads that must show ``position``."""
        runner = AsyncPooledRunner(self.pool, self.policy.retries)
        runner.cursors, runner.after = self.cursors, position
        return runner

    async def run(self, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op``; run it again after a deadlock, or a read that met a dead connection."""
        if self.replicas is not None:
            return await self._routed(self.replicas, op, *args, **kwargs)
        attempt = 0
        while True:
            try:
                return await self._drive(op.steps(*args, **kwargs), self.pool, not op.read_only)
            except ShopError as error:
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                await sleep(delay)
            attempt += 1

    async def _routed(
        self, replicas: AsyncReplicas, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`run` where the router says; a read a replica could not serve moves at once."""
        route = replicas.route(op, self.after)
        attempt = 0
        while True:
            try:
                return await self._drive(
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
                await sleep(delay)
            attempt += 1
            route = replicas.route(op, self.after)

    async def _drive(self, steps: Steps[T], pool: AsyncPool, writes: bool) -> T:
        errors = pool.errors
        try:
            instruction = next(steps)
            while True:
                if type(instruction) is Offload:
                    # CPU work holds no connection (async: and runs off the event loop).
                    done = await to_thread(instruction.fn, *instruction.args)
                    instruction = steps.send(done)
                    continue
                conn = await pool.checkout()
                cursor = self.cursors.get(conn)
                if cursor is None:
                    cursor = self.cursors[conn] = conn.cursor()
                try:
                    while type(instruction) is not Offload:
                        try:
                            answer = await _execute(cursor, instruction, errors)
                        except ShopError as error:  # the op may say what it means
                            if isinstance(error, DatabaseUnavailable):
                                # Dead, or alive on a server that takes no writes
                                # (25006): either way no use; drop it and its peers.
                                await pool.heal(conn)
                                if writes:
                                    # Sent, unanswered: it may have committed. The
                                    # operation may know better (a keyed checkout).
                                    error = error.after_write()
                            instruction = steps.throw(error)
                        else:
                            instruction = steps.send(answer)
                finally:
                    await pool.checkin(conn)
        except StopIteration as stopped:
            result: T = stopped.value
            return result


class AsyncBoundRunner:
    """Every operation on one connection, inside the caller's transaction, in a savepoint."""

    __slots__ = ("conn", "cursor")

    def __init__(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        self.conn = conn
        self.cursor = conn.cursor()

    async def run(self, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op`` in a savepoint; a failure rolls back to it and propagates."""
        steps = op.steps(*args, **kwargs)
        conn, cursor = self.conn, self.cursor
        try:
            instruction = next(steps)  # checks the arguments before anything is sent
        except StopIteration as stopped:
            result: T = stopped.value
            return result
        with translating:
            async with conn.transaction():
                try:
                    while True:
                        if type(instruction) is Offload:
                            done = await to_thread(instruction.fn, *instruction.args)
                            instruction = steps.send(done)
                        else:
                            try:
                                answer = await _execute(cursor, instruction, translating)
                            except ShopError as error:
                                instruction = steps.throw(error)
                            else:
                                instruction = steps.send(answer)
                except StopIteration as stopped:
                    result = stopped.value
        return result


def runner_for(source: object, retries: int) -> AsyncPooledRunner | AsyncBoundRunner:
    """The runner for a Store made on ``source``: a pool, or a connection the caller holds."""
    import psycopg

    from shopdb.db.pool_async import AsyncPool

    if isinstance(source, AsyncPooledRunner):  # from Store.after: same pool, later reads
        return source
    if isinstance(source, AsyncPool):
        return AsyncPooledRunner(source, retries)
    if isinstance(source, psycopg.AsyncConnection):
        return AsyncBoundRunner(source)
    pool, conn = AsyncPool.__name__, psycopg.AsyncConnection.__name__
    raise TypeError(
        f"this Store needs a shopdb {pool} or a psycopg {conn}, not {type(source).__name__} "
        "(a sync Pool goes with Store, an AsyncPool with AsyncStore)"
    )


@asynccontextmanager
async def transaction(
    runner: AsyncPooledRunner | AsyncBoundRunner,
) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """A connection inside a transaction committed when the block ends (a savepoint
    when the runner is already in one)."""
    if isinstance(runner, AsyncBoundRunner):
        with translating:
            async with runner.conn.transaction():
                yield runner.conn
        return
    with runner.pool.errors:
        async with runner.pool.raw() as conn, conn.transaction():
            yield conn
