"""Orders: checkout records the sale; orders move placed -> paid -> shipped, or are cancelled.

Checkout is one statement: it locks the cart, then its products in ascending
id, then its lines. Every statement that locks several rows takes them in one
order (a cart or an order, then products by id, then cart lines), so no two
Store operations can deadlock, and neither can a checkout and the deletion
of a product (which locks the product, then its cart lines). It decrements
stock, counts the units as ordered (``products.units_ordered``), inserts the order and its
lines (each product's name and price as they are now), empties and closes
the cart, all or nothing, or lists every shortage and changes nothing. A
cart that already became an order returns that order: checkout is
idempotent, so a client whose response was lost can retry safely.

With ``expected_total`` (the total the shopper agreed to), a cart whose
total at checkout is any other sells nothing either: :class:`PriceChanged`
lists each line whose price moved since it was put in the cart
(``cart_items.unit_price``, recorded by add and set) and both totals.

With an ``idempotency_key`` (a web API's ``Idempotency-Key`` header), the
order records it, unique per user (migration 0012), and a checkout with a key
that already placed an order returns that order and sells nothing: the same
key gives the same answer, also for "the user's open cart", which a cart id
cannot name once it is sold. Racing checkouts with one key resolve so: one
places the order; one whose statement began before that commit waits for the
cart's row lock, finds the cart closed and reads the order it became; one
that began after it finds the key's order in its snapshot (``prior``). The
unique index is the last thing a checkout writes (after the cart, products
and lines it locked, in the one order above), so a checkout of another cart
that waits on a key cannot hold a lock its winner needs; it fails on the
duplicate, rolls back whole, and reads the winner's order. A key that placed
an order of another cart or at another total is :class:`IdempotencyKeyReused`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shopdb.errors import (
    AlreadyExists,
    DatabaseUnavailable,
    EmptyCart,
    IdempotencyKeyReused,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    PriceChange,
    PriceChanged,
    ShopError,
    Shortage,
)
from shopdb.limits import INT_MAX, ORDER_STATUSES, ORDERS_PAGE_MAX, OrderStatus
from shopdb.schemas import Order, OrderSummary, Page
from shopdb.store.arguments import amount, cart_address, id_cursor, ident, integer, keyset_start
from shopdb.store.arguments import idempotency_key as checked_key
from shopdb.store.carts import WHICH_CART
from shopdb.store.core import ALL, Query, Steps, operation

#: The statuses (one list: :data:`shopdb.limits.ORDER_STATUSES`).
PLACED, PAID, SHIPPED, CANCELLED = ORDER_STATUSES
#: What a list_orders cursor says it is for (another list's is refused).
KIND = "orders"

_ORDER_COLUMNS = "o.id, o.user_id, o.cart_id, o.status, o.total, o.created_at, o.updated_at"

# Rows: ('cart', cart id, user id, 1 if it was already closed), then
# ('short', product id, wanted, available) for every short line, or the order
# ('order', id, user id, cart id, status, total, created, updated) and its
# lines ('line', product id, name, unit price, quantity): the new order if
# this statement placed it, else the one the closed cart became. With an
# expected total: ('total', the cart's total now) and ('moved', product id,
# price now, the price the line was put in at, as text) for every line whose
# price moved; a total other than the expected one sells nothing.
CHECKOUT = f"""
WITH cart AS (
    SELECT c.id, c.user_id, c.closed_at FROM carts c WHERE {WHICH_CART} FOR UPDATE
), prior AS (
    -- The order this checkout's idempotency key placed, if one committed before
    -- this statement began (NULL key: none). Found, it is the answer: nothing is sold.
    SELECT {_ORDER_COLUMNS} FROM orders o
    WHERE o.idempotency_key = %(key)s::text
      AND o.user_id = coalesce(%(user)s::integer, (SELECT user_id FROM cart))
), stock AS MATERIALIZED (
    SELECT p.id, p.inventory_count, p.price, p.name FROM products p
    WHERE p.id IN (SELECT product_id FROM cart_items
                   WHERE cart_id = (SELECT id FROM cart WHERE closed_at IS NULL))
    ORDER BY p.id
    FOR NO KEY UPDATE
), lines AS MATERIALIZED (
    -- The sort takes every product lock above before the first line's.
    SELECT ci.id AS item_id, ci.product_id, ci.quantity, s.inventory_count, s.price, s.name,
           ci.unit_price AS seen_price
    FROM cart_items ci JOIN stock s ON s.id = ci.product_id
    WHERE ci.cart_id = (SELECT id FROM cart WHERE closed_at IS NULL)
    ORDER BY ci.product_id
    FOR UPDATE OF ci
), short AS (
    SELECT product_id, quantity, inventory_count FROM lines WHERE quantity > inventory_count
), ok AS (
    SELECT 1 WHERE EXISTS (SELECT 1 FROM lines) AND NOT EXISTS (SELECT 1 FROM short)
    AND NOT EXISTS (SELECT 1 FROM prior)
    AND (%(expected)s::numeric IS NULL
         OR %(expected)s::numeric = (SELECT sum(price * quantity) FROM lines))
), sold AS (
    UPDATE products p SET inventory_count = p.inventory_count - l.quantity,
                          units_ordered = p.units_ordered + l.quantity
    FROM lines l WHERE p.id = l.product_id AND EXISTS (SELECT 1 FROM ok)
    RETURNING p.id
), placed AS (
    INSERT INTO orders (user_id, cart_id, total, idempotency_key)
    SELECT cart.user_id, cart.id, (SELECT sum(price * quantity) FROM lines), %(key)s::text
    FROM cart WHERE EXISTS (SELECT 1 FROM ok)
    RETURNING id, user_id, cart_id, status, total, created_at, updated_at
), recorded AS (
    INSERT INTO order_items (order_id, product_id, name, unit_price, quantity)
    SELECT placed.id, l.product_id, l.name, l.price, l.quantity FROM placed, lines l
), emptied AS (
    DELETE FROM cart_items ci USING lines l
    WHERE ci.id = l.item_id AND EXISTS (SELECT 1 FROM ok)
), closed AS (
    UPDATE carts SET closed_at = now()
    WHERE id = (SELECT id FROM cart) AND EXISTS (SELECT 1 FROM ok)
), before AS (
    SELECT {_ORDER_COLUMNS} FROM orders o JOIN cart ON o.cart_id = cart.id
    WHERE cart.closed_at IS NOT NULL
)
SELECT 'cart', id, user_id, (closed_at IS NOT NULL)::integer, NULL::integer,
       NULL::numeric, NULL::varchar, NULL::timestamptz, NULL::timestamptz FROM cart
