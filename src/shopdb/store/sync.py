"""The blocking shell of the Store: runs the core's operations on psycopg connections.

A pooled run takes a connection in autocommit mode, so an operation that is
one statement costs one round trip: no BEGIN, no COMMIT. A bound run (a
connection the caller holds, or ``Store.transaction()``) runs each
operation inside a savepoint of the caller's transaction, so a refused
operation leaves that transaction usable and the database as it was.

:mod:`shopdb.store.aio` is the same, line for line, with ``await``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from shopdb.errors import DatabaseUnavailable, ShopError, Translating, translating
from shopdb.schemas import CartItemRead, CartRead, CartView, ProductRead, Receipt, UserRead
from shopdb.store import carts, freshness, products, users
from shopdb.store.core import ALL, ONE, Offload, Operation, P, RetryPolicy, Steps

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.db import Pool
    from shopdb.replicas import Replicas

T = TypeVar("T")


def _execute(cursor: psycopg.Cursor[TupleRow], query: Any, errors: Translating) -> Any:
    """Run one :class:`~shopdb.store.core.Query` and fetch what it asks for."""
    with errors:
        cursor.execute(query.sql, query.params, prepare=True)
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
                return self._drive(op.steps(*args, **kwargs), self.pool)
            except ShopError as error:
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                time.sleep(delay)
            attempt += 1

    def _routed(
        self, replicas: Replicas, op: Operation[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`run` where the router says; a read a replica could not serve moves at once."""
        route = replicas.route(op, self.after)
        attempt = 0
        while True:
            try:
                return self._drive(route.steps(op.steps(*args, **kwargs)), route.pool)
            except ShopError as error:
                moved = replicas.reroute(route, error)
                if moved is not None:
                    route = moved
                    continue
                delay = self.policy.delay(error, attempt, op.read_only)
                if delay is None:
                    raise
                time.sleep(delay)
            attempt += 1
            route = replicas.route(op, self.after)

    def _drive(self, steps: Steps[T], pool: Pool) -> T:
        errors = pool.errors
        try:
            instruction = next(steps)
            while True:
                if type(instruction) is Offload:
                    # CPU work holds no connection.
                    instruction = steps.send(instruction.fn(*instruction.args))
                    continue
                with errors:
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
                            instruction = steps.throw(error)
                        else:
                            instruction = steps.send(answer)
                finally:
                    pool.checkin(conn)
        except StopIteration as done:
            result: T = done.value
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
        except StopIteration as done:
            result: T = done.value
            return result
        with translating, conn.transaction():
            try:
                while True:
                    if type(instruction) is Offload:
                        instruction = steps.send(instruction.fn(*instruction.args))
                    else:
                        try:
                            answer = _execute(cursor, instruction, translating)
                        except ShopError as error:
                            instruction = steps.throw(error)
                        else:
                            instruction = steps.send(answer)
            except StopIteration as done:
                result = done.value
        return result


