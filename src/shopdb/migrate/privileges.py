"""What the app role may do: exactly what the Store does, each grant with its reason.

``shopdb setup --app-role NAME`` (:func:`shopdb.migrate.admin.grant_app_role`) revokes
everything the role holds on shopdb's tables, sequences and functions, then
grants :data:`APP_GRANTS` and nothing else. The README's "The app role"
lists the same grants (a test compares them), and docs/reliability.md says
what each refusal defends against.

Column lists are deliberate: a column left out of an ``INSERT`` grant keeps
its default (an order's ``status`` is ``placed``, its ``created_at`` now,
every ``id`` its sequence's next value), one left out of ``SELECT`` cannot be
read (``users.password_hash``), one left out of ``UPDATE`` cannot change
(an order's ``total``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE", "USAGE", "EXECUTE"]
Kind = Literal["table", "sequence", "function"]


@dataclass(frozen=True)
class Grant:
    """One privilege on one object (on ``columns`` only, when given), and why the Store needs it."""

    privilege: Privilege
    on: str
    why: str
    columns: tuple[str, ...] = ()
    kind: Kind = "table"

    def describe(self) -> str:
        """``SELECT (id, name) ON products``: the grant as it reads in the docs."""
        columns = f" ({', '.join(self.columns)})" if self.columns else ""
        kind = "" if self.kind == "table" else f"{self.kind.upper()} "
        return f"{self.privilege}{columns} ON {kind}{self.on}"


_USER = ("id", "username", "email", "created_at")
_PRODUCT = ("id", "name", "description", "price", "inventory_count")
_ORDER = ("id", "user_id", "cart_id", "status", "total", "created_at", "updated_at")
# The key a checkout was given (0012): read by a repeated checkout, never shown.
_ORDER_KEY = ("idempotency_key",)

#: Every grant the app role holds, in the order the docs list them.
APP_GRANTS: tuple[Grant, ...] = (
    # users: registration and profiles; never the hash, never a change.
    Grant("SELECT", "users", "get_user; what create_user returns", _USER),
    Grant("SELECT", "users", "UserRead says whether the user is staff", ("role",)),
    Grant(
        "SELECT",
        "users",
        "find_user finds a username by its key, as the login functions do",
        ("username_key",),
    ),
    Grant(
        "INSERT",
        "users",
        "create_user (id, created_at and role keep their defaults)",
        ("username", "username_key", "email", "password_hash"),
    ),
    Grant("USAGE", "users_id_seq", "create_user's id", kind="sequence"),
    Grant(
        "EXECUTE",
        "shopdb_login_begin(text,text)",
        "authenticate: counts the attempt, returns the hash's settings without its digest",
        kind="function",
    ),
    Grant(
        "EXECUTE",
        "shopdb_login_finish(text,text,text)",
        "authenticate: compares the candidate digest in the database, upgrades a weak hash",
        kind="function",
    ),
    # products: the catalog, and its stock.
    Grant("SELECT", "products", "get_product, list_products, carts' views, checkout", _PRODUCT),
    Grant(
        "SELECT",
        "products",
        "search_products matches the search document (a trigger writes it)",
        ("search",),
    ),
    Grant("INSERT", "products", "create_product", _PRODUCT[1:]),
    Grant(
        "UPDATE",
        "products",
        "update_product, adjust_inventory; checkout and cancel_order move the stock",
        _PRODUCT[1:],
    ),
    Grant(
        "SELECT",
        "products",
        "checkout, ship_order and cancel_order move units on and off the open orders",
        ("units_ordered",),
    ),
    Grant(
        "UPDATE",
        "products",
        "checkout counts the units ordered; ship_order and cancel_order take them off",
        ("units_ordered",),
    ),
    Grant("DELETE", "products", "delete_product (order lines keep name and price)"),
    Grant("USAGE", "products_id_seq", "create_product's id", kind="sequence"),
    # carts: opened and closed, never reopened (a trigger), never deleted.
    Grant(
        "SELECT",
        "carts",
        "finding the user's open cart; views; checkout",
        ("id", "user_id", "created_at", "closed_at"),
    ),
    Grant("INSERT", "carts", "open_cart (one open cart per user)", ("user_id",)),
    Grant(
        "UPDATE",
        "carts",
        "checkout closes the cart (and locks it FOR UPDATE/SHARE)",
        ("closed_at",),
    ),
    Grant("USAGE", "carts_id_seq", "open_cart's id", kind="sequence"),
    # cart_items: the lines of open carts (a trigger refuses a closed cart's).
    Grant(
        "SELECT",
        "cart_items",
        "views; adding to a line; checkout (and the price each line went in at)",
        ("id", "cart_id", "product_id", "quantity", "unit_price"),
    ),
    Grant(
        "INSERT",
        "cart_items",
        "add_to_cart, set_quantity (with the price the line goes in at)",
        ("cart_id", "product_id", "quantity", "unit_price"),
    ),
    Grant(
        "UPDATE",
        "cart_items",
        "add_to_cart, set_quantity change a line's quantity and price seen",
        ("quantity", "unit_price"),
    ),
    Grant("DELETE", "cart_items", "remove_from_cart; checkout empties the cart"),
    Grant("USAGE", "cart_items_id_seq", "a new line's id", kind="sequence"),
    # orders: placed by checkout, then only their status moves (a trigger says how).
    Grant(
        "SELECT",
        "orders",
        "get_order, list_orders; a retried checkout finds its order by cart or key",
        _ORDER + _ORDER_KEY,
    ),
    Grant(
        "INSERT",
        "orders",
        "checkout (status placed and times by default; the key it was given)",
        ("user_id", "cart_id", "total", "idempotency_key"),
    ),
    Grant("UPDATE", "orders", "pay_order, ship_order, cancel_order", ("status", "updated_at")),
    Grant("USAGE", "orders_id_seq", "checkout's order id", kind="sequence"),
    # order_items: written once by checkout, read ever after.
    Grant(
        "SELECT",
        "order_items",
        "an order's lines",
        ("order_id", "product_id", "name", "unit_price", "quantity"),
    ),
    Grant(
        "INSERT",
        "order_items",
        "checkout records each line as sold",
        ("order_id", "product_id", "name", "unit_price", "quantity"),
    ),
    Grant("USAGE", "order_items_id_seq", "checkout's line ids", kind="sequence"),
    # inventory_adjustments: written, never read, changed or deleted by the app.
    Grant(
        "INSERT",
        "inventory_adjustments",
        "create_product (a trigger), adjust_inventory, update_product record stock received",
        ("product_id", "delta"),
    ),
    Grant("USAGE", "inventory_adjustments_id_seq", "an adjustment's id", kind="sequence"),
    # The migration state: read by the pool's start-up check (shopdb.migrate.check).
    Grant(
        "SELECT", "alembic_version", "opening a pool checks the schema is current", ("version_num",)
    ),
    Grant(
        "SELECT",
        "shopdb_migrations",
        "opening a pool places an unknown head by history",
        ("revision",),
    ),
)

#: The tables whose every privilege the app role loses before :data:`APP_GRANTS`
#: (shopdb's, and the throttle's, which only the login functions touch).
REVOKED_TABLES = (
    "users",
    "products",
    "carts",
    "cart_items",
    "orders",
    "order_items",
    "inventory_adjustments",
    "login_attempts",
    "auth_keys",
    "alembic_version",
    "shopdb_migrations",
)
#: The sequences likewise.
REVOKED_SEQUENCES = tuple(
    f"{table}_id_seq"
    for table in REVOKED_TABLES
    if table not in {"login_attempts", "auth_keys", "alembic_version", "shopdb_migrations"}
)
