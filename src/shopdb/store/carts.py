"""Carts: the user's open cart, its lines and its view, as Store operations.

A cart is addressed by its id, or (``cart_id=None``) as *the user's open
cart*; with ``user_id`` given, a cart of another user is :class:`NotFound`,
exactly as a cart that does not exist (ids must not leak). A user has at most
one open cart (a partial unique index); a closed cart's lines cannot change
(a trigger). Every mutation returns the cart view an endpoint shows, computed
in the same statement: one round trip. Checkout is in :mod:`shopdb.store.orders`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shopdb.errors import (
    CartClosed,
    CartFull,
    ConcurrencyConflict,
    InsufficientInventory,
    InvalidInput,
    NotFound,
    Shortage,
)
from shopdb.limits import CART_LINES_MAX
from shopdb.schemas import CartRead, CartView
from shopdb.store.arguments import cart_address, ident, integer
from shopdb.store.core import ALL, ONE, Query, Steps, operation, relabel, returned

#: Which cart: ``%(cart)s``, or the open cart of ``%(user)s``; and only ``%(user)s``'s.
WHICH_CART = """
    c.id = coalesce(%(cart)s::integer,
                    (SELECT id FROM carts WHERE user_id = %(user)s::integer AND closed_at IS NULL))
    AND (%(user)s::integer IS NULL OR c.user_id = %(user)s::integer)
"""

# Get-or-create, race-free: the partial unique index admits one open cart per
# user, ON CONFLICT DO NOTHING makes a racing second insert a no-op. A racer
# whose snapshot predates the winner's commit sees no row at all: run again.
OPEN = """
WITH existing AS (
    SELECT id, user_id, created_at FROM carts WHERE user_id = %(user)s AND closed_at IS NULL
), made AS (
    INSERT INTO carts (user_id) SELECT %(user)s WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT (user_id) WHERE closed_at IS NULL DO NOTHING
    RETURNING id, user_id, created_at
)
SELECT id, user_id, created_at FROM existing UNION ALL SELECT id, user_id, created_at FROM made
"""

# The view's rows: the cart, then one row per line with its product's name,
# price and line total (none for an empty cart).
VIEW = f"""
SELECT c.id, c.user_id, c.closed_at IS NOT NULL,
       ci.product_id, p.name, p.price, ci.quantity, p.price * ci.quantity
FROM carts c
LEFT JOIN cart_items ci ON ci.cart_id = c.id
LEFT JOIN products p ON p.id = ci.product_id
WHERE {WHICH_CART}
ORDER BY ci.product_id
"""


# A mutation and the view it leaves, in one statement. The statement's other
# parts see the snapshot from before the write, so the view is the cart's
# other lines as they were, plus the written line as RETURNING gives it.
# The cart row is locked before any line, as a checkout locks it (cart, then
# products, then lines), so the two cannot deadlock. FOR NO KEY UPDATE, as the
# trigger on cart_items takes it: mutations of one cart queue, so the count of
# its lines (at most CART_LINES_MAX) is exact; orders' foreign keys to carts
# (FOR KEY SHARE) do not wait for it.
def _mutation(write: str, *, keeps_line: bool) -> str:
    written_line = "UNION ALL SELECT product_id, quantity FROM written" if keeps_line else ""
    # An add or set that wrote nothing returns no row (the caller asks why); a
    # removal returns the view either way, and whether it removed a line.
    joined = (
        "JOIN written ON true"
        if keeps_line
        else ("CROSS JOIN (SELECT count(*) > 0 AS removed FROM written) w")
    )
    flag = "false" if keeps_line else "w.removed"
    return f"""
WITH cart AS (
    SELECT c.id, c.user_id FROM carts c WHERE {WHICH_CART} AND c.closed_at IS NULL
    FOR NO KEY UPDATE
), written AS ({write}
), lines AS (
    SELECT ci.product_id, ci.quantity FROM cart_items ci, cart
    WHERE ci.cart_id = cart.id AND ci.product_id <> %(product)s
    {written_line}
)
SELECT cart.id, cart.user_id, {flag}, l.product_id, p.name, p.price, l.quantity,
       p.price * l.quantity