class Store:
    """Users, products, carts and checkout on a :class:`~shopdb.db.Pool`.

    Every method is one statement (one round trip) and one transaction,
    returns pydantic models named as the spec's columns, and raises
    :mod:`shopdb.errors` exceptions. ``Store(pool)`` takes a pooled
    connection per call and is thread-safe; ``Store.bound(conn)`` runs every
    call on a psycopg connection you hold. ``retries`` bounds how often an
    operation that hit a deadlock or a serialization failure runs again
    before :class:`~shopdb.errors.ConcurrencyConflict`.
    """

    __slots__ = ("_runner",)

    def __init__(
        self, pool: Pool | psycopg.Connection[TupleRow] | PooledRunner, *, retries: int = 5
    ) -> None:
        """A Store on ``pool``, or bound to a connection (see :meth:`bound`)."""
        import psycopg

        from shopdb.db import Pool

        self._runner: PooledRunner | BoundRunner
        if isinstance(pool, PooledRunner):  # from after(): the same pool, reads after a token
            self._runner = pool
        elif isinstance(pool, Pool):
            self._runner = PooledRunner(pool, retries)
        elif isinstance(pool, psycopg.Connection):
            self._runner = BoundRunner(pool)
        else:
            raise TypeError(
                f"Store needs a shopdb Pool or a psycopg Connection, not {type(pool).__name__} "
                "(an AsyncPool or AsyncConnection goes with AsyncStore)"
            )

    @classmethod
    def bound(cls, conn: psycopg.Connection[TupleRow]) -> Store:
        """A Store whose every call runs on ``conn``, inside its open transaction.

        Each call runs in a savepoint, so a refused call leaves the caller's
        transaction usable. The caller commits or rolls back. Not thread-safe.
        """
        return cls(conn)

    @property
    def pool(self) -> Pool | None:
        """The pool calls take their connections from (None for a bound Store)."""
        runner = self._runner
        return runner.pool if isinstance(runner, PooledRunner) else None

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """A Store whose calls share one transaction, committed when the block ends.

        An exception rolls everything back. Deadlocks inside the block are
        not retried (the block may have done other things): catch
        :class:`~shopdb.errors.ConcurrencyConflict` and run the block again.
        Inside a bound Store (or another transaction) the block is a savepoint.
        """
        runner = self._runner
        if isinstance(runner, BoundRunner):
            with translating, runner.conn.transaction():
                yield self
            return
        with runner.pool.errors, runner.pool.raw() as conn, conn.transaction():
            yield Store(conn)

    # -- replicas: read-your-writes -------------------------------------------

    def freshness_token(self) -> str:
        """A token for the database as it is now, past every write acknowledged so far.

        Take it after a write (after its transaction commits) and keep it
        with the caller (a cookie, a header: it is short, like ``0/3000148``);
        pass it back to :meth:`after` so their next reads show that write,
        whichever replica serves them. One round trip to the primary.
        """
        return self._runner.run(freshness.position)

    def after(self, token: str | None) -> Store:
        """This Store for a caller whose reads must show the state ``token`` marks.

        With replicas configured, a read a replica may serve goes to one only
        once it has replayed past the token (checked just before the read),
        else to the primary; a user never sees their own write missing.
        ``None`` (no token yet) gives this Store back; so does a bound Store,
        whose reads always see its connection's state. Cheap: one per request.
        Raises :class:`~shopdb.errors.InvalidInput` (``token``) for a string
        :meth:`freshness_token` did not make.
        """
        position = freshness.token_position(token)
        runner = self._runner
        if position is None or not isinstance(runner, PooledRunner):
            return self
        return Store(runner.reading_after(position))

    # -- users ---------------------------------------------------------------

    def create_user(self, username: str, email: str, password: str) -> UserRead:
        """Register a user; the password is stored only as an argon2id hash.

        Raises :class:`~shopdb.errors.AlreadyExists` (field ``username`` or
        ``email``, compared without regard to case) or
        :class:`~shopdb.errors.InvalidInput`.
        """
        return self._runner.run(users.create, username, email, password)

    def authenticate(self, login: str, password: str) -> UserRead | None:
        """The user whose username or email (any case) is ``login``, if ``password`` is theirs.

        None for an unknown login and for a wrong password alike, after the
        same argon2 work either way, so timing does not tell them apart. A
        hash made with weaker parameters than today's is upgraded on success.
        """
        return self._runner.run(users.authenticate, login, password)

    def get_user(self, user_id: int) -> UserRead:
        """The user with ``user_id``; :class:`~shopdb.errors.NotFound` if there is none."""
        return self._runner.run(users.get, user_id)

    # -- products ------------------------------------------------------------

    def create_product(
        self,
        name: str,
        price: Decimal | int | str,
        inventory_count: int,
        description: str | None = None,
    ) -> ProductRead:
        """Add a product. ``price`` is exact: a Decimal, an int or a string like ``"19.99"``."""
        return self._runner.run(products.create, name, price, inventory_count, description)

    def get_product(self, product_id: int) -> ProductRead:
        """The product with ``product_id``; :class:`~shopdb.errors.NotFound` if there is none."""
        return self._runner.run(products.get, product_id)

    def list_products(self, after_id: int | None = None, limit: int = 50) -> list[ProductRead]:
        """Up to ``limit`` products with ids above ``after_id``, by id (keyset pagination).

        Pass the last id of a page as ``after_id`` to get the next page.
        """
        return self._runner.run(products.page, after_id, limit)

    def update_product(self, product_id: int, **changes: object) -> ProductRead:
        """Change some of ``name``, ``description``, ``price``, ``inventory_count``."""
        return self._runner.run(products.update, product_id, **changes)

    def delete_product(self, product_id: int) -> None:
        """Delete a product; the cart lines holding it go with it."""
        return self._runner.run(products.delete, product_id)

    def adjust_inventory(self, product_id: int, delta: int) -> int:
        """Add ``delta`` (negative to remove) to the stock, atomically; return the new count.

        Raises :class:`~shopdb.errors.InsufficientInventory` instead of going below zero.
        """
        return self._runner.run(products.adjust, product_id, delta)

    # -- carts ---------------------------------------------------------------

    def create_cart(self, user_id: int) -> CartRead:
        """Open a cart for a user; :class:`~shopdb.errors.NotFound` if the user does not exist."""
        return self._runner.run(carts.create, user_id)

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int = 1) -> CartItemRead:
        """Add ``quantity`` of a product to a cart, in one atomic statement.

        Adds to the product's line if it has one, else creates it. Raises
        :class:`~shopdb.errors.InsufficientInventory` when the line would
        exceed the stock.
        """
        return self._runner.run(carts.add, cart_id, product_id, quantity)

    def set_quantity(self, cart_id: int, product_id: int, quantity: int) -> CartItemRead | None:
        """Make a product's line hold ``quantity``; 0 removes the line (and returns None)."""
        return self._runner.run(carts.set_quantity, cart_id, product_id, quantity)

    def remove_from_cart(self, cart_id: int, product_id: int) -> None:
        """Remove a product's line from a cart; ``NotFound`` if it is not there."""
        return self._runner.run(carts.remove, cart_id, product_id)

    def get_cart(self, cart_id: int) -> CartView:
        """The cart with its lines (``product_id``, ``name``, ``unit_price``,
        ``quantity``, ``line_total``) and ``total``, in one query."""
        return self._runner.run(carts.view, cart_id)

    def checkout(self, cart_id: int) -> Receipt:
        """Sell every line of the cart, or nothing.

        Decrements stock for every line and empties the cart, in one
        statement. If any line is short, nothing changes and
        :class:`~shopdb.errors.InsufficientInventory` lists every short
        product with the counts wanted and available. Concurrent checkouts
        lock in one order (cart, then products by id), so they cannot
        deadlock each other.
        """
        return self._runner.run(carts.checkout, cart_id)
