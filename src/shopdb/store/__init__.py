"""The data API for the e-commerce endpoints: :class:`Store`.

Every method is one statement, so one round trip, and one transaction; none
can leave the database in a state an e-commerce API must never hold, however
many processes call it at once. Methods return pydantic models whose fields
are the seed's column names and raise :mod:`shopdb.errors` exceptions; bad
input is refused before or by the database and writes nothing.

::

    store = Store(establish_connection_pool())
    tea = store.create_product("Tea", Decimal("4.50"), 10)
    cart = store.create_cart(store.create_user("alice", "alice@example.com", "pw-long-enough").id)
    store.add_to_cart(cart.id, tea.id, 2)
    receipt = store.checkout(cart.id)      # all lines or none; stock never below zero

Several calls can share one transaction::

    with store.transaction() as tx:
        cart = tx.create_cart(user_id)
        tx.add_to_cart(cart.id, tea.id)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import psycopg
from pydantic import BaseModel, ValidationError

from shopdb import passwords
from shopdb.errors import InvalidInput, NotFound, translate
from shopdb.limits import INT_MAX
from shopdb.schemas import (
    CartItemRead,
    CartRead,
    CartView,
    NewProduct,
    NewUser,
    ProductChanges,
    ProductRead,
    Receipt,
    UserRead,
    invalid_input,
)
from shopdb.store import carts, products, users
from shopdb.store.arguments import ident, integer
from shopdb.store.runner import BoundRunner, Conn, PooledRunner

if TYPE_CHECKING:
    from shopdb.db import Pool

__all__ = ["Store"]

#: Most products a page of list_products may hold.
PAGE_MAX = 1000


class Store:
    """Users, products, carts and checkout on a :class:`~shopdb.db.Pool`.

    ``retries`` bounds how often an operation that hit a deadlock or a
    serialization failure is run again before :class:`ConcurrencyConflict`.
    Thread-safe: each call takes its own pooled connection.
    """

    def __init__(self, pool: Pool, *, retries: int = 5) -> None:
        self._runner: PooledRunner | BoundRunner = PooledRunner(pool, retries)

    @classmethod
    def bound(cls, conn: Conn, *, prepare: bool | None = None) -> Store:
        """A Store whose every call runs on ``conn``, inside its open transaction.

        Each call runs in a savepoint, so a refused call leaves the caller's
        transaction usable. The caller commits or rolls back. Not thread-safe.
        ``prepare`` defaults to what the connection was opened with: a pool
        with ``prepared_statements`` off opens them with ``prepare_threshold``
        None (for PgBouncer).
        """
        store = cls.__new__(cls)
        if prepare is None:
            prepare = conn.prepare_threshold is not None
        store._runner = BoundRunner(conn, prepare)
        return store

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """A Store whose calls share one transaction, committed when the block ends.

        An exception rolls everything back. Deadlocks inside the block are
        not retried (the block may have done other things): catch
        :class:`ConcurrencyConflict` and run the block again.
        """
        runner = self._runner
        if not isinstance(runner, PooledRunner):
            with runner.conn.transaction():  # nested: a savepoint
                yield self
            return
        try:
            with runner.pool.raw() as conn, conn.transaction():
                yield Store.bound(conn, prepare=runner.prepare)
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- users ---------------------------------------------------------------

    def create_user(self, username: str, email: str, password: str) -> UserRead:
        """Register a user; the password is stored only as an argon2id hash.

        Raises :class:`AlreadyExists` (field ``username`` or ``email``, compared
        without regard to case) or :class:`InvalidInput`.
        """
        new = _validated(NewUser, username=username, email=email, password=password)
        # Hash before taking a connection: argon2 takes tens of milliseconds.
        values = new.insert_values()
        run = self._runner
        return run.run(
            lambda c: users.insert(
                c, run.prepare, values["username"], values["email"], values["password_hash"]
            )
        )

    def authenticate(self, login: str, password: str) -> UserRead | None:
        """The user whose username or email (any case) is ``login``, if ``password`` is theirs.

        None for an unknown login and for a wrong password alike, after the
        same argon2 work either way, so timing does not tell them apart. A
        hash made with weaker parameters than today's is upgraded on success.
        """
        if type(login) is not str:
            raise InvalidInput("login", "must be a string")
        if type(password) is not str:
            raise InvalidInput("password", "must be a string")
        found = None
        if _storable(login):
            run = self._runner
            found = run.run(lambda c: users.for_login(c, run.prepare, login), read_only=True)
        if found is None or not _storable(password):
            # The same argon2 work as a real check, so timing reveals nothing.
            passwords.verify_password(passwords.dummy_hash(), password)
            return None
        user, stored = found
        if not passwords.verify_password(stored, password):
            return None
        if passwords.needs_rehash(stored):
            fresh = passwords.hash_password(password)
            run = self._runner
            run.run(lambda c: users.rehash(c, run.prepare, user.id, stored, fresh))
        return user

    def get_user(self, user_id: int) -> UserRead:
        """The user with ``user_id``; :class:`NotFound` if there is none."""
        ident(user_id, "user_id")
        run = self._runner
        found = run.run(lambda c: users.get(c, run.prepare, user_id), read_only=True)
        if found is None:
            raise NotFound("user", user_id)
        return found

    # -- products ------------------------------------------------------------

    def create_product(
        self,
        name: str,
        price: Decimal | int | str,
        inventory_count: int,
        description: str | None = None,
    ) -> ProductRead:
        """Add a product. ``price`` is exact: a Decimal, an int or a string like ``"19.99"``."""
        new = _validated(
            NewProduct,
            name=name,
            price=price,
            inventory_count=inventory_count,
            description=description,
        )
        run = self._runner
        return run.run(lambda c: products.insert(c, run.prepare, new))

    def get_product(self, product_id: int) -> ProductRead:
        """The product with ``product_id``; :class:`NotFound` if there is none."""
        ident(product_id, "product_id")
        run = self._runner
        return run.run(lambda c: products.get(c, run.prepare, product_id), read_only=True)

    def list_products(self, after_id: int | None = None, limit: int = 50) -> list[ProductRead]:
        """Up to ``limit`` products with ids above ``after_id``, by id (keyset pagination).

        Pass the last id of a page as ``after_id`` to get the next page.
        """
        after = 0 if after_id is None else integer(after_id, "after_id", 0)
        integer(limit, "limit", 1, PAGE_MAX)
        run = self._runner
        return run.run(lambda c: products.page(c, run.prepare, after, limit), read_only=True)

    def update_product(self, product_id: int, **changes: object) -> ProductRead:
        """Change some of ``name``, ``description``, ``price``, ``inventory_count``."""
        ident(product_id, "product_id")
        parsed = _validated(ProductChanges, **changes)
        values = {field: getattr(parsed, field) for field in parsed.model_fields_set}
        for field, value in values.items():
            if value is None and field != "description":
                raise InvalidInput(field, "must not be null")
        run = self._runner
        return run.run(lambda c: products.update(c, run.prepare, product_id, values))

    def delete_product(self, product_id: int) -> None:
        """Delete a product; the cart lines holding it go with it."""
        ident(product_id, "product_id")
        run = self._runner
        run.run(lambda c: products.delete(c, run.prepare, product_id))

    def adjust_inventory(self, product_id: int, delta: int) -> int:
        """Add ``delta`` (negative to remove) to the stock, atomically; return the new count.

        Raises :class:`InsufficientInventory` instead of going below zero.
        """
        ident(product_id, "product_id")
        integer(delta, "delta", -INT_MAX, INT_MAX)
        run = self._runner
        try:
            return run.run(lambda c: products.adjust(c, run.prepare, product_id, delta))
        except InvalidInput as exc:
            raise _relabel(exc, "delta") from exc

    # -- carts ---------------------------------------------------------------

    def create_cart(self, user_id: int) -> CartRead:
        """Open a cart for a user; :class:`NotFound` if the user does not exist."""
        ident(user_id, "user_id")
        run = self._runner
        try:
            return run.run(lambda c: carts.create(c, run.prepare, user_id))
        except NotFound as exc:
            raise NotFound("user", user_id) from exc

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int = 1) -> CartItemRead:
        """Add ``quantity`` of a product to a cart, in one atomic statement.

        Adds to the product's line if it has one, else creates it. Raises
        :class:`InsufficientInventory` when the line would exceed the stock.
        """
        ident(cart_id, "cart_id")
        ident(product_id, "product_id")
        integer(quantity, "quantity", 1)
        run = self._runner
        try:
            return run.run(lambda c: carts.add(c, run.prepare, cart_id, product_id, quantity))
        except InvalidInput as exc:
            raise _relabel(exc, "quantity") from exc

    def set_quantity(self, cart_id: int, product_id: int, quantity: int) -> CartItemRead | None:
        """Make a product's line hold ``quantity``; 0 removes the line (and returns None)."""
        ident(cart_id, "cart_id")
        ident(product_id, "product_id")
        integer(quantity, "quantity", 0)
        run = self._runner
        return run.run(lambda c: carts.set_quantity(c, run.prepare, cart_id, product_id, quantity))

    def remove_from_cart(self, cart_id: int, product_id: int) -> None:
        """Remove a product's line from a cart; :class:`NotFound` if it is not there."""
        ident(cart_id, "cart_id")
        ident(product_id, "product_id")
        run = self._runner
        run.run(lambda c: carts.remove(c, run.prepare, cart_id, product_id))

    def get_cart(self, cart_id: int) -> CartView:
        """The cart with its lines (``product_id``, ``name``, ``unit_price``,
        ``quantity``, ``line_total``) and ``total``, in one query."""
        ident(cart_id, "cart_id")
        run = self._runner
        return run.run(lambda c: carts.view(c, run.prepare, cart_id), read_only=True)

    def checkout(self, cart_id: int) -> Receipt:
        """Sell every line of the cart, or nothing.

        Decrements stock for every line and empties the cart, in one
        statement. If any line is short, nothing changes and
        :class:`InsufficientInventory` lists every short product with the
        counts wanted and available. Concurrent checkouts lock in one order
        (cart, then products by id), so they cannot deadlock each other.
        """
        ident(cart_id, "cart_id")
        run = self._runner
        return run.run(lambda c: carts.checkout(c, run.prepare, cart_id))


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], **values: object) -> M:
    """``values`` validated by ``model``; the first problem as :class:`InvalidInput`."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def _relabel(error: InvalidInput, field: str) -> InvalidInput:
    """An out-of-range error from an expression names no column; name the argument."""
    if error.field != "value":
        return error
    return InvalidInput(field, f"{error.reason} (the result would exceed {INT_MAX})")


def _storable(text: str) -> bool:
    """Whether PostgreSQL can hold ``text`` (no NUL, encodable as UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
