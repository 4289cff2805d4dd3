"""The spec's "Task 2: API Endpoints" as a FastAPI app on :class:`shopdb.AsyncStore`.

Every endpoint is ``async def`` and one Store call (or two: login signs a
token after checking the password). Request and response bodies are
shopdb's own pydantic models, so ``/openapi.json`` documents shopdb's real
schemas; every error leaves as RFC 9457 problem details through
:func:`shopdb.web.install` (the README's "Errors" section), which also caps
request bodies at 1 MiB, and :func:`shopdb.web.responses` documents them.

The signed-in user's cart and orders go through ``store.for_user(user_id)``
(an :class:`~shopdb.store.AsyncShopper`): an endpoint never handles another
user's id, and another user's order is a 404, as if it did not exist.
Changing the catalog (adding, changing, deleting products, their stock
included) needs a user who is staff (``shopdb user staff NAME``): anyone
else gets a 403 ``forbidden``. Checkout takes the total the shopper saw
(``expected_total``) and sells nothing at any other (409 ``price_changed``).

Settings (environment): ``DATABASE_URL`` (else ``.env``, else the embedded
server), ``SHOP_API_SECRET`` (the key tokens are signed with; without it a
random one, so tokens last until a restart) and ``SHOP_API_TOKEN_SECONDS``
(how long a token is valid; an hour by default).
"""

from __future__ import annotations

import gc
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Literal

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

import shopdb.web
from shopdb import AsyncStore, establish_async_pool
from shopdb.errors import InvalidInput, ShopError
from shopdb.errors import Problem as FieldError
from shopdb.limits import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    INT_MAX,
    PRICE_PATTERN,
    SEARCH_CURSOR_MAX,
    SEARCH_PAGE_DEFAULT,
    SEARCH_PAGE_MAX,
    SEARCH_QUERY_MAX,
)
from shopdb.models import NewProduct, NewUser, ProductRead, UserRead
from shopdb.schemas import (
    CartView,
    Credentials,
    LineQuantity,
    NewLine,
    Order,
    OrderSummary,
    Page,
    ProductChanges,
    Total,
)
from shopdb.store import ORDERS_PAGE_MAX, AsyncShopper
from shopdb.store.search import Sort

from . import tokens

SECRET = os.environ.get("SHOP_API_SECRET", "").encode() or secrets.token_bytes(32)
TOKEN_SECONDS = int(os.environ.get("SHOP_API_TOKEN_SECONDS", "3600"))


class Unauthorized(ShopError):
    """No bearer token, or one that is forged or expired; or a wrong login."""

    code = "unauthorized"
    http_status = 401
    title = "Sign in first"


# -- the service's own request and response bodies (the rest are shopdb's) ----


class _Body(BaseModel):
    # As shopdb's input schemas: unknown fields and wrong types are refused.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Token(BaseModel):
    """A bearer token for ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the scheme's name, not a secret)
    expires_at: int = Field(description="Unix seconds")


class CheckoutTerms(_Body):
    """What the shopper agreed to: the cart's total as they saw it (``CartView.total``)."""

    expected_total: Total | None = Field(
        default=None,
        description="Sell only at this total; at any other, 409 price_changed and nothing sold",
    )


class Health(BaseModel):
    """The service is up and its pool is open."""

    status: Literal["ok"] = "ok"


#: What the service's errors mean, where it says more than shopdb.web's generic words.
MEANINGS = {
    401: "No valid bearer token, or a wrong login",
    403: "Signed in, but not allowed: changing the catalog needs a staff user",
    404: "Not found (or not the signed-in user's)",
    429: "Too many failed logins for this login lately: wait `retry_after` seconds "
    "(also in the Retry-After header)",
    409: "Refused by the state of things (taken, out of stock, empty or full cart, "
    "an Idempotency-Key used for another checkout, ...)",
    503: "The database is unavailable or busy: retryable when `retryable` says so "
    "(not a write whose `outcome_unknown`, unless it carried an Idempotency-Key)",
}
#: The error responses an endpoint documents: ``problems(404, 409, body=True)``.
problems = partial(shopdb.web.responses, meanings=MEANINGS)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool before the first request; close it at shutdown."""
    url = os.environ.get("DATABASE_URL") or None  # None: .env, or the embedded server
    pool = await establish_async_pool(url)
    app.state.store = AsyncStore(pool)
    # Everything built so far (modules, the app, its routes and schemas) lives as long as the
    # process: moved out of the collector's reach, it is never traversed again, and the full
    # collections that put p99 at tens of milliseconds under load become short (issue 22).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(
    title="shop_api",
    summary="The reference service on shopdb",
    version="0.1.0",
    lifespan=lifespan,
)
# Every error as problem+json, and a body over 1 MiB a 413 before it is parsed.
shopdb.web.install(app)


# -- dependencies --------------------------------------------------------------


# Dependencies are ``async def``: FastAPI runs a plain ``def`` one in a worker thread, a
# thread-pool hop on every request for a line of work.
async def get_store(request: Request) -> AsyncStore:
    """The Store the lifespan opened."""
    store: AsyncStore = request.app.state.store
    return store


Store = Annotated[AsyncStore, Depends(get_store)]
_bearer = HTTPBearer(auto_error=False, description="A token from POST /login")


async def signed_in(
    store: Store,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncShopper:
    """The signed-in user's part of the Store; 401 without a valid token."""
    if credentials is None:
        raise Unauthorized("an Authorization: Bearer token is required")
    user_id = tokens.verify(SECRET, credentials.credentials, time.time())
    if user_id is None:
        raise Unauthorized("the bearer token is not valid (forged, malformed or expired)")
    return store.for_user(user_id)


