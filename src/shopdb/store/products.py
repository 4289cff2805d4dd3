"""Products: the catalog and its stock, as Store operations (see :mod:`shopdb.store.core`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from shopdb.errors import InsufficientInventory, InvalidInput, NotFound, Shortage
from shopdb.limits import INT_MAX
from shopdb.schemas import NewProduct, ProductChanges, ProductRead
from shopdb.store.arguments import ident, integer
from shopdb.store.core import ALL, COUNT, ONE, Query, Steps, operation, relabel, returned, validated

#: Most products a page of list_products may hold.
PAGE_MAX = 1000

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
COUNT_STOCK = "SELECT inventory_count FROM products WHERE id = %s"
#: The columns update_product may set, in a fixed order.
UPDATABLE = ("name", "description", "price", "inventory_count")

_PAGE = TypeAdapter(list[ProductRead])


def _values(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "description": row[2],
        "price": row[3],
        "inventory_count": row[4],
    }


def product(row: tuple[Any, ...]) -> ProductRead:
    """A row of :data:`COLUMNS` as the public shape."""
    return ProductRead.model_validate(_values(row))


@operation()
def create(
    name: str, price: Decimal | int | str, inventory_count: int, description: str | None = None
) -> Steps[ProductRead]:
    """Add a product."""
    new = validated(
        NewProduct,
        name=name,
        price=price,
        inventory_count=inventory_count,
        description=description,
    )
    params = (new.name, new.description, new.price, new.inventory_count)
    return product(returned((yield Query(INSERT, params, ONE))))


@operation(read_only=True, replica="stale")
def get(product_id: int) -> Steps[ProductRead]:
    """The product with ``product_id``; :class:`NotFound` if there is none."""
    ident(product_id, "product_id")
    row = yield Query(GET, (product_id,), ONE)
    if row is None:
        raise NotFound("product", product_id)
    return product(row)


@operation(read_only=True, replica="stale")
def page(after_id: int | None = None, limit: int = 50) -> Steps[list[ProductRead]]:
    """Up to ``limit`` products with ids above ``after_id``, by id."""
    after = 0 if after_id is None else integer(after_id, "after_id", 0)
    integer(limit, "limit", 1, PAGE_MAX)
    rows = yield Query(PAGE, (after, limit), ALL)
    return _PAGE.validate_python([_values(row) for row in rows])


@operation()
def update(product_id: int, **changes: object) -> Steps[ProductRead]:
    """Set the given columns (names from :data:`UPDATABLE` only) and return the product."""
    ident(product_id, "product_id")
    parsed = validated(ProductChanges, **changes)
    values = {field: getattr(parsed, field) for field in parsed.model_fields_set}
    for field, value in values.items():
        if value is None and field != "description":
            raise InvalidInput(field, "must not be null")
    columns = [c for c in UPDATABLE if c in values]
    if columns:
        assignments = ", ".join(f"{c} = %s" for c in columns)
        sql = f"UPDATE products SET {assignments} WHERE id = %s RETURNING {COLUMNS}"
        row = yield Query(sql, (*(values[c] for c in columns), product_id), ONE)
    else:
        row = yield Query(GET, (product_id,), ONE)
    if row is None:
        raise NotFound("product", product_id)
    return product(row)


@operation()
def delete(product_id: int) -> Steps[None]:
    """Delete a product (its cart lines go with it); :class:`NotFound` if there is none."""
    ident(product_id, "product_id")
    if (yield Query(DELETE, (product_id,), COUNT)) == 0:
        raise NotFound("product", product_id)


@operation()
def adjust(product_id: int, delta: int) -> Steps[int]:
    """Add ``delta`` to the stock atomically; refuse to go below zero."""
    ident(product_id, "product_id")
    integer(delta, "delta", -INT_MAX, INT_MAX)
    try:
        row = yield Query(ADJUST, {"delta": delta, "id": product_id}, ONE)
    except InvalidInput as exc:
        if exc.field != "value":
            raise
        raise relabel(exc, "delta") from exc
    if row is not None:
        return int(row[0])
    # Refused: say why. Only the message depends on this second look.
    current = yield Query(COUNT_STOCK, (product_id,), ONE)
    if current is None:
        raise NotFound("product", product_id)
    raise InsufficientInventory([Shortage(product_id, -delta, int(current[0]))])
