"""Carts: lines, views and checkout, as Store operations (see :mod:`shopdb.store.core`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shopdb.errors import InsufficientInventory, InvalidInput, NotFound, Shortage
from shopdb.schemas import CartItemRead, CartRead, CartView, Receipt
from shopdb.store.arguments import ident, integer
from shopdb.store.core import ALL, COUNT, ONE, Query, Steps, operation, relabel, returned

CREATE = "INSERT INTO carts (user_id) VALUES (%s) RETURNING id, user_id, created_at"

# One statement: inserts the line or adds to it. The SELECT refuses a first
# line the stock cannot cover; the DO UPDATE's WHERE refuses an addition that
# would take the line past the stock. ON CONFLICT makes concurrent adds of
# the same product to one cart sum up on one line instead of racing.
ADD = """
INSERT INTO cart_items AS ci (cart_id, product_id, quantity)
SELECT %(cart)s, p.id, %(qty)s FROM products p
WHERE p.id = %(product)s AND p.inventory_count >= %(qty)s
ON CONFLICT (cart_id, product_id) DO UPDATE
SET quantity = ci.quantity + EXCLUDED.quantity
WHERE ci.quantity + EXCLUDED.quantity
      <= (SELECT inventory_count FROM products WHERE id = EXCLUDED.product_id)
RETURNING id, cart_id, product_id, quantity
"""
SET = """
INSERT INTO cart_items AS ci (cart_id, product_id, quantity)
SELECT %(cart)s, p.id, %(qty)s FROM products p
WHERE p.id = %(product)s AND p.inventory_count >= %(qty)s
ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity
RETURNING id, cart_id, product_id, quantity
"""
REMOVE = "DELETE FROM cart_items WHERE cart_id = %s AND product_id = %s"
# Why an ADD or SET wrote nothing: (stock, quantity already in the cart, cart exists).
DIAGNOSE = """
SELECT p.inventory_count,
       (SELECT quantity FROM cart_items WHERE cart_id = %(cart)s AND product_id = p.id),
       EXISTS (SELECT 1 FROM carts WHERE id = %(cart)s)
FROM products p WHERE p.id = %(product)s
"""
CART_EXISTS = "SELECT 1 FROM carts WHERE id = %s"
VIEW = """
SELECT c.id, c.user_id, ci.product_id, p.name, p.price, ci.quantity, p.price * ci.quantity
FROM carts c
LEFT JOIN cart_items ci ON ci.cart_id = c.id
LEFT JOIN products p ON p.id = ci.product_id
WHERE c.id = %s
ORDER BY ci.product_id
"""

# Checkout in one statement, all or nothing:
#   cart   locks the cart row first (FOR UPDATE), so two checkouts of one cart
#          run one after the other and adds of new lines wait;
#   lines  locks every line and its product, in ascending product id, the one
#          lock order every checkout shares, so checkouts cannot deadlock; a
#          row updated meanwhile is re-read at its newest version;
#   short  is every line the stock cannot cover;
#   sold / emptied decrement stock and empty the cart only if nothing is short.
# The data-modifying parts run whether or not the final SELECT reads them.
CHECKOUT = """
WITH cart AS (
    SELECT id FROM carts WHERE id = %(cart)s FOR UPDATE
), lines AS MATERIALIZED (
    SELECT ci.id AS item_id, ci.product_id, ci.quantity, p.inventory_count, p.price, p.name
    FROM cart_items ci JOIN products p ON p.id = ci.product_id
    WHERE ci.cart_id = (SELECT id FROM cart)
    ORDER BY ci.product_id
    FOR UPDATE OF ci, p
), short AS (
    SELECT product_id, quantity, inventory_count FROM lines WHERE quantity > inventory_count
), sold AS (
    UPDATE products p SET inventory_count = p.inventory_count - l.quantity
    FROM lines l
    WHERE p.id = l.product_id AND NOT EXISTS (SELECT 1 FROM short)
    RETURNING p.id
), emptied AS (
    DELETE FROM cart_items ci USING lines l
    WHERE ci.id = l.item_id AND NOT EXISTS (SELECT 1 FROM short)
    RETURNING ci.id
)
SELECT 'cart', id, NULL::integer, NULL::integer, NULL::numeric, NULL::varchar FROM cart
UNION ALL
SELECT 'short', product_id, quantity, inventory_count, NULL, NULL FROM short
UNION ALL
SELECT 'sold', product_id, quantity, NULL, price, name FROM lines
WHERE NOT EXISTS (SELECT 1 FROM short)
"""


def _item(row: tuple[Any, ...]) -> CartItemRead:
    return CartItemRead.model_validate(
        {"id": row[0], "cart_id": row[1], "product_id": row[2], "quantity": row[3]}
    )


@operation()
def create(user_id: int) -> Steps[CartRead]:
    """Open a cart for a user; :class:`NotFound` if the user does not exist."""
    ident(user_id, "user_id")
    try:
        row = returned((yield Query(CREATE, (user_id,), ONE)))
    except NotFound as exc:  # the foreign key to users
        raise NotFound("user", user_id) from exc
    return CartRead.model_validate({"id": row[0], "user_id": row[1], "created_at": row[2]})


@operation()
def add(cart_id: int, product_id: int, quantity: int = 1) -> Steps[CartItemRead]:
    """Add ``quantity`` of a product to a cart, within the product's stock."""
    ident(cart_id, "cart_id")
    ident(product_id, "product_id")
    integer(quantity, "quantity", 1)
    params = {"cart": cart_id, "product": product_id, "qty": quantity}
    try:
        row = yield Query(ADD, params, ONE)
    except InvalidInput as exc:
        if exc.field != "value":
            raise
        raise relabel(exc, "quantity") from exc
    if row is not None:
        return _item(row)
    raise (yield from _refused(cart_id, product_id, quantity, adding=True))