Shopper = Annotated[AsyncShopper, Depends(signed_in)]


async def staff_member(shopper: Shopper) -> AsyncShopper:
    """The signed-in user's part of the Store, if they are staff; 403 ``forbidden`` if not."""
    await shopper.require_staff()
    return shopper


Staff = Annotated[AsyncShopper, Depends(staff_member)]
ProductId = Annotated[int, Path(ge=1, le=INT_MAX)]
OrderId = Annotated[int, Path(ge=1, le=INT_MAX)]


@app.get("/health", tags=["service"])
async def health() -> Health:
    """Up, with the pool open (the lifespan has run)."""
    return Health()


# -- users ---------------------------------------------------------------------


@app.post("/users", status_code=201, responses=problems(409, body=True), tags=["users"])
async def register(new: NewUser, store: Store) -> UserRead:
    """Register; the password is stored only as an argon2id hash."""
    return await store.create_user(new.username, new.email, new.password.get_secret_value())


@app.post("/login", responses=problems(401, 429, body=True), tags=["users"])
async def login(credentials: Credentials, store: Store) -> Token:
    """A bearer token for a username or email and its password.

    After 10 failed logins for one login within 15 minutes, 429 with ``Retry-After``
    until the window passes (known and unknown logins alike; checked in the database).
    """
    password = credentials.password.get_secret_value()
    user = await store.authenticate(credentials.login, password)
    if user is None:
        raise Unauthorized("no user has that login and password")
    expires = int(time.time()) + TOKEN_SECONDS
    return Token(access_token=tokens.issue(SECRET, user.id, expires), expires_at=expires)


@app.get("/users/me", responses=problems(401, 404), tags=["users"])
async def me(shopper: Shopper) -> UserRead:
    """The signed-in user."""
    return await shopper.user()


# -- products ------------------------------------------------------------------


