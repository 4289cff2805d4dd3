"""catalog_search: full-text search on products, and an index for each sort of the catalog.

Revision ID: 0011
Revises: 0010

* ``products.search``: a ``tsvector`` of the name (weight A) and the
  description (weight B) in the ``english`` configuration, computed by
  :func:`shopdb_product_search` and kept current by a trigger on every
  insert and on every update of ``name`` or ``description``, whoever writes
  them (the Store, COPY, the bulk importer, raw SQL). A GIN index on it.
* ``ix_products_price_id`` (price, id) for the price sorts and ranges;
  ``ix_products_name_id`` (name COLLATE "C", id) for the name sort: byte
  order, the same on every server whatever its locale (a libc or ICU
  collation changes with the operating system's version and silently
  corrupts an index built under the old one); newest is ``id`` descending,
  which the primary key serves.

Online: a trigger-maintained column rather than a STORED generated column,
because adding a stored generated column rewrites the whole table under an
ACCESS EXCLUSIVE lock. The column is added without a default (a catalog
change), the function and trigger are brief catalog changes, the existing
rows are backfilled in batches of 5,000 ids, each batch its own transaction
(a row the shop writes meanwhile waits at most for one batch), and the
indexes are built CONCURRENTLY. The trigger exists before the backfill
starts, so a row written meanwhile is computed by the trigger and skipped by
the backfill (``search IS NULL``); a backfill cut short is finished by a rerun.
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The one definition of a product's search document, used by the trigger and
# the backfill alike (and by nothing else: the Store queries the column).
SEARCH_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_product_search(name text, description text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')
$$
"""
TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_products_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := shopdb_product_search(NEW.name, NEW.description);
    RETURN NEW;
END
$$
"""
TRIGGER = (
    "CREATE OR REPLACE TRIGGER products_search "
    "BEFORE INSERT OR UPDATE OF name, description ON products "
    "FOR EACH ROW EXECUTE FUNCTION shopdb_products_search()"
)
INDEXES = [
    ("ix_products_search", "products", ["search"], "gin"),
    ("ix_products_price_id", "products", ["price", "id"], None),
    ("ix_products_name_id", "products", ['name COLLATE "C"', "id"], None),
]


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.brief("ALTER TABLE products ADD COLUMN IF NOT EXISTS search tsvector")
        ddl.unblocking(SEARCH_FUNCTION)
        ddl.unblocking(TRIGGER_FUNCTION)
        ddl.brief(TRIGGER)
        ddl.backfill(
            "products",
            "search = shopdb_product_search(name, description)",
            where="search IS NULL",
        )
        for name, table, columns, using in INDEXES:
            ddl.create_index(name, table, columns, using=using)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        for name, _, _, _ in reversed(INDEXES):
            ddl.drop_index(name)
        ddl.brief("DROP TRIGGER IF EXISTS products_search ON products")
        ddl.unblocking("DROP FUNCTION IF EXISTS shopdb_products_search()")
        ddl.brief("ALTER TABLE products DROP COLUMN IF EXISTS search")
        ddl.unblocking("DROP FUNCTION IF EXISTS shopdb_product_search(text, text)")
