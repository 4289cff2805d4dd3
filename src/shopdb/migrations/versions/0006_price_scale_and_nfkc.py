"""price_scale_and_nfkc: prices have a scale and a bound; names are NFKC-normalized.

Revision ID: 0006
Revises: 0005

* ``products.price`` holds at most two decimal places (by value: 4.500 is
  4.50) and stays below 1,000,000,000, so "0.0000000001" and 60-digit prices
  cannot be stored, from raw SQL either.
* ``users.username`` and ``users.email`` are in Unicode NFKC form, so the NFD
  spelling of "Zoë" cannot register beside the NFC one (the Store normalizes
  before storing and comparing; the database refuses anything else).

Online: each CHECK is added NOT VALID and validated in a transaction of its
own (see ``shopdb.online_ddl``); rows that break a rule stop the upgrade with
counts before anything changes. ``IS NFKC NORMALIZED`` needs a UTF8 database.
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHECKS = [
    (
        "products",
        "ck_products_price_scale",
        "price = round(price, 2) AND price < 1000000000",
        "products rows have a price with more than 2 decimals or of 1,000,000,000 or more",
    ),
    (
        "users",
        "ck_users_username_nfkc",
        "username IS NFKC NORMALIZED",
        "users rows have a username not in Unicode NFKC form",
    ),
    (
        "users",
        "ck_users_email_nfkc",
        "email IS NFKC NORMALIZED",
        "users rows have an email not in Unicode NFKC form",
    ),
]


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.refuse_rows(
            [
                (
                    "SELECT count(*) FILTER (WHERE NOT (price = round(price, 2) "
                    "AND price < 1000000000)) FROM products",
                    [CHECKS[0][3]],
                ),
                (
                    "SELECT count(*) FILTER (WHERE username IS NOT NFKC NORMALIZED), "
                    "count(*) FILTER (WHERE email IS NOT NFKC NORMALIZED) FROM users",
                    [CHECKS[1][3], CHECKS[2][3]],
                ),
            ]
        )
        for table, name, condition, _ in CHECKS:
            ddl.add_check(table, name, condition)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        for table, name, _, _ in reversed(CHECKS):
            ddl.drop_constraint(table, name)
