"""The data API for the e-commerce endpoints: :class:`Store` and :class:`AsyncStore`.

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

    astore = AsyncStore(await establish_async_pool())
    tea = await astore.get_product(tea.id)

Both are one-line methods (:mod:`~shopdb.store.api`, and
:mod:`~shopdb.store.api_async` generated from it) on thin I/O shells
(:mod:`~shopdb.store.runner`, :mod:`~shopdb.store.runner_async`) over one core
(:mod:`~shopdb.store.core`, ``users``, ``products``, ``carts``, ``orders``)
that holds the SQL, the checks, the row decoding and the error handling once.
"""

from __future__ import annotations

from shopdb.limits import ORDERS_PAGE_MAX
from shopdb.store.api import Shopper, Store
from shopdb.store.api_async import AsyncShopper, AsyncStore
from shopdb.store.products import PAGE_MAX

__all__ = ["ORDERS_PAGE_MAX", "PAGE_MAX", "AsyncShopper", "AsyncStore", "Shopper", "Store"]