UNION ALL
SELECT 'short', product_id, quantity, inventory_count, NULL, NULL, NULL, NULL, NULL FROM short
UNION ALL
SELECT 'order', id, user_id, cart_id, NULL, total, status, created_at, updated_at FROM placed
UNION ALL
SELECT 'line', product_id, quantity, NULL, NULL, price, name, NULL, NULL
FROM lines WHERE EXISTS (SELECT 1 FROM ok)
UNION ALL
SELECT 'order', id, user_id, cart_id, NULL, total, status, created_at, updated_at FROM before
UNION ALL
SELECT 'line', oi.product_id, oi.quantity, NULL, NULL, oi.unit_price, oi.name, NULL, NULL
FROM order_items oi JOIN before ON oi.order_id = before.id
UNION ALL
SELECT 'total', NULL, NULL, NULL, NULL, (SELECT sum(price * quantity) FROM lines), NULL, NULL,
       NULL WHERE %(expected)s::numeric IS NOT NULL
UNION ALL
SELECT 'moved', product_id, NULL, NULL, NULL, price, seen_price::varchar, NULL, NULL FROM lines
WHERE %(expected)s::numeric IS NOT NULL AND seen_price <> price
UNION ALL
SELECT 'prior', id, user_id, cart_id, NULL, total, status, created_at, updated_at FROM prior
UNION ALL
SELECT 'prior_line', oi.product_id, oi.quantity, NULL, NULL, oi.unit_price, oi.name, NULL, NULL
FROM order_items oi JOIN prior ON oi.order_id = prior.id
"""
# One order and its lines, in the same row shape as CHECKOUT's.
GET = f"""
WITH o AS (
    SELECT {_ORDER_COLUMNS} FROM orders o
    WHERE o.{{key}} = %(key)s AND (%(user)s::integer IS NULL OR o.user_id = %(user)s::integer)
)
SELECT 'order', id, user_id, cart_id, NULL::integer, total, status, created_at, updated_at
FROM o
UNION ALL
SELECT 'line', oi.product_id, oi.quantity, NULL, NULL, oi.unit_price, oi.name, NULL, NULL
FROM order_items oi JOIN o ON oi.order_id = o.id
"""
GET_BY_ID = GET.format(key="id")
GET_BY_CART = GET.format(key="cart_id")
# The order an idempotency key placed: the user's, or (no user) the given cart's user's.
GET_BY_KEY = f"""
WITH o AS (
    SELECT {_ORDER_COLUMNS} FROM orders o
    WHERE o.idempotency_key = %(key)s::text
      AND o.user_id = coalesce(%(user)s::integer,
                               (SELECT user_id FROM carts WHERE id = %(cart)s::integer))
)
SELECT 'order', id, user_id, cart_id, NULL::integer, total, status, created_at, updated_at
FROM o
UNION ALL
SELECT 'line', oi.product_id, oi.quantity, NULL, NULL, oi.unit_price, oi.name, NULL, NULL
FROM order_items oi JOIN o ON oi.order_id = o.id
"""
# Newest first, by id (ids grow with time); keyset pages: pass the last id seen.
LIST = f"""
SELECT {_ORDER_COLUMNS} FROM orders o
WHERE o.user_id = %(user)s AND o.id < %(before)s
ORDER BY o.id DESC LIMIT %(limit)s
"""
# A move between states, with the order it leaves, in one statement. The row
# lock serializes concurrent moves of one order, and the second one sees the
# first's status: a cancel returns the stock exactly once. Its products are
# locked in id order, as checkout locks them. Cancel and ship take the units off
# units_ordered (never below 0: an order placed by code older than migration
# 0008 was not counted), and cancel puts them back in stock; stock plus units
# ordered stays what it was, so the cancel cannot overflow.
MOVE = f"""
WITH target AS (
    SELECT o.id, o.status FROM orders o
    WHERE o.id = %(id)s AND (%(user)s::integer IS NULL OR o.user_id = %(user)s::integer)
    FOR UPDATE
), moved AS (
    UPDATE orders o SET status = %(to)s, updated_at = now()
    FROM target t WHERE o.id = t.id AND t.status = ANY(%(from)s::varchar[])
    RETURNING {_ORDER_COLUMNS}
), stock AS MATERIALIZED (
    SELECT p.id FROM products p
    WHERE %(to)s IN ('{CANCELLED}', '{SHIPPED}')
      AND p.id IN (SELECT product_id FROM order_items WHERE order_id = (SELECT id FROM moved))
    ORDER BY p.id
    FOR NO KEY UPDATE
), restocked AS (
    UPDATE products p
    SET inventory_count = p.inventory_count
                          + CASE WHEN %(to)s = '{CANCELLED}' THEN oi.quantity ELSE 0 END,
        units_ordered = greatest(p.units_ordered - oi.quantity, 0)
    FROM order_items oi, stock s
    WHERE oi.order_id = (SELECT id FROM moved) AND p.id = oi.product_id AND s.id = p.id
)
SELECT 'target', id, NULL::integer, NULL::integer, NULL::integer, NULL::numeric, status,
       NULL::timestamptz, NULL::timestamptz FROM target
