"""The data API: :class:`Store` and :class:`Shopper` (one user's view of it), and their async twins.

Written once, async; :mod:`shopdb.store.api` (:class:`~shopdb.store.Store`,
:class:`~shopdb.store.Shopper`) is generated from it by
``tools/async_to_sync.py``, and a test fails when the two differ: edit this
file, then run ``make sync``. Every method is one line over the core's
operations (:mod:`shopdb.store.users`, ``products``, ``carts``, ``orders``),
run by the shell :mod:`shopdb.store.runner_async`; the logic lives there, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

from shopdb.limits import SEARCH_PAGE_DEFAULT
from shopdb.schemas import (
    CartRead,
    CartView,
    Order,
    OrderSummary,
    Page,
    ProductChanges,
    ProductRead,
    UserRead,
)
from shopdb.store import carts, freshness, orders, products, search, users
from shopdb.store.runner_async import AsyncBoundRunner, AsyncPooledRunner, runner_for, transaction

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.db.pool_async import AsyncPool

__all__ = ["AsyncShopper", "AsyncStore"]


class AsyncStore:
    """Users, products, carts and orders on a :class:`~shopdb.db.Pool` (or an ``AsyncPool``).

    Every method is one statement (one round trip) and one transaction,
    returns pydantic models named as the spec's columns, and raises
    :mod:`shopdb.errors` exceptions. ``Store(pool)`` takes a pooled
    connection per call and is thread-safe; ``Store.bound(conn)`` runs every
    call on a psycopg connection you hold. ``retries`` bounds how often an
    operation that hit a deadlock or a serialization failure runs again
    before :class:`~shopdb.errors.ConcurrencyConflict`.

    Every method on a cart or an order takes ``user_id=`` to scope it: a cart
    or order of another user is then :class:`~shopdb.errors.NotFound`, as if
    it did not exist. :meth:`for_user` gives an endpoint that knows only the
    signed-in user's id everything it needs, scoped.
    """

    __slots__ = ("_runner",)

    def __init__(
        self,
        pool: AsyncPool | psycopg.AsyncConnection[TupleRow] | AsyncPooledRunner,
        *,
        retries: int = 5,
    ) -> None:
        """On ``pool`` (each call takes a pooled connection), or bound to a connection."""
        self._runner: AsyncPooledRunner | AsyncBoundRunner = runner_for(pool, retries)

    @classmethod
    def bound(cls, conn: psycopg.AsyncConnection[TupleRow]) -> AsyncStore:
        """A Store whose every call runs on ``conn``, inside its open transaction.

        Each call runs in a savepoint, so a refused call leaves the caller's
        transaction usable. The caller commits or rolls back. One caller at a time.
        """
        return cls(conn)

    @property
    def pool(self) -> AsyncPool | None:
        """The pool calls take their connections from (None for a bound Store)."""
        runner = self._runner
        return runner.pool if isinstance(runner, AsyncPooledRunner) else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncStore]:
        """A Store whose calls share one transaction, committed when the block ends.

        An exception rolls everything back. Deadlocks inside the block are
        not retried (the block may have done other things): catch
        :class:`~shopdb.errors.ConcurrencyConflict` and run the block again.
        Inside a bound Store (or another transaction) the block is a savepoint.
        """
        async with transaction(self._runner) as conn:
            yield AsyncStore(conn)

    def for_user(self, user_id: int) -> AsyncShopper:
        """What the user with ``user_id`` may see and do: their cart, their orders."""
        return AsyncShopper(self._runner, user_id)

    # -- replicas: read-your-writes -------------------------------------------

    async def freshness_token(self) -> str:
        """A token for the database as it is now, past every write acknowledged so far.

        Take it after a write (after its transaction commits) and keep it
        with the caller (a cookie, a header: it is short, like ``0/3000148``);
        pass it back to :meth:`after` so their next reads show that write,
        whichever replica serves them. One round trip to the primary.
        """
        return await self._runner.run(freshness.position)

    def after(self, token: str | None) -> AsyncStore:
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
        if position is None or not isinstance(runner, AsyncPooledRunner):
            return self
        return AsyncStore(runner.reading_after(position))

    # -- users ---------------------------------------------------------------

    async def create_user(self, username: str, email: str, password: str) -> UserRead:
        """Register a user; the password is stored only as an argon2id hash.

        ``username`` and ``email`` are normalized to Unicode NFKC first; the
        username is then prepared by PRECIS (UsernameCaseMapped: it is stored in
        lower case) and a look-alike of a taken one is taken (:mod:`shopdb.names`).
        The user is a customer. Raises :class:`~shopdb.errors.AlreadyExists`
        (field ``username`` or ``email``, the email compared without regard to
        case) or :class:`~shopdb.errors.InvalidInput` (every bad field).
        """
        return await self._runner.run(users.create, username, email, password)

    async def authenticate(self, login: str, password: str) -> UserRead | None:
        """The user whose username or email (any case) is ``login``, if ``password`` is theirs.

        A username is found by its key (:func:`shopdb.names.login_key`), so any
        spelling registration would have refused as taken finds the account.

        None for an unknown login and for a wrong password alike, after the
        same argon2 work either way, so timing does not tell them apart. A
        hash made with weaker parameters than today's is upgraded on success.
        The database counts every try of a login: past
        :data:`~shopdb.limits.LOGIN_ATTEMPTS` within
        :data:`~shopdb.limits.LOGIN_WINDOW` seconds,
        :class:`~shopdb.errors.TooManyAttempts` (``retry_after``) without any
        argon2 work, known login or not, until the window passes; a success
        resets the count. The hash never leaves the database.
        """
        return await self._runner.run(users.authenticate, login, password)

    async def get_user(self, user_id: int) -> UserRead:
        """The user with ``user_id``; :class:`~shopdb.errors.NotFound` if there is none."""
        return await self._runner.run(users.get, user_id)

    async def find_user(self, login: str) -> UserRead:
        """The user whose username or email is ``login``, found as :meth:`authenticate` finds it.

        A username in any case or look-alike spelling finds its account.
        :class:`~shopdb.errors.NotFound` if there is none.
        """
        return await self._runner.run(users.find, login)

    async def set_role(self, user_id: int, role: str) -> UserRead:
        """Make the user a ``"customer"`` or ``"staff"`` (who may change the catalog).

        An administrator's call (``shopdb user staff NAME`` makes it): never
        reachable from a registration, which always makes a customer.
        """
        return await self._runner.run(users.set_role, user_id, role)

    # -- products ------------------------------------------------------------

    async def create_product(
        self,
        name: str,
        price: Decimal | int | str,
        inventory_count: int,
        description: str | None = None,
    ) -> ProductRead:
        """Add a product. ``price`` is exact: a Decimal, an int or a string like ``"19.99"``,
        at most two decimal places, below 1,000,000,000."""
        return await self._runner.run(products.create, name, price, inventory_count, description)

    async def get_product(self, product_id: int) -> ProductRead:
        """The product with ``product_id``; :class:`~shopdb.errors.NotFound` if there is none."""
        return await self._runner.run(products.get, product_id)

    async def list_products(
        self, after_id: int | None = None, limit: int = 50, *, cursor: str | None = None
    ) -> Page[ProductRead]:
        """A :class:`~shopdb.schemas.Page` of up to ``limit`` products (1 to 100), by id.

        Pass the page's ``next`` as ``cursor`` for the page after it (None on
        the last page), or the last id of a page as ``after_id``. Keyset pages:
        each product comes once while others are added or deleted between
        pages. The page reads as a list of its items (``len``, ``[i]``, ``for``).
        """
        return await self._runner.run(products.page, after_id, limit, cursor=cursor)

    async def search_products(
        self,
        query: str | None = None,
        *,
        min_price: Decimal | int | str | None = None,
        max_price: Decimal | int | str | None = None,
        in_stock: bool = False,
        sort: search.Sort | None = None,
        limit: int = SEARCH_PAGE_DEFAULT,
        cursor: str | None = None,
    ) -> Page[ProductRead]:
        """A page of the catalog: products matching ``query``'s words (name and description,
        stemmed), priced from ``min_price`` to ``max_price``, in stock if ``in_stock``.

        ``sort``: ``"relevance"`` (the default with words), ``"newest"`` (the
        default without), ``"price_asc"``, ``"price_desc"``, ``"name"``. Pass
        the page's ``next`` as ``cursor``, with the same other arguments, for
        the page after it: every product comes once even while the catalog
        changes between pages. ``limit``: 1 to 100 (20). The text: at most
        200 characters and 16 words; quotes, ``or`` and ``-word`` work as in a
        web search engine. :class:`~shopdb.errors.InvalidInput` names the
        refused argument (``cursor`` for one this search did not make).
        """
        return await self._runner.run(
            search.search,
            query,
            min_price=min_price,
            max_price=max_price,
            in_stock=in_stock,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )

    async def update_product(
        self, product_id: int, changes: ProductChanges | None = None, **fields: object
    ) -> ProductRead:
        """Change some of ``name``, ``description``, ``price``, ``inventory_count``.

        Either a :class:`~shopdb.schemas.ProductChanges` (a PATCH body: only
        the fields the client sent change, and ``description: null`` clears
        the description), or the same fields as keywords; not both. A new
        ``inventory_count`` is recorded as an inventory adjustment.
        """
        return await self._runner.run(products.update, product_id, changes, **fields)

    async def delete_product(self, product_id: int) -> None:
        """Delete a product: its cart lines go with it; order lines keep its name and price."""
        return await self._runner.run(products.delete, product_id)

    async def adjust_inventory(self, product_id: int, delta: int) -> int:
        """Add ``delta`` (negative to remove) to the stock, atomically; return the new count.

        Recorded as an inventory adjustment. Raises
        :class:`~shopdb.errors.InsufficientInventory` instead of going below zero.
        """
        return await self._runner.run(products.adjust, product_id, delta)

    # -- carts ---------------------------------------------------------------

    async def create_cart(self, user_id: int) -> CartRead:
        """The user's open cart, opened now if there is none: a user has one at most.

        :class:`~shopdb.errors.NotFound` if the user does not exist.
        """
        return await self._runner.run(carts.create, user_id)

    async def open_cart(self, user_id: int) -> CartView:
        """The user's open cart as a view, opened now if there is none."""
        return await self._runner.run(carts.open_view, user_id)

    async def get_cart(self, cart_id: int, *, user_id: int | None = None) -> CartView:
        """The cart: ``id``, ``user_id``, ``status`` (open or closed), ``items``
        (``product_id``, ``name``, ``unit_price``, ``quantity``, ``line_total``) and
        ``total``, in one query."""
        return await self._runner.run(carts.view, cart_id, user_id=user_id)

    async def add_to_cart(
        self, cart_id: int, product_id: int, quantity: int = 1, *, user_id: int | None = None
    ) -> CartView:
        """Add ``quantity`` of a product to a cart and return the cart, in one statement.

        Adds to the product's line if it has one, else creates it. Raises
        :class:`~shopdb.errors.InsufficientInventory` when the line would
        exceed the stock, :class:`~shopdb.errors.CartClosed` when the cart
        was checked out.
        """
        return await self._runner.run(carts.add, cart_id, product_id, quantity, user_id=user_id)

    async def set_quantity(
        self, cart_id: int, product_id: int, quantity: int, *, user_id: int | None = None
    ) -> CartView:
        """Make a product's line hold ``quantity`` (0 removes it); return the cart."""
        return await self._runner.run(
            carts.set_quantity, cart_id, product_id, quantity, user_id=user_id
        )

    async def remove_from_cart(
        self, cart_id: int, product_id: int, *, user_id: int | None = None
    ) -> CartView:
        """Remove a product's line and return the cart; ``NotFound`` if it is not there."""
        return await self._runner.run(carts.remove, cart_id, product_id, user_id=user_id)

    # -- orders --------------------------------------------------------------

    async def checkout(
        self,
        cart_id: int,
        *,
        user_id: int | None = None,
        expected_total: Decimal | int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Sell every line of the cart, or nothing, and return the order.

        One statement: decrements stock for every line, records the order
        and its lines (names and prices as they are now), empties and closes
        the cart. If any line is short nothing changes and
        :class:`~shopdb.errors.InsufficientInventory` lists every short
        product. With ``expected_total`` (the total the shopper saw, such
        as ``"19.99"``), a cart whose total is any other sells nothing and
        :class:`~shopdb.errors.PriceChanged` lists the lines whose price
        moved since they were put in the cart. A cart that already became
        an order returns that order, so a retry after a lost response
        sells nothing twice. An empty cart is :class:`~shopdb.errors.EmptyCart`.

        ``idempotency_key`` (1 to 255 printable ASCII characters, unique per
        user; a web API's ``Idempotency-Key`` header) is stored with the order:
        a checkout with a key that placed an order returns that order and
        sells nothing, however many race (see :meth:`AsyncShopper.checkout`).
        """
        return await self._runner.run(
            orders.checkout,
            cart_id,
            user_id=user_id,
            expected_total=expected_total,
            idempotency_key=idempotency_key,
        )

    async def get_order(self, order_id: int, *, user_id: int | None = None) -> Order:
        """One order with its lines; :class:`~shopdb.errors.NotFound` if there is none."""
        return await self._runner.run(orders.get, order_id, user_id=user_id)

    async def list_orders(
        self,
        user_id: int,
        *,
        before_id: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[OrderSummary]:
        """A :class:`~shopdb.schemas.Page` of the user's orders, newest first (``limit`` 1 to 100).

        Pass the page's ``next`` as ``cursor`` for the page after it, or the
        last id of a page as ``before_id``.
        """
        return await self._runner.run(
            orders.page, user_id, before_id=before_id, limit=limit, cursor=cursor
        )

    async def pay_order(self, order_id: int, *, user_id: int | None = None) -> Order:
        """Mark a placed order paid; :class:`~shopdb.errors.InvalidTransition` otherwise."""
        return await self._runner.run(orders.pay, order_id, user_id=user_id)

    async def ship_order(self, order_id: int, *, user_id: int | None = None) -> Order:
        """Mark a paid order shipped; :class:`~shopdb.errors.InvalidTransition` otherwise."""
        return await self._runner.run(orders.ship, order_id, user_id=user_id)

    async def cancel_order(self, order_id: int, *, user_id: int | None = None) -> Order:
        """Cancel a placed or paid order; its stock comes back, exactly once."""
        return await self._runner.run(orders.cancel, order_id, user_id=user_id)


class AsyncShopper:
    """One user's part of the Store: their open cart and their orders, nothing else.

    ``store.for_user(user_id)``. An endpoint that holds only the signed-in
    user's id handles no other id it would have to check: another user's
    order is :class:`~shopdb.errors.NotFound`, as if it did not exist.
    """

    __slots__ = ("_runner", "user_id")

    def __init__(self, runner: AsyncPooledRunner | AsyncBoundRunner, user_id: int) -> None:
        """A Store's runner, for the user with ``user_id`` (see ``Store.for_user``)."""
        self._runner = runner
        self.user_id = user_id

    async def user(self) -> UserRead:
        """The user."""
        return await self._runner.run(users.get, self.user_id)

    async def require_staff(self) -> UserRead:
        """The user, if they are staff; :class:`~shopdb.errors.Forbidden` if not.

        For an endpoint that changes the catalog: ``await shopper.require_staff()`` first.
        """
        return await self._runner.run(users.require_staff, self.user_id)

    async def cart(self) -> CartView:
        """The user's open cart, opened now if there is none."""
        return await self._runner.run(carts.view, None, user_id=self.user_id)

    async def add(self, product_id: int, quantity: int = 1) -> CartView:
        """Add to the user's open cart (opening it if needed); return the cart."""
        return await self._runner.run(carts.add, None, product_id, quantity, user_id=self.user_id)

    async def set_quantity(self, product_id: int, quantity: int) -> CartView:
        """Set a line of the user's open cart (0 removes it); return the cart."""
        return await self._runner.run(
            carts.set_quantity, None, product_id, quantity, user_id=self.user_id
        )

    async def remove(self, product_id: int) -> CartView:
        """Remove a line from the user's open cart; return the cart."""
        return await self._runner.run(carts.remove, None, product_id, user_id=self.user_id)

    async def checkout(
        self,
        cart_id: int | None = None,
        *,
        expected_total: Decimal | int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Check out the user's open cart, or (to retry safely) the cart ``cart_id`` of theirs.

        With ``expected_total``, only at that total (else
        :class:`~shopdb.errors.PriceChanged`, and nothing is sold).

        With ``idempotency_key`` (1 to 255 printable ASCII characters; make one
        per checkout the shopper starts, such as a UUID), the same key gives
        the same answer: the order it placed, however often and however
        concurrently it is repeated, stock and carts untouched. A repeat of
        "my open cart" with the key returns that order even once the cart is
        gone. A key that placed an order of another cart (``cart_id``) or at
        another ``expected_total`` is
        :class:`~shopdb.errors.IdempotencyKeyReused`, and nothing is sold. A
        :class:`~shopdb.errors.DatabaseUnavailable` with ``outcome_unknown`` is
        ``retryable`` with a key (repeat it with the same key), not without.
        """
        return await self._runner.run(
            orders.checkout,
            cart_id,
            user_id=self.user_id,
            expected_total=expected_total,
            idempotency_key=idempotency_key,
        )

    async def orders(
        self, before_id: int | None = None, limit: int = 20, *, cursor: str | None = None
    ) -> Page[OrderSummary]:
        """A :class:`~shopdb.schemas.Page` of the user's orders, newest first: pass its
        ``next`` as ``cursor`` (or the last id as ``before_id``) for the page after it."""
        return await self._runner.run(
            orders.page, self.user_id, before_id=before_id, limit=limit, cursor=cursor
        )

    async def order(self, order_id: int) -> Order:
        """One of the user's orders with its lines."""
        return await self._runner.run(orders.get, order_id, user_id=self.user_id)

    async def cancel(self, order_id: int) -> Order:
        """Cancel one of the user's orders (placed or paid); the stock comes back."""
        return await self._runner.run(orders.cancel, order_id, user_id=self.user_id)
