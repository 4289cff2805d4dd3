"""harden_integrity: the database refuses what an e-commerce API must never hold.

Revision ID: 0005
Revises: 0004

Keeps every seed column and type. Adds checks (quantity > 0, stock >= 0,
price >= 0 and finite, bounded names, emails that look like emails), one line
per product per cart, case-insensitive uniqueness of username and email, an
index on every foreign key that no other index leads with (PostgreSQL does not
make them), and ON DELETE CASCADE along users -> carts -> cart_items and
products -> cart_items. The downgrade restores the seed's schema exactly.

Rows that already break a new rule make the upgrade stop, saying which rule
and how many rows, before anything changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

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

# (what is wrong, query counting the rows that are wrong)
PRECHECKS = [
    *[
        (f"{table} rows break {name}", f"SELECT count(*) FROM {table} WHERE NOT ({sql})")
        for name, table, sql in CHECKS
    ],
    (
        "cart_items hold a product twice in one cart",
        "SELECT count(*) FROM (SELECT 1 FROM cart_items GROUP BY cart_id, product_id "
        "HAVING count(*) > 1) d",
    ),
    (
        "users share a username up to case",
        "SELECT count(*) FROM (SELECT 1 FROM users GROUP BY lower(username) HAVING count(*) > 1) d",
    ),
    (
        "users share an email up to case",
        "SELECT count(*) FROM (SELECT 1 FROM users GROUP BY lower(email) HAVING count(*) > 1) d",
    ),
]

FOREIGN_KEYS = [
    ("fk_carts_user_id_users", "carts", "users", "user_id"),
    ("fk_cart_items_cart_id_carts", "cart_items", "carts", "cart_id"),
    ("fk_cart_items_product_id_products", "cart_items", "products", "product_id"),
]


def _refuse_bad_rows() -> None:
    if op.get_context().as_sql:
        return  # printing SQL (--sql): there are no rows to look at
    conn = op.get_bind()
    found = []
    for problem, query in PRECHECKS:
        count = conn.exec_driver_sql(query).scalar_one()
        if count:
            found.append(f"{count} {problem}")
    if found:
        raise RuntimeError(
            "existing rows break the new rules: " + "; ".join(found) + " (fix them, then run again)"
        )


def upgrade() -> None:
    _refuse_bad_rows()
    for name, table, sql in CHECKS:
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, sa.text(sql))
    op.create_unique_constraint(
        op.f("uq_cart_items_cart_id_product_id"), "cart_items", ["cart_id", "product_id"]
    )
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    # cart_items.cart_id is covered by the unique constraint above, which leads with it.
    op.create_index(op.f("ix_carts_user_id"), "carts", ["user_id"])
    op.create_index(op.f("ix_cart_items_product_id"), "cart_items", ["product_id"])
    for name, table, referred, column in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
        op.create_foreign_key(op.f(name), table, referred, [column], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    for name, table, referred, column in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
        op.create_foreign_key(op.f(name), table, referred, [column], ["id"])
    op.drop_index(op.f("ix_cart_items_product_id"), table_name="cart_items")
    op.drop_index(op.f("ix_carts_user_id"), table_name="carts")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_constraint(op.f("uq_cart_items_cart_id_product_id"), "cart_items", type_="unique")
    for name, table, _ in reversed(CHECKS):
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