FROM cart
{joined}
LEFT JOIN lines l ON true
LEFT JOIN products p ON p.id = l.product_id
ORDER BY l.product_id
"""


# A new line only while the cart holds fewer than CART_LINES_MAX other products.
_ROOM = f"""(SELECT count(*) FROM cart_items
            WHERE cart_id = cart.id AND product_id <> %(product)s) < {CART_LINES_MAX}"""
# Inserts the line or adds to it. The SELECT refuses a first line the stock
# cannot cover, or one a full cart has no room for; the DO UPDATE's WHERE
# refuses an addition that would take the line past the stock. ON CONFLICT
# makes concurrent adds of one product to one cart sum up on one line instead
# of racing. Adding or setting a line records the price it was put in at (the
# view the caller gets shows it): checkout's expected_total compares with it.
ADD = _mutation(
    f"""
    INSERT INTO cart_items AS ci (cart_id, product_id, quantity, unit_price)
    SELECT cart.id, p.id, %(qty)s, p.price FROM cart, products p
    WHERE p.id = %(product)s AND p.inventory_count >= %(qty)s AND {_ROOM}
    ON CONFLICT (cart_id, product_id) DO UPDATE
    SET quantity = ci.quantity + EXCLUDED.quantity, unit_price = EXCLUDED.unit_price
    WHERE ci.quantity + EXCLUDED.quantity
          <= (SELECT inventory_count FROM products WHERE id = EXCLUDED.product_id)
    RETURNING ci.product_id, ci.quantity""",
    keeps_line=True,
)
SET = _mutation(
    f"""
    INSERT INTO cart_items AS ci (cart_id, product_id, quantity, unit_price)
    SELECT cart.id, p.id, %(qty)s, p.price FROM cart, products p
    WHERE p.id = %(product)s AND p.inventory_count >= %(qty)s AND {_ROOM}
    ON CONFLICT (cart_id, product_id) DO UPDATE
    SET quantity = EXCLUDED.quantity, unit_price = EXCLUDED.unit_price
    RETURNING ci.product_id, ci.quantity""",
    keeps_line=True,
)
REMOVE = _mutation(
    """
    DELETE FROM cart_items ci USING cart
    WHERE ci.cart_id = cart.id AND ci.product_id = %(product)s
    RETURNING ci.product_id, ci.quantity""",
    keeps_line=False,
)
# Why a mutation wrote nothing: (cart id, its closed flag) if the caller may
# see it, then (stock, quantity already in the cart) if the product exists, and
# how many other products the cart holds.
DIAGNOSE = f"""
SELECT c.id, c.closed_at IS NOT NULL, p.inventory_count,
       (SELECT quantity FROM cart_items WHERE cart_id = c.id AND product_id = p.id),
       (SELECT count(*) FROM cart_items WHERE cart_id = c.id AND product_id <> %(product)s)
FROM (SELECT 1) one
LEFT JOIN carts c ON {WHICH_CART}
LEFT JOIN products p ON p.id = %(product)s
"""


def view_of(rows: list[tuple[Any, ...]]) -> CartView:
    """Rows of (cart id, user id, closed, product id, name, price, quantity, line total)."""
    lines = [
        {
            "product_id": r[3],
            "name": r[4],
            "unit_price": r[5],
            "quantity": r[6],
            "line_total": r[7],
        }
        for r in rows
        if r[3] is not None
    ]
    first = rows[0]
    return CartView.model_validate(
        {
            "id": first[0],
            "user_id": first[1],
            "status": "closed" if first[2] else "open",
            "items": lines,
            "total": sum((line["line_total"] for line in lines), Decimal(0)),
        }
    )


def open_cart_row(user_id: int) -> Steps[tuple[Any, ...]]:
    """The user's open cart (id, user_id, created_at), created if there is none."""
    for _ in range(3):
        try:
            row = yield Query(OPEN, {"user": user_id}, ONE)
        except NotFound as exc:  # the foreign key to users
            raise NotFound("user", user_id) from exc
        if row is not None:
            found: tuple[Any, ...] = row
            return found
    # Three snapshots in a row missed a cart that a racer kept creating and closing.
    raise NotFound("cart", None, f"user {user_id} has no open cart")


@operation()
def create(user_id: int) -> Steps[CartRead]:
    """The user's open cart, opened now if there is none (one per user)."""
    ident(user_id, "user_id")
    row = returned((yield from open_cart_row(user_id)))
    return CartRead.model_validate({"id": row[0], "user_id": row[1], "created_at": row[2]})


