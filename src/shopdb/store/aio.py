"""The async shell of the Store: runs the core's operations on psycopg ``AsyncConnection``\\s.

It is :mod:`shopdb.store.sync` line for line, with ``await``; CPU-heavy steps
(argon2) run in a worker thread (``asyncio.to_thread``), so the event loop
keeps serving while a password is hashed. The operations themselves (SQL,
checks, decoding, errors) are the core's, shared with the sync Store.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from shopdb.errors import DatabaseUnavailable, ShopError, Translating, translating
from shopdb.schemas import CartItemRead, CartRead, CartView, ProductRead, Receipt, UserRead
from shopdb.store import carts, freshness, products, users
from shopdb.store.core import ALL, ONE, Offload, Operation, P, RetryPolicy, Steps

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.async_db import AsyncPool
    from shopdb.async_replicas import AsyncReplicas

T = TypeVar("T")


async def _execute(cursor: psycopg.AsyncCursor[TupleRow], query: Any, errors: Translating) -> Any:
    """Run one :class:`~shopdb.store.core.Query` and fetch what it asks for."""
    with errors:
        await cursor.execute(query.sql, query.params, prepare=True)
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
        #: position the caller's reads must show (AsyncStore.after).
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
                return await self._drive(op.steps(*args, **kwargs), self.pool)
            except ShopError as error:
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
            attempt += 1

    async def _routed(
        self, replicas: AsyncReplicas, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`run` where the router says; a read a replica could not serve moves at once."""
        route = replicas.route(op, self.after)
        attempt = 0
        while True:
            try:
                return await self._drive(route.steps(op.steps(*args, **kwargs)), route.pool)
            except ShopError as error:
                moved = replicas.reroute(route, error)
                if moved is not None:
                    route = moved
                    continue
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
            attempt += 1
            route = replicas.route(op, self.after)

    async def _drive(self, steps: Steps[T], pool: AsyncPool) -> T:
        errors = pool.errors
        try:
            instruction = next(steps)
            while True:
                if type(instruction) is Offload:
                    # CPU work holds no connection, and runs off the event loop.
                    done = await asyncio.to_thread(instruction.fn, *instruction.args)
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
                            done = await asyncio.to_thread(instruction.fn, *instruction.args)
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


