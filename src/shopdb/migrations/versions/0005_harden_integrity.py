"""harden_integrity: the database refuses what an e-commerce API must never hold.

Revision ID: 0005
Revises: 0004

Keeps every seed column and type. Adds checks (quantity > 0, stock >= 0,
price >= 0 and finite, bounded names, emails that look like emails), one line
per product per cart, case-insensitive uniqueness of username and email, an
index on every foreign key that no other index leads with (PostgreSQL does not
make them), and ON DELETE CASCADE along users -> carts -> cart_items and
products -> cart_items. The downgrade restores the seed's schema exactly.

Safe on a live database of any size (shopdb.online_ddl): nothing here holds a
lock that blocks reads or writes for longer than a catalog change. Checks and
foreign keys are added NOT VALID and validated separately; indexes, and the
unique constraint's index, are built CONCURRENTLY; each foreign key's ON
DELETE changes by swapping in a validated twin. Interrupted, it is run again
and finishes. Its cost is time, not blocking: every table is scanned by the
pre-checks and again by the validations, and four indexes are built
(docs/migrations.md has the measurements).

Rows that already break a new rule make the upgrade stop, saying which rule
and how many rows, before anything changes. The pre-checks are plain SELECTs
outside any transaction: they block nobody.

An earlier version of this file (one transaction, every lock held to the
end) leaves the same schema; databases that applied it are not reported as
edited (previous_checksums).
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
#: SHA-256 of the earlier, blocking version of this file: same end schema.
previous_checksums = ("ef36fa38bc10f1c2e95ee359fe72d4521adf08469a3bdbc167a359d14f2b3148",)

USERNAME_MAX = 64
EMAIL_MAX = 254
PRODUCT_NAME_MAX = 200
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

CHECKS = [
    (
        "username_valid",
        "users",
        f"char_length(username) BETWEEN 1 AND {USERNAME_MAX} "
        r"AND username ~ '\S' AND strpos(username, '@') = 0",
    ),
    ("email_valid", "users", f"char_length(email) <= {EMAIL_MAX} AND email ~ '{EMAIL_PATTERN}'"),
    (
        "name_valid",
        "products",
        rf"char_length(name) BETWEEN 1 AND {PRODUCT_NAME_MAX} AND name ~ '\S'",
    ),
    # NaN >= 0 is true in PostgreSQL (NaN sorts above every number), and
    # NUMERIC takes Infinity since 14: "< 'Infinity'" excludes both.
    ("price_nonnegative_finite", "products", "price >= 0 AND price < 'Infinity'"),
    ("inventory_count_nonnegative", "products", "inventory_count >= 0"),
    ("quantity_positive", "cart_items", "quantity > 0"),
]


def _one_pass(table: str) -> tuple[str, list[str]]:
    """Every check of ``table`` counted in one scan."""
    mine = [(name, sql) for name, owner, sql in CHECKS if owner == table]
    counts = ", ".join(f"count(*) FILTER (WHERE NOT ({sql}))" for _, sql in mine)
    return f"SELECT {counts} FROM {table}", [f"{table} rows break {name}" for name, _ in mine]


PRECHECKS = [
    _one_pass("users"),
    _one_pass("products"),
    _one_pass("cart_items"),
    (
        "SELECT count(*) FROM (SELECT 1 FROM cart_items GROUP BY cart_id, product_id "
        "HAVING count(*) > 1) d",
        ["cart_items hold a product twice in one cart"],
    ),
    (
        "SELECT count(*) FROM (SELECT 1 FROM users GROUP BY lower(username) HAVING count(*) > 1) d",
        ["users share a username up to case"],
    ),
    (
        "SELECT count(*) FROM (SELECT 1 FROM users GROUP BY lower(email) HAVING count(*) > 1) d",
        ["users share an email up to case"],
    ),
]

# (index name, table, expressions)
UNIQUE_INDEXES = [
    ("uq_users_username_lower", "users", ["lower(username)"]),
    ("uq_users_email_lower", "users", ["lower(email)"]),
]
# cart_items.cart_id is covered by the unique constraint, which leads with it.
INDEXES = [
    ("ix_carts_user_id", "carts", ["user_id"]),
    ("ix_cart_items_product_id", "cart_items", ["product_id"]),
]
FOREIGN_KEYS = [
    ("fk_carts_user_id_users", "carts", "users", "user_id"),
    ("fk_cart_items_cart_id_carts", "cart_items", "carts", "cart_id"),
    ("fk_cart_items_product_id_products", "cart_items", "products", "product_id"),
]
UNIQUE = ("uq_cart_items_cart_id_product_id", "cart_items", ["cart_id", "product_id"])


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.refuse_rows(PRECHECKS)
        for name, table, sql in CHECKS:
            ddl.add_check(table, f"ck_{table}_{name}", sql)
        ddl.add_unique(UNIQUE[1], UNIQUE[0], UNIQUE[2])
        for name, table, expressions in UNIQUE_INDEXES:
            ddl.create_index(name, table, expressions, unique=True)
        for name, table, columns in INDEXES:
            ddl.create_index(name, table, columns)
        for name, table, referred, column in FOREIGN_KEYS:
            ddl.replace_foreign_key(table, name, [column], referred, on_delete="CASCADE")


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        for name, table, referred, column in FOREIGN_KEYS:
            ddl.replace_foreign_key(table, name, [column], referred, on_delete="NO ACTION")
        for name, _, _ in reversed(INDEXES):
            ddl.drop_index(name)
        for name, _, _ in reversed(UNIQUE_INDEXES):
            ddl.drop_index(name)
        ddl.drop_constraint(UNIQUE[1], UNIQUE[0])
        for name, table, _ in reversed(CHECKS):
            ddl.drop_constraint(table, f"ck_{table}_{name}")