@app.get("/products", responses=problems(), tags=["products"])
async def search_products(
    store: Store,
    *,
    q: Annotated[
        str | None,
        Query(max_length=SEARCH_QUERY_MAX, description="words, as in a web search engine"),
    ] = None,
    min_price: Annotated[str | None, Query(pattern=PRICE_PATTERN, examples=["10"])] = None,
    max_price: Annotated[str | None, Query(pattern=PRICE_PATTERN, examples=["49.99"])] = None,
    in_stock: bool = False,
    sort: Annotated[
        Sort | None, Query(description="relevance (the default with q), else newest")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=SEARCH_PAGE_MAX)] = SEARCH_PAGE_DEFAULT,
    cursor: Annotated[
        str | None,
        Query(max_length=SEARCH_CURSOR_MAX, description="`next` of the page before"),
    ] = None,
) -> Page[ProductRead]:
    """Search the catalog: a page of products and the cursor of the next page.

    Every product matching comes once as you follow ``next`` (with the same
    other parameters), even while the catalog changes between pages.
    """
    try:
        return await store.search_products(
            q,
            min_price=min_price,
            max_price=max_price,
            in_stock=in_stock,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    except InvalidInput as refused:  # the Store's "query" is this endpoint's "q"
        problems = [
            FieldError("q" if p.field == "query" else p.field, p.reason) for p in refused.problems
        ]
        raise InvalidInput.of(problems) from None


@app.get("/products/{product_id}", responses=problems(404), tags=["products"])
async def get_product(product_id: ProductId, store: Store) -> ProductRead:
    """One product."""
    return await store.get_product(product_id)


@app.post("/products", status_code=201, responses=problems(401, 403, body=True), tags=["products"])
async def create_product(new: NewProduct, store: Store, _: Staff) -> ProductRead:
    """Add a product (staff only)."""
    return await store.create_product(new.name, new.price, new.inventory_count, new.description)


@app.patch(
    "/products/{product_id}", responses=problems(401, 403, 404, body=True), tags=["products"]
)
async def update_product(
    product_id: ProductId, changes: ProductChanges, store: Store, _: Staff
) -> ProductRead:
    """Change the fields given (``description: null`` clears it); others stay. Staff only."""
    return await store.update_product(product_id, changes)


@app.delete(
    "/products/{product_id}", status_code=204, responses=problems(401, 403, 404), tags=["products"]
)
async def delete_product(product_id: ProductId, store: Store, _: Staff) -> Response:
    """Delete a product: cart lines go with it, order lines keep its name and price. Staff only."""
    await store.delete_product(product_id)
    return Response(status_code=204)


# -- the signed-in user's cart -------------------------------------------------


@app.get("/cart", responses=problems(401, 404), tags=["cart"])
async def view_cart(shopper: Shopper) -> CartView:
    """The open cart (opened now if there is none), its lines and total."""
    return await shopper.cart()


@app.post("/cart/items", responses=problems(401, 404, 409, body=True), tags=["cart"])
async def add_item(line: NewLine, shopper: Shopper) -> CartView:
    """Add to the product's line (within its stock); 409 lists the shortage."""
    return await shopper.add(line.product_id, line.quantity)


@app.put("/cart/items/{product_id}", responses=problems(401, 404, 409, body=True), tags=["cart"])
async def set_quantity(product_id: ProductId, line: LineQuantity, shopper: Shopper) -> CartView:
    """Make the product's line hold ``quantity`` (0 removes it)."""
    return await shopper.set_quantity(product_id, line.quantity)


@app.delete("/cart/items/{product_id}", responses=problems(401, 404, 409), tags=["cart"])
async def remove_item(product_id: ProductId, shopper: Shopper) -> CartView:
    """Remove the product's line; 404 if the cart holds none."""
    return await shopper.remove(product_id)


@app.post(
    "/cart/checkout", status_code=201, responses=problems(401, 404, 409, body=True), tags=["cart"]
)
async def checkout(
    shopper: Shopper,
    cart_id: Annotated[
        int | None,
        Query(ge=1, le=INT_MAX, description="the cart's id, to retry a checkout safely"),
    ] = None,
    terms: Annotated[CheckoutTerms | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="a key of your own for this checkout (a UUID, say): repeated, "
            "the same answer, and nothing sold twice",
        ),
    ] = None,
) -> Order:
    """Sell every line of the open cart, or nothing (409 lists every shortage).

    Send the total the shopper saw as ``{"expected_total": "19.99"}``: if a
    price moved since, nothing is sold and the 409 ``price_changed`` lists the
    lines that moved. To make a retry safe, send an ``Idempotency-Key`` header
    (1 to 255 printable ASCII characters, new for each checkout): a request
    with a key that placed an order answers with that order, however many race,
    and sells nothing; the same key with another ``cart_id`` or
    ``expected_total`` is a 409 ``idempotency_key_reused``. Or pass the cart's
    id (``GET /cart`` shows it): a cart that already became an order returns
    that order.
    """
    expected = None if terms is None else terms.expected_total
    return await shopper.checkout(cart_id, expected_total=expected, idempotency_key=idempotency_key)


# -- the signed-in user's orders -----------------------------------------------


@app.get("/orders", responses=problems(401), tags=["orders"])
async def list_orders(
    shopper: Shopper,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT_MAX, description="last id of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=ORDERS_PAGE_MAX)] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=SEARCH_CURSOR_MAX, description="`next` of the page before"),
    ] = None,
) -> Page[OrderSummary]:
    """A page of the user's orders, newest first, and the cursor of the next page.

    Pass ``next`` as ``cursor`` (or the last id as ``before_id``) for the page after it.
    """
    return await shopper.orders(before_id, limit, cursor=cursor)


@app.get("/orders/{order_id}", responses=problems(401, 404), tags=["orders"])
async def get_order(order_id: OrderId, shopper: Shopper) -> Order:
    """One of the user's orders with its lines; another user's is a 404."""
    return await shopper.order(order_id)


@app.post("/orders/{order_id}/cancel", responses=problems(401, 404, 409), tags=["orders"])
async def cancel_order(order_id: OrderId, shopper: Shopper) -> Order:
    """Cancel a placed or paid order; its stock comes back, exactly once."""
    return await shopper.cancel(order_id)