@operation()
def set_quantity(cart_id: int, product_id: int, quantity: int) -> Steps[CartItemRead | None]:
    """Make the line hold ``quantity`` (0 removes it), within the product's stock."""
    ident(cart_id, "cart_id")
    ident(product_id, "product_id")
    integer(quantity, "quantity", 0)
    if quantity == 0:
        yield from _remove(cart_id, product_id, missing_ok=True)
        return None
    params = {"cart": cart_id, "product": product_id, "qty": quantity}
    row = yield Query(SET, params, ONE)
    if row is not None:
        return _item(row)
    raise (yield from _refused(cart_id, product_id, quantity, adding=False))


def _refused(cart_id: int, product_id: int, quantity: int, *, adding: bool) -> Steps[Exception]:
    """Why an add or set wrote nothing. Only the message depends on this second look."""
    row = yield Query(DIAGNOSE, {"cart": cart_id, "product": product_id}, ONE)
    if row is None:
        return NotFound("product", product_id)
    stock, in_cart, cart_exists = row
    if not cart_exists:
        return NotFound("cart", cart_id)
    wanted = quantity + (in_cart or 0) if adding else quantity
    return InsufficientInventory([Shortage(product_id, wanted, stock)])


@operation()
def remove(cart_id: int, product_id: int) -> Steps[None]:
    """Remove a product's line from a cart; :class:`NotFound` if it is not there."""
    ident(cart_id, "cart_id")
    ident(product_id, "product_id")
    yield from _remove(cart_id, product_id, missing_ok=False)


def _remove(cart_id: int, product_id: int, *, missing_ok: bool) -> Steps[None]:
    if (yield Query(REMOVE, (cart_id, product_id), COUNT)):
        return
    if (yield Query(CART_EXISTS, (cart_id,), ONE)) is None:
        raise NotFound("cart", cart_id)
    if not missing_ok:
        raise NotFound("cart item", product_id, field="product_id")


def _lines(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of (product_id, name, unit_price, quantity, line_total) as cart lines."""
    return [
        {
            "product_id": r[0],
            "name": r[1],
            "unit_price": r[2],
            "quantity": r[3],
            "line_total": r[4],
        }
        for r in rows
    ]


def _total(lines: list[dict[str, Any]]) -> Decimal:
    return sum((line["line_total"] for line in lines), Decimal(0))


@operation(read_only=True)
def view(cart_id: int) -> Steps[CartView]:
    """The cart, its lines with prices and totals, in one query."""
    ident(cart_id, "cart_id")
    rows = yield Query(VIEW, (cart_id,), ALL)
    if not rows:
        raise NotFound("cart", cart_id)
    lines = _lines([r[2:] for r in rows if r[2] is not None])
    return CartView.model_validate(
        {"id": rows[0][0], "user_id": rows[0][1], "items": lines, "total": _total(lines)}
    )


@operation()
def checkout(cart_id: int) -> Steps[Receipt]:
    """Sell every line of the cart or nothing; see :data:`CHECKOUT`."""
    ident(cart_id, "cart_id")
    rows = yield Query(CHECKOUT, {"cart": cart_id}, ALL)
    if not any(r[0] == "cart" for r in rows):
        raise NotFound("cart", cart_id)
    short = [Shortage(r[1], r[2], r[3]) for r in rows if r[0] == "short"]
    if short:
        raise InsufficientInventory(short)
    sold = sorted((r for r in rows if r[0] == "sold"), key=lambda r: r[1])
    lines = _lines([(r[1], r[5], r[4], r[2], r[4] * r[2]) for r in sold])
    if not lines:
        raise InvalidInput("cart_id", f"cart {cart_id} is empty; there is nothing to check out")
    return Receipt.model_validate({"cart_id": cart_id, "items": lines, "total": _total(lines)})
