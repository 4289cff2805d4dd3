"""idempotency_keys: an order records the key of the checkout that placed it.

Revision ID: 0012
Revises: 0011

* ``orders.idempotency_key``: NULL, or the key the caller gave checkout (the
  ``Idempotency-Key`` header of a web API): 1 to 255 printable ASCII
  characters (space to ``~``), a CHECK.
* ``uq_orders_user_id_idempotency_key`` (user_id, idempotency_key): one order
  per key per user. A checkout repeated with its key finds that order and
  sells nothing again; two racing ones cannot both place one.

Online: the column is added without a default (a catalog change), the CHECK
NOT VALID and then validated (every existing row is NULL), the unique index
built CONCURRENTLY and attached as a constraint ``USING INDEX``. NULL keys
never collide, so the orders placed before stay as they are.

Deploy the code that writes the key with or after this migration, and run
``shopdb setup --app-role NAME`` again afterwards: the app role needs the
new column in its ``SELECT`` and ``INSERT`` grants on ``orders``.
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The bounds as this migration writes them (shopdb.limits may change later; an
# applied migration may not).
KEY_MAX = 255
KEY_CHECK = (
    f"char_length(idempotency_key) BETWEEN 1 AND {KEY_MAX} AND idempotency_key ~ '^[\\x20-\\x7e]+$'"
)
UNIQUE = "uq_orders_user_id_idempotency_key"


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.brief("ALTER TABLE orders ADD COLUMN IF NOT EXISTS idempotency_key text")
        ddl.add_check("orders", "ck_orders_idempotency_key_valid", KEY_CHECK)
        ddl.add_unique("orders", UNIQUE, ["user_id", "idempotency_key"])


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.drop_constraint("orders", UNIQUE)
        ddl.drop_constraint("orders", "ck_orders_idempotency_key_valid")
        ddl.brief("ALTER TABLE orders DROP COLUMN IF EXISTS idempotency_key")
