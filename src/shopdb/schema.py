"""The four tables of the seed's ``schema.rs``, as SQLAlchemy Core tables.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

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
)

from shopdb.limits import EMAIL_MAX, EMAIL_PATTERN, PRODUCT_NAME_MAX, USERNAME_MAX

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String, nullable=False, unique=True),
    Column("email", String, nullable=False, unique=True),
    Column("password_hash", String, nullable=False),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
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
    info={"entity": "user"},
)
# Case-insensitive uniqueness: Alice@x.io and alice@x.io are one account.
Index(
    "uq_users_username_lower", func.lower(users.c.username), unique=True, info={"field": "username"}
)
Index("uq_users_email_lower", func.lower(users.c.email), unique=True, info={"field": "email"})

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("description", Text, nullable=True),
    Column("price", Numeric, nullable=False),
    Column("inventory_count", Integer, nullable=False),
    CheckConstraint(
        f"char_length(name) BETWEEN 1 AND {PRODUCT_NAME_MAX} AND name ~ '\\S'",
        name="name_valid",
        info={"field": "name", "reason": f"must be 1 to {PRODUCT_NAME_MAX} characters, not blank"},
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
    info={"entity": "product"},
)

carts = Table(
    "carts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
    info={"entity": "cart"},
)

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
    # Also the index for cart_id, which it leads with.
    UniqueConstraint("cart_id", "product_id", info={"field": "product_id"}),
    CheckConstraint(
        "quantity > 0",
        name="quantity_positive",
        info={"field": "quantity", "reason": "must be at least 1"},
    ),
    info={"entity": "cart item"},
)

#: Our tables in creation order (the seed's migration order).
TABLES = (users, products, carts, cart_items)


@dataclass(frozen=True)
class ConstraintInfo:
    """What a named constraint protects, for error messages."""

    field: str
    entity: str | None = None
    reason: str | None = None


def describe_constraint(name: str | None) -> ConstraintInfo:
    """The field (and, for a foreign key, the entity) a constraint name stands for."""
    if name is None:
        return ConstraintInfo("value")
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