@operation()
def open_view(user_id: int) -> Steps[CartView]:
    """The user's open cart as a view, opened now if there is none."""
    ident(user_id, "user_id")
    row = yield from open_cart_row(user_id)
    rows = yield Query(VIEW, {"cart": row[0], "user": user_id}, ALL)
    return view_of(rows)


@operation(read_only=True)
def view(cart_id: int | None, *, user_id: int | None = None) -> Steps[CartView]:
    """The cart, its lines with prices and totals, in one query."""
    params = cart_address(cart_id, user_id)
    rows = yield Query(VIEW, params, ALL)
    if not rows:
        if cart_id is None and user_id is not None:
            return (yield from open_view.steps(user_id))
        raise NotFound("cart", cart_id)
    return view_of(rows)


def _change(
    sql: str, cart_id: int | None, user_id: int | None, product_id: int, quantity: int
) -> Steps[CartView]:
    """Run a mutation; on a miss, open the user's cart or say why nothing was written."""
    params = cart_address(cart_id, user_id, product=product_id, qty=quantity)
    for _ in range(3):
        try:
            rows = yield Query(sql, params, ALL)
        except InvalidInput as exc:
            if exc.field != "value":
                raise
            raise relabel(exc, "quantity") from exc
        if rows:
            return view_of(rows)
        found = yield Query(DIAGNOSE, params, ONE)
        cart, closed, stock, in_cart, others = found if found is not None else (None,) * 5
        if cart is None and cart_id is None and user_id is not None:
            yield from open_cart_row(user_id)  # the user's first line: open the cart
            continue
        if cart is None:
            raise NotFound("cart", cart_id)
        if closed:
            raise CartClosed(cart)
        if stock is None:
            raise NotFound("product", product_id)
        wanted = quantity + (in_cart or 0) if sql is ADD else quantity
        if wanted > stock:
            raise InsufficientInventory([Shortage(product_id, wanted, stock)])
        if in_cart is None and (others or 0) >= CART_LINES_MAX:
            raise CartFull(cart)
        # Nothing refuses the change now: the statement's snapshot predates a
        # racer's commit (the user's cart, opened by a concurrent first add). Again.
    raise ConcurrencyConflict(f"the cart of user {user_id} kept changing; try again")


@operation()
def add(
    cart_id: int | None, product_id: int, quantity: int = 1, *, user_id: int | None = None
) -> Steps[CartView]:
    """Add ``quantity`` of a product to a cart, within the product's stock."""
    ident(product_id, "product_id")
    integer(quantity, "quantity", 1)
    return (yield from _change(ADD, cart_id, user_id, product_id, quantity))


@operation()
def set_quantity(
    cart_id: int | None, product_id: int, quantity: int, *, user_id: int | None = None
) -> Steps[CartView]:
    """Make the line hold ``quantity`` (0 removes it), within the product's stock."""
    ident(product_id, "product_id")
    integer(quantity, "quantity", 0)
    if quantity == 0:
        return (yield from _remove(cart_id, user_id, product_id, missing_ok=True))
    return (yield from _change(SET, cart_id, user_id, product_id, quantity))


@operation()
def remove(cart_id: int | None, product_id: int, *, user_id: int | None = None) -> Steps[CartView]:
    """Remove a product's line from a cart; :class:`NotFound` if it is not there."""
    ident(product_id, "product_id")
    return (yield from _remove(cart_id, user_id, product_id, missing_ok=False))


def _remove(
    cart_id: int | None, user_id: int | None, product_id: int, *, missing_ok: bool
) -> Steps[CartView]:
    params = cart_address(cart_id, user_id, product=product_id)
    for _ in range(3):
        rows = yield Query(REMOVE, params, ALL)
        if rows:
            break
        found = yield Query(DIAGNOSE, params, ONE)
        if found is None or found[0] is None:
            if cart_id is None and user_id is not None and missing_ok:
                return (yield from open_view.steps(user_id))
            raise NotFound("cart", cart_id)
        if found[1]:
            raise CartClosed(found[0])
        # An open cart the statement's snapshot did not see yet (opened by a racer): again.
    else:
        raise ConcurrencyConflict(f"the cart of user {user_id} kept changing; try again")
    removed = rows[0][2]
    if not removed and not missing_ok:
        raise NotFound(
            "cart item", product_id, f"cart {rows[0][0]} holds no product with id {product_id}"
        )
    return view_of([(r[0], r[1], False, *r[3:]) for r in rows])
