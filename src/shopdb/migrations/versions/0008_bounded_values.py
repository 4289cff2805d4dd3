"""bounded_values: every stored text has a maximum, a cart at most 100 lines, a cancel
can never overflow the stock.

Revision ID: 0008
Revises: 0007

* ``products.description`` holds at most 10,000 characters, ``users.password_hash``
  at most 255 and ``order_items.name`` at most 200 (a product name's bound: it is
  copied from one). The seed's other text columns were bounded by 0005.
* ``products.units_ordered``: the units of the product on placed or paid orders,
  kept by checkout, ship and cancel. ``inventory_count + units_ordered`` stays at
  most 2,147,483,647: a cancel moves units from the second to the first, so it
  can never overflow the INTEGER column, and a restock that would pass the bound
  is refused instead (before, a cancel could fail for good).
* A cart holds at most 100 distinct products: the trigger that guards a closed
  cart's lines (0007) also counts them, under the cart's row lock so that
  concurrent inserts cannot both take the last place.

Existing databases: rows over a bound, carts of more than 100 lines and products
whose stock plus open orders would pass the bound stop the upgrade with counts,
before anything changes. ``units_ordered`` is added with a constant default (a
catalog change), then counted from the open orders in batches of 10,000 product
ids, each committed on its own, so no product row stays locked for long.

Online: each CHECK is added NOT VALID and validated in a transaction of its own.
Deploy the code that keeps ``units_ordered`` together with this migration: a
checkout made by older code after the count is not counted (a cancel then stops
the count at 0 rather than failing).
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The bounds as this migration writes them (shopdb.limits may change later; an
# applied migration may not).
DESCRIPTION_MAX = 10_000
PASSWORD_HASH_MAX = 255
PRODUCT_NAME_MAX = 200
CART_LINES_MAX = 100
STOCK_MAX = 2**31 - 1

# (table, constraint, condition, what the pre-check reports)
CHECKS = [
    (
        "products",
        "ck_products_description_length",
        f"char_length(description) <= {DESCRIPTION_MAX}",
        f"products rows have a description longer than {DESCRIPTION_MAX:,} characters",
    ),
    (
        "users",
        "ck_users_password_hash_length",
        f"char_length(password_hash) <= {PASSWORD_HASH_MAX}",
        f"users rows have a password_hash longer than {PASSWORD_HASH_MAX} characters",
    ),
    (
        "order_items",
        "ck_order_items_name_length",
        f"char_length(name) <= {PRODUCT_NAME_MAX}",
        f"order_items rows have a name longer than {PRODUCT_NAME_MAX} characters",
    ),
    (
        "products",
        "ck_products_units_ordered_nonnegative",
        "units_ordered >= 0",
        "",
    ),
    (
        "products",
        "ck_products_stock_bounded",
        f"inventory_count::bigint + units_ordered <= {STOCK_MAX}",
        "",
    ),
]
# Units on open orders per product, from the tables.
_OPEN_UNITS = """
SELECT oi.product_id, sum(oi.quantity) AS units
FROM order_items oi JOIN orders o ON o.id = oi.order_id
WHERE o.status IN ('placed', 'paid') AND oi.product_id IS NOT NULL
GROUP BY oi.product_id
"""
PRECHECKS = [
    (
        "SELECT count(*) FILTER (WHERE char_length(description) > "
        f"{DESCRIPTION_MAX}) FROM products",
        [CHECKS[0][3]],
    ),
    (
        f"SELECT count(*) FILTER (WHERE char_length(password_hash) > {PASSWORD_HASH_MAX}) "
        "FROM users",
        [CHECKS[1][3]],
    ),
    (
        f"SELECT count(*) FILTER (WHERE char_length(name) > {PRODUCT_NAME_MAX}) FROM order_items",
        [CHECKS[2][3]],
    ),
    (
        "SELECT count(*) FROM (SELECT 1 FROM cart_items GROUP BY cart_id "
        f"HAVING count(*) > {CART_LINES_MAX}) c",
        [f"carts hold more than {CART_LINES_MAX} lines"],
    ),
    (
        f"SELECT count(*) FROM products p JOIN ({_OPEN_UNITS}) u ON u.product_id = p.id "
        f"WHERE p.inventory_count + u.units > {STOCK_MAX}",
        [f"products rows have a stock which, with their open orders, passes {STOCK_MAX:,}"],
    ),
]
ADD_UNITS_ORDERED = (
    "ALTER TABLE products ADD COLUMN IF NOT EXISTS units_ordered INTEGER NOT NULL DEFAULT 0"
)
# Batches of product ids, each committed (a DO block may COMMIT when it runs outside
# a transaction, as online steps do): a product row is locked for one batch only.
COUNT_UNITS_ORDERED = """
DO $$
DECLARE
    low integer := 0;
    top integer;
