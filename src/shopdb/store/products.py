"""Products: the catalog and its stock, as Store operations (see :mod:`shopdb.store.core`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shopdb.errors import InsufficientInventory, InvalidInput, NotFound, Shortage
from shopdb.limits import INT_MAX, PRODUCTS_PAGE_MAX, STOCK_MAX
from shopdb.schemas import NewProduct, Page, ProductChanges, ProductRead
from shopdb.store.arguments import id_cursor, ident, integer, keyset_start
from shopdb.store.core import ALL, COUNT, ONE, Query, Steps, operation, relabel, returned, validated

#: Most products a page of list_products may hold (:data:`shopdb.limits.PRODUCTS_PAGE_MAX`).
PAGE_MAX = PRODUCTS_PAGE_MAX

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
# The change is recorded in inventory_adjustments in the same statement, so
# stock can be reconciled with sales from the tables alone.
ADJUST = """
WITH changed AS (
    UPDATE products SET inventory_count = inventory_count + %(delta)s
    WHERE id = %(id)s AND inventory_count + %(delta)s >= 0
    RETURNING id, inventory_count
), recorded AS (
    INSERT INTO inventory_adjustments (product_id, delta)
    SELECT id, %(delta)s FROM changed WHERE %(delta)s <> 0
)
SELECT inventory_count FROM changed
"""
COUNT_STOCK = "SELECT inventory_count FROM products WHERE id = %s"
#: What a list_products cursor says it is for (another list's is refused).
KIND = "products"
#: The columns update_product may set, in a fixed order.
UPDATABLE = ("name", "description", "price", "inventory_count")

_PRODUCT_PAGE = Page[ProductRead]


def as_price(value: object) -> object:
    """An int price (``4``) is exact too: take it as a Decimal. Everything else is
    left to :data:`~shopdb.schemas.Price`, which in JSON takes only strings."""
    return Decimal(value) if type(value) is int else value


def _values(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "description": row[2],
        "price": row[3],
        "inventory_count": row[4],
    }


def product_page(rows: list[tuple[Any, ...]], following: str | None) -> Page[ProductRead]:
    """Rows of :data:`COLUMNS` as a page, with the cursor of the next one: validated in
    one call (a model per row costs some 1.5 us more each)."""
    return _PRODUCT_PAGE.model_validate(
        {"items": [_values(row) for row in rows], "next": following}
    )


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
        price=as_price(price),
        inventory_count=inventory_count,
        description=description,
    )
    # (A trigger records the initial stock as the product's first adjustment.)
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
def page(
    after_id: int | None = None, limit: int = 50, *, cursor: str | None = None
) -> Steps[Page[ProductRead]]:
    """Up to ``limit`` products with ids above ``after_id`` (or the ``cursor``'s), by id,
    and the cursor of the next page (None on the last)."""
    after = keyset_start(after_id, "after_id", 0, cursor, KIND)
    integer(limit, "limit", 1, PAGE_MAX)
    # One row more than the page: whether there is a next page, without a count.
    rows = yield Query(PAGE, (after or 0, limit + 1), ALL)
    following = id_cursor(KIND, rows[limit - 1][0]) if len(rows) > limit else None
    return product_page(rows[:limit], following)


# Only the given columns change; a new stock level is recorded as the
# adjustment it is (new minus old), in the same statement.
UPDATE = """
WITH before AS (
    SELECT id, inventory_count FROM products WHERE id = %(id)s FOR UPDATE
), changed AS (
    UPDATE products p SET {assignments} FROM before b WHERE p.id = b.id
    RETURNING p.id, p.name, p.description, p.price, p.inventory_count
), recorded AS (
    INSERT INTO inventory_adjustments (product_id, delta)
    SELECT c.id, c.inventory_count - b.inventory_count FROM changed c, before b
    WHERE c.inventory_count <> b.inventory_count
)
SELECT id, name, description, price, inventory_count FROM changed
"""


@operation()
def update(
    product_id: int, changes: ProductChanges | None = None, **fields: object
) -> Steps[ProductRead]:
    """Set the given columns and return the product: those ``changes`` holds (sent by a
    client), or the keyword ``fields`` (names from :data:`UPDATABLE` only), not both."""
    ident(product_id, "product_id")
    values = _changes(changes, fields)
    columns = [c for c in UPDATABLE if c in values]
    if columns:
        sql = UPDATE.format(assignments=", ".join(f"{c} = %({c})s" for c in columns))
        row = yield Query(sql, {"id": product_id, **{c: values[c] for c in columns}}, ONE)
    else:
        row = yield Query(GET, (product_id,), ONE)
    if row is None:
        raise NotFound("product", product_id)
    return product(row)


def _changes(changes: object, fields: dict[str, object]) -> dict[str, Any]:
    if changes is None:
        if "price" in fields:
            fields["price"] = as_price(fields["price"])
        return validated(ProductChanges, **fields).given()
    if not isinstance(changes, ProductChanges):
        raise InvalidInput("changes", "must be a ProductChanges")
    if fields:
        raise InvalidInput("changes", "must not be given with keyword changes")
    return changes.given()


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
        if exc.field == "inventory_count":  # ck_products_stock_bounded
            raise InvalidInput(
                "delta", f"would take the stock and open orders past {STOCK_MAX:,} units"
            ) from exc
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