class AsyncStore:
    """The :class:`~shopdb.store.Store` for ``async def`` code, on an ``AsyncPool``.

    The same methods, arguments, return models and errors as ``Store``, each
    awaitable. ``AsyncStore(pool)`` takes a pooled connection per call and
    may be shared by every task; ``AsyncStore.bound(conn)`` runs every call
    on a psycopg ``AsyncConnection`` you hold.
    """

    __slots__ = ("_runner",)

    def __init__(
        self,
        pool: AsyncPool | psycopg.AsyncConnection[TupleRow] | AsyncPooledRunner,
        *,
        retries: int = 5,
    ) -> None:
        """An AsyncStore on ``pool``, or bound to a connection (see :meth:`bound`)."""
        import psycopg

        from shopdb.async_db import AsyncPool

        self._runner: AsyncPooledRunner | AsyncBoundRunner
        if isinstance(pool, AsyncPooledRunner):  # from after(): the same pool, after a token
            self._runner = pool
        elif isinstance(pool, AsyncPool):
            self._runner = AsyncPooledRunner(pool, retries)
        elif isinstance(pool, psycopg.AsyncConnection):
            self._runner = AsyncBoundRunner(pool)
        else:
            raise TypeError(
                "AsyncStore needs a shopdb AsyncPool or a psycopg AsyncConnection, "
                f"not {type(pool).__name__} (a Pool or Connection goes with Store)"
            )

    @classmethod
    def bound(cls, conn: psycopg.AsyncConnection[TupleRow]) -> AsyncStore:
        """An AsyncStore whose every call runs on ``conn``, inside its open transaction.

        Each call runs in a savepoint, so a refused call leaves the caller's
        transaction usable. The caller commits or rolls back. One task at a time.
        """
        return cls(conn)

    @property
    def pool(self) -> AsyncPool | None:
        """The pool calls take their connections from (None for a bound AsyncStore)."""
        runner = self._runner
        return runner.pool if isinstance(runner, AsyncPooledRunner) else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncStore]:
        """An AsyncStore whose calls share one transaction, committed when the block ends.

        ``async with store.transaction() as tx:``. An exception rolls
        everything back; deadlocks inside the block are not retried. Inside a
        bound AsyncStore (or another transaction) the block is a savepoint.
        """
        runner = self._runner
        if isinstance(runner, AsyncBoundRunner):
            with translating:
                async with runner.conn.transaction():
                    yield self
            return
        with runner.pool.errors:
            async with runner.pool.raw() as conn, conn.transaction():
                yield AsyncStore(conn)

    # -- replicas: read-your-writes -------------------------------------------

    async def freshness_token(self) -> str:
        """A token past every write acknowledged so far; see :meth:`Store.freshness_token`."""
        return await self._runner.run(freshness.position)

    def after(self, token: str | None) -> AsyncStore:
        """This AsyncStore for a caller whose reads must show ``token``; see :meth:`Store.after`."""
        position = freshness.token_position(token)
        runner = self._runner
        if position is None or not isinstance(runner, AsyncPooledRunner):
            return self
        return AsyncStore(runner.reading_after(position))

    # -- users ---------------------------------------------------------------

    async def create_user(self, username: str, email: str, password: str) -> UserRead:
        """Register a user; see :meth:`Store.create_user`."""
        return await self._runner.run(users.create, username, email, password)

    async def authenticate(self, login: str, password: str) -> UserRead | None:
        """The user ``login`` names, if ``password`` is theirs; see :meth:`Store.authenticate`."""
        return await self._runner.run(users.authenticate, login, password)

    async def get_user(self, user_id: int) -> UserRead:
        """The user with ``user_id``; see :meth:`Store.get_user`."""
        return await self._runner.run(users.get, user_id)

    # -- products ------------------------------------------------------------

    async def create_product(
        self,
        name: str,
        price: Decimal | int | str,
        inventory_count: int,
        description: str | None = None,
    ) -> ProductRead:
        """Add a product; see :meth:`Store.create_product`."""
        return await self._runner.run(products.create, name, price, inventory_count, description)

    async def get_product(self, product_id: int) -> ProductRead:
        """The product with ``product_id``; see :meth:`Store.get_product`."""
        return await self._runner.run(products.get, product_id)

    async def list_products(
        self, after_id: int | None = None, limit: int = 50
    ) -> list[ProductRead]:
        """A keyset page of products; see :meth:`Store.list_products`."""
        return await self._runner.run(products.page, after_id, limit)

    async def update_product(self, product_id: int, **changes: object) -> ProductRead:
        """Change some of a product's fields; see :meth:`Store.update_product`."""
        return await self._runner.run(products.update, product_id, **changes)

    async def delete_product(self, product_id: int) -> None:
        """Delete a product; see :meth:`Store.delete_product`."""
        return await self._runner.run(products.delete, product_id)

    async def adjust_inventory(self, product_id: int, delta: int) -> int:
        """Add ``delta`` to the stock atomically; see :meth:`Store.adjust_inventory`."""
        return await self._runner.run(products.adjust, product_id, delta)

    # -- carts ---------------------------------------------------------------

    async def create_cart(self, user_id: int) -> CartRead:
        """Open a cart for a user; see :meth:`Store.create_cart`."""
        return await self._runner.run(carts.create, user_id)

    async def add_to_cart(self, cart_id: int, product_id: int, quantity: int = 1) -> CartItemRead:
        """Add to a cart in one atomic statement; see :meth:`Store.add_to_cart`."""
        return await self._runner.run(carts.add, cart_id, product_id, quantity)

    async def set_quantity(
        self, cart_id: int, product_id: int, quantity: int
    ) -> CartItemRead | None:
        """Set a line's quantity (0 removes it); see :meth:`Store.set_quantity`."""
        return await self._runner.run(carts.set_quantity, cart_id, product_id, quantity)

    async def remove_from_cart(self, cart_id: int, product_id: int) -> None:
        """Remove a product's line; see :meth:`Store.remove_from_cart`."""
        return await self._runner.run(carts.remove, cart_id, product_id)

    async def get_cart(self, cart_id: int) -> CartView:
        """The cart with its lines and total; see :meth:`Store.get_cart`."""
        return await self._runner.run(carts.view, cart_id)

    async def checkout(self, cart_id: int) -> Receipt:
        """Sell every line of the cart, or nothing; see :meth:`Store.checkout`."""
        return await self._runner.run(carts.checkout, cart_id)