BEGIN
    SELECT coalesce(max(id), 0) INTO top FROM products;
    WHILE low < top LOOP
        UPDATE products p SET units_ordered = u.units
        FROM (
            SELECT oi.product_id, sum(oi.quantity)::integer AS units
            FROM order_items oi JOIN orders o ON o.id = oi.order_id
            WHERE o.status IN ('placed', 'paid')
              AND oi.product_id > low AND oi.product_id <= low + 10000
            GROUP BY oi.product_id
        ) u
        WHERE p.id = u.product_id AND p.units_ordered <> u.units;
        COMMIT;
        low := low + 10000;
    END LOOP;
END
$$
"""
# 0007's function, with the count of lines added. The row lock on the cart is
# FOR NO KEY UPDATE now: two inserts into one cart wait for each other, so the
# second one counts the first one's line.
CART_LINES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION shopdb_cart_items_cart_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM carts WHERE id = NEW.cart_id AND closed_at IS NULL FOR NO KEY UPDATE;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM carts WHERE id = NEW.cart_id) THEN
        -- (No format placeholders: this text also goes through Python drivers.)
        RAISE EXCEPTION USING MESSAGE = 'cart ' || NEW.cart_id || ' is closed',
            ERRCODE = 'check_violation', CONSTRAINT = 'ck_cart_items_cart_open',
            TABLE = 'cart_items';
    END IF;
    IF (SELECT count(*) FROM cart_items
        WHERE cart_id = NEW.cart_id AND product_id <> NEW.product_id) >= {CART_LINES_MAX} THEN
        RAISE EXCEPTION USING MESSAGE = 'cart ' || NEW.cart_id || ' is full',
            ERRCODE = 'check_violation', CONSTRAINT = 'ck_cart_items_lines_max',
            TABLE = 'cart_items';
    END IF;
    RETURN NEW;
END
$$
"""
# 0007's function as it was.
CART_OPEN_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_cart_items_cart_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- FOR SHARE waits for a checkout of this cart to finish and then reads
    -- the cart as it committed, so a line can never slip into a sold cart.
    PERFORM 1 FROM carts WHERE id = NEW.cart_id AND closed_at IS NULL FOR SHARE;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM carts WHERE id = NEW.cart_id) THEN
        -- (No format placeholders: this text also goes through Python drivers.)
        RAISE EXCEPTION USING MESSAGE = 'cart ' || NEW.cart_id || ' is closed',
            ERRCODE = 'check_violation', CONSTRAINT = 'ck_cart_items_cart_open',
            TABLE = 'cart_items';
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.refuse_rows(PRECHECKS)
        ddl.brief(ADD_UNITS_ORDERED)
        ddl.unblocking(COUNT_UNITS_ORDERED)
        for table, name, condition, _ in CHECKS:
            ddl.add_check(table, name, condition)
        ddl.unblocking(CART_LINES_FUNCTION)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.unblocking(CART_OPEN_FUNCTION)
        for table, name, _, _ in reversed(CHECKS):
            ddl.drop_constraint(table, name)
        ddl.brief("ALTER TABLE products DROP COLUMN IF EXISTS units_ordered")
