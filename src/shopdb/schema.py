"""The four tables of the seed's ``schema.rs``, as SQLAlchemy Core tables.

Columns, types, nullability and defaults are exactly the seed's SQL: VARCHAR
without a length, TEXT, NUMERIC without precision, INTEGER, TIMESTAMP without
time zone, SERIAL keys. Constraint names come from :data:`NAMING_CONVENTION`,
so errors can be mapped by name and migrations can drop what they created.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
)

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
    info={"entity": "user"},
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("description", Text, nullable=True),
    Column("price", Numeric, nullable=False),
    Column("inventory_count", Integer, nullable=False),
    info={"entity": "product"},
)

carts = Table(
    "carts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
    info={"entity": "cart"},
)

cart_items = Table(
    "cart_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cart_id", Integer, ForeignKey("carts.id"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
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
    from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint
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
                index[name] = ConstraintInfo(columns)
        for ix in table.indexes:
            if ix.name and ix.unique:
                field = ix.info.get("field") or ", ".join(c.name for c in ix.columns)
                index[str(ix.name)] = ConstraintInfo(field)
    return index