UNION ALL
SELECT 'order', id, user_id, cart_id, NULL, total, status, created_at, updated_at FROM moved
UNION ALL
SELECT 'line', oi.product_id, oi.quantity, NULL, NULL, oi.unit_price, oi.name, NULL, NULL
FROM order_items oi JOIN moved ON oi.order_id = moved.id
"""
#: Where an order may go, and from where.
TRANSITIONS = {
    PAID: (PLACED,),
    SHIPPED: (PAID,),
    CANCELLED: (PLACED, PAID),
}


def order_of(
    rows: list[tuple[Any, ...]], head_tag: str = "order", line_tag: str = "line"
) -> Order | None:
    """The 'order' row and 'line' rows of a result, as an :class:`Order` (None if none)."""
    head = next((r for r in rows if r[0] == head_tag), None)
    if head is None:
        return None
    lines = sorted(
        (
            {
                "product_id": r[1],
                "name": r[6],
                "unit_price": r[5],
                "quantity": r[2],
                "line_total": r[5] * r[2],
            }
            for r in rows
            if r[0] == line_tag
        ),
        key=lambda line: (line["product_id"] is None, line["product_id"] or 0, line["name"]),
    )
    return Order.model_validate(
        {
            "id": head[1],
            "user_id": head[2],
            "cart_id": head[3],
            "total": head[5],
            "status": head[6],
            "created_at": head[7],
            "updated_at": head[8],
            "items": lines,
        }
    )


@operation()
def checkout(
    cart_id: int | None,
    *,
    user_id: int | None = None,
    expected_total: Decimal | int | str | None = None,
    idempotency_key: str | None = None,
) -> Steps[Order]:
    """Sell every line of the cart or nothing; the order it became if it was sold already.

    With ``expected_total``, nothing is sold unless the total is that amount.
    With ``idempotency_key``, the order that key placed (for this user) if there
    is one, and nothing sold; :class:`IdempotencyKeyReused` if that order is of
    another cart than ``cart_id`` or at another total than ``expected_total``.
    """
    expected = None if expected_total is None else amount(expected_total, "expected_total")
    key = None if idempotency_key is None else checked_key(idempotency_key)
    params = cart_address(cart_id, user_id, expected=expected, key=key)
    try:
        return (yield from _checkout(params, cart_id, user_id, expected, key))
    except DatabaseUnavailable as lost:
        # With a key, whatever the first try did, a repeat finds it: safe to retry.
        if key is None:
            raise
        raise lost.keyed() from lost.__cause__


def _checkout(
    params: dict[str, Any],
    cart_id: int | None,
    user_id: int | None,
    expected: Decimal | None,
    key: str | None,
) -> Steps[Order]:
    try:
        rows = yield Query(CHECKOUT, params, ALL)
    except AlreadyExists as taken:
        if key is None or taken.field != "idempotency_key":
            raise
        # A checkout with this key committed its order while this one waited to
        # insert its own (this statement rolled back): that order is the answer.
        rows = yield Query(GET_BY_KEY, params, ALL)
        return _same_checkout(order_of(rows), cart_id, expected, taken)
    if key is not None:
        prior = order_of(rows, "prior", "prior_line")
        if prior is not None:
            return _same_checkout(prior, cart_id, expected, None)
    cart = next((r for r in rows if r[0] == "cart"), None)
    if cart is None:
        if cart_id is None:
            raise EmptyCart(None)  # the user has no open cart: nothing to check out
        raise NotFound("cart", cart_id)
    short = [Shortage(r[1], r[2], r[3]) for r in rows if r[0] == "short"]
    if short:
        raise InsufficientInventory(short)
    order = order_of(rows)
    if order is None and cart[3]:
        # The cart was closed by a checkout that committed after this
        # statement's snapshot was taken (with this key, or another, or none):
        # read the order it became.
        order = order_of((yield Query(GET_BY_CART, {"key": cart[1], "user": user_id}, ALL)))
    if order is None:
        total = next((r[5] for r in rows if r[0] == "total"), None)
        if expected is not None and total is not None and total != expected:
            moved = [PriceChange(r[1], Decimal(r[6]), r[5]) for r in rows if r[0] == "moved"]
            raise PriceChanged(expected, total, sorted(moved, key=lambda c: c.product_id))
        raise EmptyCart(cart[1])
    return order


def _same_checkout(
    order: Order | None, cart_id: int | None, expected: Decimal | None, cause: Exception | None
) -> Order:
    """The order a key placed, if this checkout asks for the same: the same cart (when one
    is named) at the same total (when one is expected)."""
    if order is None:  # the key's order is gone: only a deleted user or a raw DELETE does that
        raise ShopError("the order this idempotency key placed cannot be found") from cause
    if (cart_id is not None and order.cart_id != cart_id) or (
        expected is not None and order.total != expected
    ):
        raise IdempotencyKeyReused(order.id)
    return order


@operation(read_only=True)
def get(order_id: int, *, user_id: int | None = None) -> Steps[Order]:
    """One order with its lines; :class:`NotFound` if there is none (for that user)."""
    ident(order_id, "order_id")
    if user_id is not None:
        ident(user_id, "user_id")
    order = order_of((yield Query(GET_BY_ID, {"key": order_id, "user": user_id}, ALL)))
    if order is None:
        raise NotFound("order", order_id)
    return order


@operation(read_only=True)
def page(
    user_id: int, *, before_id: int | None = None, limit: int = 20, cursor: str | None = None
) -> Steps[Page[OrderSummary]]:
    """Up to ``limit`` of the user's orders, newest first, older than ``before_id`` (or the
    ``cursor``'s), and the cursor of the next page (None on the last)."""
    ident(user_id, "user_id")
    before = keyset_start(before_id, "before_id", 1, cursor, KIND)
    integer(limit, "limit", 1, ORDERS_PAGE_MAX)
    # One row more than the page: whether there is a next page, without a count.
    params = {"user": user_id, "before": INT_MAX if before is None else before, "limit": limit + 1}
    rows = yield Query(LIST, params, ALL)
    items = [
        OrderSummary.model_validate(
            {
                "id": r[0],
                "user_id": r[1],
                "cart_id": r[2],
                "status": r[3],
                "total": r[4],
                "created_at": r[5],
                "updated_at": r[6],
            }
        )
        for r in rows[:limit]
    ]
    following = id_cursor(KIND, items[-1].id) if len(rows) > limit else None
    return Page[OrderSummary](items=items, next=following)


def _move(order_id: int, to: OrderStatus, user_id: int | None) -> Steps[Order]:
    ident(order_id, "order_id")
    if user_id is not None:
        ident(user_id, "user_id")
    params = {"id": order_id, "user": user_id, "to": to, "from": list(TRANSITIONS[to])}
    rows = yield Query(MOVE, params, ALL)
    target = next((r for r in rows if r[0] == "target"), None)
    if target is None:
        raise NotFound("order", order_id)
    order = order_of(rows)
    if order is None:
        raise InvalidTransition(order_id, target[6], to)
    return order


@operation()
def pay(order_id: int, *, user_id: int | None = None) -> Steps[Order]:
    """placed -> paid."""
    return (yield from _move(order_id, PAID, user_id))


@operation()
def ship(order_id: int, *, user_id: int | None = None) -> Steps[Order]:
    """paid -> shipped."""
    return (yield from _move(order_id, SHIPPED, user_id))


@operation()
def cancel(order_id: int, *, user_id: int | None = None) -> Steps[Order]:
    """placed or paid -> cancelled; the stock comes back, exactly once."""
    return (yield from _move(order_id, CANCELLED, user_id))
