"""The application's own tables, on a MetaData of its own, with foreign keys to shopdb's."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)

from shopdb.schema import NAMING_CONVENTION, users

#: What `shopdb migration generate --autogenerate` compares (SHOPDB_APP_METADATA).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    # A column object of shopdb's table: the foreign key crosses the two MetaData.
    Column(
        "user_id",
        Integer,
        ForeignKey(users.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("stars", Integer, nullable=False),
    Column("body", Text, nullable=True),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
    CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),
)
