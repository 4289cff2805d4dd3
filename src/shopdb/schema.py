"""The seed's four tables (``schema.rs``) and shopdb's orders, as SQLAlchemy Core tables.

Columns, types, nullability and defaults are exactly the seed's SQL: VARCHAR
without a length, TEXT, NUMERIC without precision, INTEGER, TIMESTAMP without
time zone, SERIAL keys. Constraint names come from :data:`NAMING_CONVENTION`,
so errors can be mapped by name and migrations can drop what they created.

On top of the seed (migration ``0005_harden_integrity``), the database itself
refuses the states an e-commerce API must never hold: zero quantities,
negative or non-finite prices, negative stock, a product twice in one cart,
two accounts whose username or email differ only by case. Every foreign key
has an index (PostgreSQL does not make one), and deleting a user, cart or
product takes its dependent rows with it.

Migration ``0006`` bounds prices (two decimal places, below a billion) and
keeps usernames and emails in Unicode NFKC form. Migration ``0007`` records
the sale: ``orders``, ``order_items`` (what was sold, at what price, as it
was), ``inventory_adjustments`` (every unit of stock received), and a cart
lifecycle (``carts.closed_at``; one open cart per user; a closed cart's
lines cannot change, enforced by a trigger). Migration ``0010`` gives users a
``role`` (customer or staff) and a ``username_key`` under a unique index (one
account per look: :mod:`shopdb.names`), refuses control, invisible and bidi
characters in names, emails and descriptions, and records the price a cart
line was added at (``cart_items.unit_price``), so checkout can tell the
shopper what moved.
Migration ``0011`` makes the
catalog searchable: ``products.search``, a ``tsvector`` of the name and
description that a trigger keeps current (never write it yourself), with a
GIN index, and an index for each sort of :meth:`~shopdb.store.Store.search_products`.
Migration ``0012`` records the idempotency key a checkout was given
(``orders.idempotency_key``, unique per user), so a repeated checkout finds
the order its first try placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

if TYPE_CHECKING:
    from sqlalchemy.engine.default import DefaultExecutionContext

from shopdb.limits import (
    DESCRIPTION_CHECK,
    DESCRIPTION_MAX,
    EMAIL_CHECK,
    EMAIL_MAX,
    EMAIL_PATTERN,
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    NAME_CHECK,
    ORDER_STATUSES,
    ORDER_STATUSES_SQL,
    PASSWORD_HASH_MAX,
    PRICE_LIMIT,
    PRICE_SCALE,
    PRODUCT_NAME_MAX,
    STOCK_MAX,
    USER_ROLES,
    USER_ROLES_SQL,
    USERNAME_CHECK,
    USERNAME_MAX,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: An order's idempotency key: NULL, or 1 to IDEMPOTENCY_KEY_MAX printable ASCII characters.
IDEMPOTENCY_KEY_CHECK = (
    f"char_length(idempotency_key) BETWEEN 1 AND {IDEMPOTENCY_KEY_MAX} "
    f"AND idempotency_key ~ '{IDEMPOTENCY_KEY_PATTERN}'"
)


def _username_key(context: DefaultExecutionContext) -> str | None:
    """``users.username_key`` for a SQLAlchemy insert that did not set it.

    None when the username is no username: the CHECK then refuses the row.
    """
    from shopdb.names import login_key

    parameters: dict[str, object] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    username = parameters.get("username")
    return login_key(username) if isinstance(username, str) else None


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String, nullable=False, unique=True),
    Column("email", String, nullable=False, unique=True),
    Column("password_hash", String, nullable=False),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
    # Who may change the catalog (0010): set by `shopdb user staff NAME` or Store.set_role.
    Column("role", String, nullable=False, server_default=text(f"'{USER_ROLES[0]}'")),
    # One account per look (0010): shopdb.names.username_key(username), unique below.
    # Filled by the Store, seeding, and any SQLAlchemy insert (the default); raw SQL
    # must set it, and the CHECK below refuses a row without one.
    Column("username_key", String, nullable=True, default=_username_key),
    CheckConstraint(
        f"char_length(username) BETWEEN 1 AND {USERNAME_MAX} "
        "AND username ~ '\\S' AND strpos(username, '@') = 0",
        name="username_valid",
        info={
            "field": "username",
            "reason": f"must be 1 to {USERNAME_MAX} characters, not blank, without '@'",
        },
    ),
    CheckConstraint(
        f"char_length(email) <= {EMAIL_MAX} AND email ~ '{EMAIL_PATTERN}'",
        name="email_valid",
        info={
            "field": "email",
            "reason": f"must look like an email, at most {EMAIL_MAX} characters",
        },
    ),
    CheckConstraint(
        "username IS NFKC NORMALIZED",
        name="username_nfkc",
        info={"field": "username", "reason": "must be in Unicode NFKC form"},
    ),
    CheckConstraint(
        "email IS NFKC NORMALIZED",
        name="email_nfkc",
        info={"field": "email", "reason": "must be in Unicode NFKC form"},
    ),
    CheckConstraint(
        f"char_length(password_hash) <= {PASSWORD_HASH_MAX}",
        name="password_hash_length",
        info={
            "field": "password_hash",
            "reason": f"must be at most {PASSWORD_HASH_MAX} characters",
        },
    ),
    CheckConstraint(
        f"role IN ({USER_ROLES_SQL})",
        name="role_known",
        info={"field": "role", "reason": f"must be one of {', '.join(USER_ROLES)}"},
    ),
    CheckConstraint(
        "username_key IS NOT NULL",
        name="username_key_present",
        info={"field": "username", "reason": "must be a username (its key could not be made)"},
    ),
    CheckConstraint(
        USERNAME_CHECK,
        name="username_text",
        info={
            "field": "username",
            "reason": "must not contain spaces, control, invisible or formatting characters, "
            "or '@'",
        },
    ),
    CheckConstraint(
        EMAIL_CHECK,
        name="email_text",
        info={
            "field": "email",
            "reason": "must not contain control, invisible or formatting characters",
        },
    ),
    info={"entity": "user"},
)
# Case-insensitive uniqueness: Alice@x.io and alice@x.io are one account.
Index(
    "uq_users_username_lower", func.lower(users.c.username), unique=True, info={"field": "username"}
)
Index("uq_users_email_lower", func.lower(users.c.email), unique=True, info={"field": "email"})
# Look-alikes are one account: alice spelled with a Cyrillic a (U+0430) is alice, taken.
Index("uq_users_username_key", users.c.username_key, unique=True, info={"field": "username"})

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("description", Text, nullable=True),
    Column("price", Numeric, nullable=False),
    Column("inventory_count", Integer, nullable=False),
    # Units of this product on placed or paid orders: what a cancel may bring back.
    Column("units_ordered", Integer, nullable=False, server_default=text("0")),
    # The search document (0011): the name (weight A) and description (B), kept
    # current by the products_search trigger; NULL only before the backfill.
    Column("search", TSVECTOR, nullable=True),
    CheckConstraint(
        f"char_length(name) BETWEEN 1 AND {PRODUCT_NAME_MAX} AND name ~ '\\S'",
        name="name_valid",
        info={"field": "name", "reason": f"must be 1 to {PRODUCT_NAME_MAX} characters, not blank"},
    ),
    CheckConstraint(
        NAME_CHECK,
        name="name_text",
        info={
            "field": "name",
            "reason": "must not contain control characters, bidi controls or line breaks, "
            "nor be only invisible characters",
        },
    ),
    CheckConstraint(
        DESCRIPTION_CHECK,
        name="description_text",
        info={
            "field": "description",
            "reason": "must not contain control characters other than newline and tab",
        },
    ),
    # NUMERIC accepts NaN and (since PostgreSQL 14) Infinity, and NaN >= 0 is
    # true there: NaN sorts above every number. "< 'Infinity'" shuts out both.
    CheckConstraint(
        "price >= 0 AND price < 'Infinity'",
        name="price_nonnegative_finite",
        info={"field": "price", "reason": "must be a finite amount of at least 0"},
    ),
    CheckConstraint(
        "inventory_count >= 0",
        name="inventory_count_nonnegative",
        info={"field": "inventory_count", "reason": "must not go below 0"},
    ),
    CheckConstraint(
        f"price = round(price, {PRICE_SCALE}) AND price < {PRICE_LIMIT}",
        name="price_scale",
        info={
            "field": "price",
            "reason": f"must have at most {PRICE_SCALE} decimal places "
            f"and be below {PRICE_LIMIT:,}",
        },
    ),
    CheckConstraint(
        f"char_length(description) <= {DESCRIPTION_MAX}",
        name="description_length",
        info={
            "field": "description",
            "reason": f"must be at most {DESCRIPTION_MAX:,} characters",
        },
    ),
    CheckConstraint(
        "units_ordered >= 0",
        name="units_ordered_nonnegative",
        info={"field": "units_ordered", "reason": "must not go below 0"},
    ),
    # Stock plus the units on open orders: a cancel moves units from one to the
    # other, so it can never overflow; only a restock can pass the bound.
    CheckConstraint(
        f"inventory_count::bigint + units_ordered <= {STOCK_MAX}",
        name="stock_bounded",
        info={
            "field": "inventory_count",
            "reason": f"together with the units on open orders, must be at most {STOCK_MAX:,}",
        },
    ),
    info={"entity": "product"},
)
# Catalog search (0011): the text index, and one per sort with id as the tiebreak
# (newest is id descending: the primary key).
Index("ix_products_search", products.c.search, postgresql_using="gin")
Index("ix_products_price_id", products.c.price, products.c.id)
# The name column of this index is COLLATE "C" (migration 0011); SQLAlchemy's
# reflection does not report an index column's collation, so the model names
# the plain columns and the drift check compares those.
Index("ix_products_name_id", products.c.name, products.c.id)

carts = Table(
    "carts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
    # NULL while the cart is open; set when it is checked out (or closed).
    Column("closed_at", DateTime(timezone=True), nullable=True),
    info={"entity": "cart"},
)
# One open cart per user: the Store's get-or-create relies on it.
Index(
    "uq_carts_user_id_open",
    carts.c.user_id,
    unique=True,
    postgresql_where=carts.c.closed_at.is_(None),
    info={"field": "user_id"},
)
#: The name the trigger that guards a closed cart's lines raises (a CHECK violation).
CART_OPEN_CHECK = "ck_cart_items_cart_open"
#: The name the same trigger raises when a cart would hold more than CART_LINES_MAX lines.
CART_LINES_CHECK = "ck_cart_items_lines_max"

cart_items = Table(
    "cart_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cart_id", Integer, ForeignKey("carts.id", ondelete="CASCADE"), nullable=False),
    Column(
        "product_id",
        Integer,
        ForeignKey("products.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("quantity", Integer, nullable=False),
    # The product's price when the line was added or last set (0010; NULL for lines
    # older than that): what the shopper saw, which checkout compares (expected_total).
    Column("unit_price", Numeric, nullable=True),
    # Also the index for cart_id, which it leads with.
    UniqueConstraint("cart_id", "product_id", info={"field": "product_id"}),
    CheckConstraint(
        "quantity > 0",
        name="quantity_positive",
        info={"field": "quantity", "reason": "must be at least 1"},
    ),
    CheckConstraint(
        f"unit_price >= 0 AND unit_price = round(unit_price, {PRICE_SCALE}) "
        "AND unit_price < 'Infinity'",
        name="unit_price_amount",
        info={
            "field": "unit_price",
            "reason": f"must be a finite amount with {PRICE_SCALE} decimals",
        },
    ),
    info={"entity": "cart item"},
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    # Sales records outlive accounts and carts: RESTRICT, not CASCADE.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="RESTRICT"), nullable=False),
    Column(
        "cart_id",
        Integer,
        ForeignKey("carts.id", ondelete="RESTRICT"),
        nullable=False,
        unique=True,
    ),
    Column("status", String, nullable=False, server_default=text(f"'{ORDER_STATUSES[0]}'")),
    Column("total", Numeric, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The key of the checkout that placed it (0012), if the caller gave one:
    # unique per user, so a repeated checkout finds its order instead of placing another.
    Column("idempotency_key", Text, nullable=True),
    CheckConstraint(
        IDEMPOTENCY_KEY_CHECK,
        name="idempotency_key_valid",
        info={
            "field": "idempotency_key",
            "reason": f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters (space to ~)",
        },
    ),
    UniqueConstraint("user_id", "idempotency_key", info={"field": "idempotency_key"}),
    CheckConstraint(
        f"status IN ({ORDER_STATUSES_SQL})",
        name="status_known",
        info={
            "field": "status",
            "reason": f"must be {', '.join(ORDER_STATUSES[:-1])} or {ORDER_STATUSES[-1]}",
        },
    ),
    CheckConstraint(
        f"total >= 0 AND total = round(total, {PRICE_SCALE}) AND total < 'Infinity'",
        name="total_amount",
        info={"field": "total", "reason": f"must be a finite amount with {PRICE_SCALE} decimals"},
    ),
    info={"entity": "order"},
)
Index("ix_orders_user_id_id", orders.c.user_id, orders.c.id)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "order_id",
        Integer,
        ForeignKey("orders.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # A deleted product leaves its order lines, which keep its name and price.
    Column(
        "product_id",
        Integer,
        ForeignKey("products.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("name", String, nullable=False),
    Column("unit_price", Numeric, nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint(
        "quantity > 0",
        name="quantity_positive",
        info={"field": "quantity", "reason": "must be at least 1"},
    ),
    CheckConstraint(
        f"unit_price >= 0 AND unit_price = round(unit_price, {PRICE_SCALE})",
        name="unit_price_amount",
        info={"field": "unit_price", "reason": f"must be an amount with {PRICE_SCALE} decimals"},
    ),
    CheckConstraint(
        f"char_length(name) <= {PRODUCT_NAME_MAX}",
        name="name_length",
        info={"field": "name", "reason": f"must be at most {PRODUCT_NAME_MAX} characters"},
    ),
    info={"entity": "order item"},
)

inventory_adjustments = Table(
    "inventory_adjustments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "product_id",
        Integer,
        ForeignKey("products.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("delta", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"entity": "inventory adjustment"},
)

#: Our tables in creation order (the seed's migration order, then shopdb's).
TABLES = (users, products, carts, cart_items, orders, order_items, inventory_adjustments)


@dataclass(frozen=True)
class ConstraintInfo:
    """What a named constraint protects, for error messages."""

    field: str
    entity: str | None = None
    reason: str | None = None
    #: Set when breaking it is a conflict with the state of things, not bad input.
    conflict: str | None = None


#: The rules migration 0009's triggers enforce, whoever writes (the names they raise,
#: as CHECK violations): history the database keeps.
CART_CLOSED_CHECK = "ck_carts_closed_for_good"
TRIGGER_CHECKS = {
    "ck_orders_sale_fixed": ConstraintInfo(
        "order", entity="order", reason="only an order's status can change"
    ),
    "ck_orders_status_transition": ConstraintInfo(
        "status", reason="can only go placed -> paid -> shipped, or placed or paid -> cancelled"
    ),
    "ck_inventory_adjustments_append_only": ConstraintInfo(
        "inventory_adjustments", reason="are append-only"
    ),
    CART_LINES_CHECK: ConstraintInfo("product_id", entity="cart", conflict="cart_full"),
}


def describe_constraint(name: str | None) -> ConstraintInfo:
    """The field (and, for a foreign key, the entity) a constraint name stands for."""
    if name is None:
        return ConstraintInfo("value")
    if name in (CART_OPEN_CHECK, CART_CLOSED_CHECK):
        return ConstraintInfo("cart_id", entity="cart", conflict="cart_closed")
    if name in TRIGGER_CHECKS:
        return TRIGGER_CHECKS[name]
    return _constraint_index().get(name, ConstraintInfo(name))


@cache
def _constraint_index() -> dict[str, ConstraintInfo]:
    # Built from the metadata itself, so a renamed column or a new constraint
    # can never leave this map stale.
    from sqlalchemy import ForeignKeyConstraint
    from sqlalchemy.sql.schema import ColumnCollectionConstraint

    index: dict[str, ConstraintInfo] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if not constraint.name or not isinstance(constraint, ColumnCollectionConstraint):
                continue
            name = str(constraint.name)
            columns = ", ".join(c.name for c in constraint.columns)
            if isinstance(constraint, ForeignKeyConstraint):
                target = constraint.referred_table.info.get("entity")
                index[name] = ConstraintInfo(columns, entity=target)
            elif isinstance(constraint, CheckConstraint):
                index[name] = ConstraintInfo(
                    constraint.info.get("field", columns), reason=constraint.info.get("reason")
                )
            elif isinstance(constraint, UniqueConstraint):
                index[name] = ConstraintInfo(constraint.info.get("field", columns))
        for ix in table.indexes:
            if ix.name and ix.unique:
                field = ix.info.get("field") or ", ".join(c.name for c in ix.columns)
                index[str(ix.name)] = ConstraintInfo(field)
    return index
