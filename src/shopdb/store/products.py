"""Products: the catalog and its stock. SQL and row mapping; the Store calls these."""

from __future__ import annotations

from typing import Any

from shopdb.errors import InsufficientInventory, NotFound, Shortage
from shopdb.schemas import NewProduct, ProductRead, trusted
from shopdb.store.runner import Conn, returned

COLUMNS = "id, name, description, price, inventory_count"
INSERT = (
    "INSERT INTO products (name, description, price, inventory_count) "
    f"VALUES (%s, %s, %s, %s) RETURNING {COLUMNS}"
)
GET = f"SELECT {COLUMNS} FROM products WHERE id = %s"
# Keyset pagination: stable under concurrent inserts and deletes, and an
# index range scan at any depth (OFFSET would re-read every skipped row).
PAGE = f"SELECT {COLUMNS} FROM products WHERE id > %s ORDER BY id LIMIT %s"
DELETE = "DELETE FROM products WHERE id = %s"
# Atomic and never below zero: the row lock of the UPDATE serializes
# concurrent adjustments, and the WHERE refuses the one that would go negative.
ADJUST = (
    "UPDATE products SET inventory_count = inventory_count + %(delta)s "
    "WHERE id = %(id)s AND inventory_count + %(delta)s >= 0 RETURNING inventory_count"
)
COUNT = "SELECT inventory_count FROM products WHERE id = %s"
#: The columns update_product may set, in a fixed order.
UPDATABLE = ("name", "description", "price", "inventory_count")


def product(row: tuple[Any, ...]) -> ProductRead:
    """A row of :data:`COLUMNS` as the public shape."""
    return trusted(
        ProductRead,
        {
            "id": row[0],
            "name": row[1],
            "description": row[2],
            "price": row[3],
            "inventory_count": row[4],
        },
    )


def insert(conn: Conn, prepare: bool, new: NewProduct) -> ProductRead:
    """Insert a product."""
    params = (new.name, new.description, new.price, new.inventory_count)
    return product(returned(conn.execute(INSERT, params, prepare=prepare).fetchone()))


def get(conn: Conn, prepare: bool, product_id: int) -> ProductRead:
    """The product with ``product_id``; :class:`NotFound` if there is none."""
    row = conn.execute(GET, (product_id,), prepare=prepare).fetchone()
    if row is None:
        raise NotFound("product", product_id)
    return product(row)


def page(conn: Conn, prepare: bool, after_id: int, limit: int) -> list[ProductRead]:
    """Up to ``limit`` products with ids above ``after_id``, by id."""
    rows = conn.execute(PAGE, (after_id, limit), prepare=prepare).fetchall()
    return [product(row) for row in rows]


def update(conn: Conn, prepare: bool, product_id: int, changes: dict[str, object]) -> ProductRead:
    """Set the given columns (names from :data:`UPDATABLE` only) and return the product."""
    columns = [c for c in UPDATABLE if c in changes]
    if not columns:
        return get(conn, prepare, product_id)
    assignments = ", ".join(f"{c} = %s" for c in columns)
    row = conn.execute(
        f"UPDATE products SET {assignments} WHERE id = %s RETURNING {COLUMNS}",
        (*(changes[c] for c in columns), product_id),
        prepare=prepare,
    ).fetchone()
    if row is None:
        raise NotFound("product", product_id)
    return product(row)


def delete(conn: Conn, prepare: bool, product_id: int) -> None:
    """Delete a product (its cart lines go with it); :class:`NotFound` if there is none."""
    if conn.execute(DELETE, (product_id,), prepare=prepare).rowcount == 0:
        raise NotFound("product", product_id)


def adjust(conn: Conn, prepare: bool, product_id: int, delta: int) -> int:
    """Add ``delta`` to the stock atomically; refuse to go below zero."""
    row = conn.execute(ADJUST, {"delta": delta, "id": product_id}, prepare=prepare).fetchone()
    if row is not None:
        return int(row[0])
    # Refused: say why. Only the message depends on this second look.
    current = conn.execute(COUNT, (product_id,), prepare=prepare).fetchone()
    if current is None:
        raise NotFound("product", product_id)
    raise InsufficientInventory([Shortage(product_id, -delta, int(current[0]))])
