"""The peer of `make bench-e2e`: the benchmark's endpoints on FastAPI + SQLAlchemy's async ORM.

Written as SQLAlchemy's documentation writes it: an ``AsyncSession`` per
request from a dependency, ``session.get`` and ``select()`` with
``selectinload``, read-modify-write in ``session.begin()``, the rows locked
``FOR UPDATE`` where a race would oversell; shopdb's mapped classes and its
pydantic response models, so the JSON bytes are the reference service's
(a page of the catalog is newest first, keyset by id, its cursor made and read
by shopdb's own functions, a refused cursor shopdb's 422 problem). The
same bearer tokens (:mod:`examples.shop_api.tokens`). Only the endpoints the
benchmark calls, and only their answers to the benchmark's requests.

``uvicorn bench.e2e_peers.orm_api:app --loop uvloop --http httptools``
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import selectinload

from examples.shop_api import tokens
from shopdb import models
from shopdb.errors import InvalidInput
from shopdb.limits import SEARCH_PAGE_DEFAULT
from shopdb.models import ProductRead
from shopdb.schemas import CartView, Id, Order, Page, Quantity
from shopdb.store.search import decode_cursor, encode_cursor, fingerprint
from shopdb.web.problems import MEDIA_TYPE

SECRET = os.environ.get("SHOP_API_SECRET", "").encode()
#: The fingerprint of a search without words or filters, newest first: the catalog's pages.
NEWEST = fingerprint(None, None, None, False, "newest")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The engine (a pool of 10, as the other services) for the process's life."""
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url, pool_size=10, max_overflow=0)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.exception_handler(InvalidInput)
async def refused(request: Request, exc: InvalidInput) -> JSONResponse:
    """A refused argument (a cursor that is not the catalog's): shopdb's own 422 problem."""
    return JSONResponse(exc.problem(), exc.http_status, media_type=MEDIA_TYPE)


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request, closed after it."""
    async with request.app.state.sessions() as opened:
        yield opened


Session = Annotated[AsyncSession, Depends(session)]
_bearer = HTTPBearer(auto_error=False)


async def user_id(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """The signed-in user's id; 401 without a valid token."""
    found = (
        None if credentials is None else tokens.verify(SECRET, credentials.credentials, time.time())
    )
    if found is None:
        raise HTTPException(401)
    return found


UserId = Annotated[int, Depends(user_id)]


class NewLine(BaseModel):
    """A product to add to the cart."""

    model_config = ConfigDict(strict=True, extra="forbid")
    product_id: Id
    quantity: Quantity = 1


def _view(cart: models.Cart) -> CartView:
    items = sorted(cart.items, key=lambda i: i.product_id)
    lines: list[dict[str, Any]] = [
        {
            "product_id": i.product_id,
            "name": i.product.name,
            "unit_price": i.product.price,
            "quantity": i.quantity,
            "line_total": i.product.price * i.quantity,
        }
        for i in items
    ]
    return CartView.model_validate(
        {
            "id": cart.id,
            "user_id": cart.user_id,
            "status": "open" if cart.closed_at is None else "closed",
            "items": lines,
            "total": sum((line["line_total"] for line in lines), Decimal(0)),
        }
    )


def _open_cart(user: int) -> Any:
    return (
        select(models.Cart)
        .where(models.Cart.user_id == user, models.Cart.closed_at.is_(None))
        .options(selectinload(models.Cart.items).selectinload(models.CartItem.product))
    )


@app.get("/products/{product_id}")
async def get_product(product_id: Id, db: Session) -> ProductRead:
    """One product."""
    product = await db.get(models.Product, product_id)
    if product is None:
        raise HTTPException(404)
    return ProductRead.model_validate(product)


@app.get("/products")
async def list_products(
    db: Session, limit: int = SEARCH_PAGE_DEFAULT, cursor: str | None = None
) -> Page[ProductRead]:
    """A page of the catalog, newest first, and the cursor of the next (shopdb's format)."""
    query = select(models.Product).order_by(models.Product.id.desc()).limit(limit + 1)
    if cursor is not None:
        _, last_id = decode_cursor(cursor, "newest", NEWEST)
        query = query.where(models.Product.id < last_id)
    found = list(await db.scalars(query))  # one row more than the page: is there a next?
    following = (
        encode_cursor("newest", NEWEST, None, found[limit - 1].id) if len(found) > limit else None
    )
    return Page[ProductRead](
        items=[ProductRead.model_validate(p) for p in found[:limit]], next=following
    )


@app.get("/cart")
async def view_cart(user: UserId, db: Session) -> CartView:
    """The user's open cart."""
    cart = (await db.scalars(_open_cart(user))).one()
    return _view(cart)


@app.post("/cart/items")
async def add_item(line: NewLine, user: UserId, db: Session) -> CartView:
    """Add to the product's line, within its stock."""
    async with db.begin():
        cart = (await db.scalars(_open_cart(user).with_for_update(of=models.Cart))).one()
        product = await db.get(models.Product, line.product_id)
        if product is None:
            raise HTTPException(404)
        item = next((i for i in cart.items if i.product_id == line.product_id), None)
        wanted = (item.quantity if item else 0) + line.quantity
        if wanted > product.inventory_count:
            raise HTTPException(409)
        if item is None:
            db.add(models.CartItem(cart_id=cart.id, product_id=product.id, quantity=wanted))
        else:
            item.quantity = wanted
    cart = (await db.scalars(_open_cart(user).execution_options(populate_existing=True))).one()
    return _view(cart)


@app.post("/cart/checkout", status_code=201)
async def checkout(user: UserId, db: Session) -> Order:
    """Sell every line of the open cart or nothing."""
    async with db.begin():
        cart = (await db.scalars(_open_cart(user).with_for_update(of=models.Cart))).one()
        if not cart.items:
            raise HTTPException(409)
        ids = sorted(i.product_id for i in cart.items)
        stock = {
            p.id: p
            for p in await db.scalars(
                select(models.Product)
                .where(models.Product.id.in_(ids))
                .order_by(models.Product.id)
                .with_for_update(key_share=False)
                .execution_options(populate_existing=True)
            )
        }
        if any(stock[i.product_id].inventory_count < i.quantity for i in cart.items):
            raise HTTPException(409)
        order = models.Order(
            user_id=user,
            cart_id=cart.id,
            total=sum((stock[i.product_id].price * i.quantity for i in cart.items), Decimal(0)),
        )
        db.add(order)
        await db.flush()
        lines = []
        for item in sorted(cart.items, key=lambda i: i.product_id):
            product = stock[item.product_id]
            product.inventory_count -= item.quantity
            product.units_ordered += item.quantity
            lines.append(
                models.OrderItem(
                    order_id=order.id,
                    product_id=product.id,
                    name=product.name,
                    unit_price=product.price,
                    quantity=item.quantity,
                )
            )
            await db.delete(item)
        db.add_all(lines)
        cart.closed_at = func_now()
        await db.flush()
        await db.refresh(order)
    return Order.model_validate(
        {
            "id": order.id,
            "user_id": order.user_id,
            "cart_id": order.cart_id,
            "total": order.total,
            "status": order.status,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
            "items": [
                {
                    "product_id": line.product_id,
                    "name": line.name,
                    "unit_price": line.unit_price,
                    "quantity": line.quantity,
                    "line_total": line.unit_price * line.quantity,
                }
                for line in lines
            ],
        }
    )


def func_now() -> Any:
    """The database's ``now()``, the time the Store's checkout closes a cart at."""
    from sqlalchemy import func

    return func.now()
