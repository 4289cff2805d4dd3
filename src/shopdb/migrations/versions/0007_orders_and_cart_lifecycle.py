"""orders_and_cart_lifecycle: the sale is recorded; a user has one open cart.

Revision ID: 0007
Revises: 0006

New tables (the seed's four tables keep their columns and types):

* ``orders``: who bought (``user_id``), from which cart (``cart_id``, unique:
  one cart makes at most one order, which is what makes checkout
  idempotent), ``status`` (placed, paid, shipped, cancelled), ``total``,
  ``created_at``/``updated_at`` as ``timestamptz``. Users and carts with
  orders cannot be deleted (RESTRICT): sales records outlive accounts.
* ``order_items``: per line the product id, name and unit price *as they
  were*, and the quantity. Deleting a product sets ``product_id`` to NULL
  (ON DELETE SET NULL) and keeps the line: a shop must be able to retire a
  product, and an order must keep saying what was sold at what price.
* ``inventory_adjustments``: every unit of stock that came in (a product's
  initial stock, restocks, corrections), so "stock now + units in orders
  not cancelled = stock received" can be checked from the tables alone.

A new column: ``carts.closed_at`` (NULL while the cart is open). A partial
unique index lets each user have one open cart at most; a trigger refuses
any insert or update of a closed cart's lines, from raw SQL too.

Existing databases: every user's newest open cart stays open and the older
ones are closed (their lines stay, read-only), so the unique index can be
built. Existing products get their current stock as an initial adjustment.

Online: the column is added without a default (a catalog change), the index
is built CONCURRENTLY, the trigger and the new tables' foreign keys take
brief locks only (retried in short attempts). Closing extra carts updates
only those carts' rows; backfilling adjustments only reads products.
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

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
CART_OPEN_TRIGGER = (
    "CREATE OR REPLACE TRIGGER cart_items_cart_open BEFORE INSERT OR UPDATE ON cart_items "
    "FOR EACH ROW EXECUTE FUNCTION shopdb_cart_items_cart_open()"
)
ORDERS = """
CREATE TABLE IF NOT EXISTS orders (
    id SERIAL CONSTRAINT pk_orders PRIMARY KEY,
    user_id INTEGER NOT NULL
        CONSTRAINT fk_orders_user_id_users REFERENCES users (id) ON DELETE RESTRICT,
    cart_id INTEGER NOT NULL
        CONSTRAINT fk_orders_cart_id_carts REFERENCES carts (id) ON DELETE RESTRICT,
    status VARCHAR NOT NULL DEFAULT 'placed',
    total NUMERIC NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_orders_cart_id UNIQUE (cart_id),
    CONSTRAINT ck_orders_status_known
        CHECK (status IN ('placed', 'paid', 'shipped', 'cancelled')),
    CONSTRAINT ck_orders_total_amount
        CHECK (total >= 0 AND total = round(total, 2) AND total < 'Infinity')
)
"""
ORDER_ITEMS = """
CREATE TABLE IF NOT EXISTS order_items (
    id SERIAL CONSTRAINT pk_order_items PRIMARY KEY,
    order_id INTEGER NOT NULL
        CONSTRAINT fk_order_items_order_id_orders REFERENCES orders (id) ON DELETE CASCADE,
    product_id INTEGER
        CONSTRAINT fk_order_items_product_id_products REFERENCES products (id)
        ON DELETE SET NULL,
    name VARCHAR NOT NULL,
    unit_price NUMERIC NOT NULL,
    quantity INTEGER NOT NULL,
    CONSTRAINT ck_order_items_quantity_positive CHECK (quantity > 0),
    CONSTRAINT ck_order_items_unit_price_amount
        CHECK (unit_price >= 0 AND unit_price = round(unit_price, 2))
)
"""
ADJUSTMENTS = """
CREATE TABLE IF NOT EXISTS inventory_adjustments (
    id SERIAL CONSTRAINT pk_inventory_adjustments PRIMARY KEY,
    product_id INTEGER NOT NULL
        CONSTRAINT fk_inventory_adjustments_product_id_products REFERENCES products (id)
        ON DELETE CASCADE,
    delta INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
# A product's initial stock is its first adjustment, however it was inserted
# (the Store, COPY, the ORM, raw SQL): one statement-level trigger.
INITIAL_STOCK_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_products_initial_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inventory_adjustments (product_id, delta)
    SELECT id, inventory_count FROM inserted WHERE inventory_count <> 0;
    RETURN NULL;
END
$$
"""
INITIAL_STOCK_TRIGGER = (
    "CREATE OR REPLACE TRIGGER products_initial_stock AFTER INSERT ON products "
    "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
    "EXECUTE FUNCTION shopdb_products_initial_stock()"
)
# Every user's newest open cart stays open; the older ones are closed.
CLOSE_EXTRA_CARTS = """
UPDATE carts SET closed_at = now()
WHERE closed_at IS NULL AND id NOT IN (
    SELECT max(id) FROM carts WHERE closed_at IS NULL GROUP BY user_id
)
"""
BACKFILL_ADJUSTMENTS = """
INSERT INTO inventory_adjustments (product_id, delta)
SELECT p.id, p.inventory_count FROM products p
WHERE p.inventory_count <> 0
  AND NOT EXISTS (SELECT 1 FROM inventory_adjustments a WHERE a.product_id = p.id)
"""
INDEXES = [
    ("ix_orders_user_id_id", "orders", ["user_id", "id"]),
    ("ix_order_items_order_id", "order_items", ["order_id"]),
    ("ix_order_items_product_id", "order_items", ["product_id"]),
    ("ix_inventory_adjustments_product_id", "inventory_adjustments", ["product_id"]),
]


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.brief("ALTER TABLE carts ADD COLUMN IF NOT EXISTS closed_at TIMESTAMPTZ")
        ddl.brief(ORDERS)
        ddl.brief(ORDER_ITEMS)
        ddl.brief(ADJUSTMENTS)
        for name, table, columns in INDEXES:
            ddl.create_index(name, table, columns)
        ddl.unblocking(CLOSE_EXTRA_CARTS)
        ddl.create_index(
            "uq_carts_user_id_open", "carts", ["user_id"], unique=True, where="closed_at IS NULL"
        )
        ddl.unblocking(CART_OPEN_FUNCTION)
        ddl.brief(CART_OPEN_TRIGGER)
        ddl.unblocking(INITIAL_STOCK_FUNCTION)
        ddl.brief(INITIAL_STOCK_TRIGGER)
        ddl.unblocking(BACKFILL_ADJUSTMENTS)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.brief("DROP TRIGGER IF EXISTS products_initial_stock ON products")
        ddl.unblocking("DROP FUNCTION IF EXISTS shopdb_products_initial_stock()")
        ddl.brief("DROP TRIGGER IF EXISTS cart_items_cart_open ON cart_items")
        ddl.unblocking("DROP FUNCTION IF EXISTS shopdb_cart_items_cart_open()")
        ddl.drop_index("uq_carts_user_id_open")
        ddl.brief("DROP TABLE IF EXISTS inventory_adjustments")
        ddl.brief("DROP TABLE IF EXISTS order_items")
        ddl.brief("DROP TABLE IF EXISTS orders")
        ddl.brief("ALTER TABLE carts DROP COLUMN IF EXISTS closed_at")
