"""Migrations: stairway, single head, seed-exact schema, no drift."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.db import Pool
from shopdb.migrate import Migrator
from shopdb.migrate.drift import schema_differences
from shopdb.schema import TABLES
from shopdb.testing import DatabaseFactory

OUR_TABLES = {t.name for t in TABLES}
SEED_ORDER = ["create_users", "create_products", "create_carts", "create_cart_items"]


def _tables(url: str) -> set[str]:
    engine = create_engine(parse_database_url(url).sqlalchemy(), poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_single_head_in_seed_order(settings: Settings) -> None:
    scripts = Migrator(Target(parse_database_url("postgresql://x@h/db")), settings).scripts()
    assert [m.name for m in scripts[:4]] == SEED_ORDER
    revisions = [m.revision for m in scripts]
    assert revisions == sorted(revisions)
    assert len(set(revisions)) == len(revisions)


def test_stairway_up_down_up_then_all_down(empty_db: str, settings: Settings) -> None:
    migrator = Migrator(Target(parse_database_url(empty_db)), settings)
    for migration in migrator.scripts():
        assert [s.migration.revision for s in migrator.run(upto=migration.revision)] == [
            migration.revision
        ]
        assert [s.migration.revision for s in migrator.revert(1)] == [migration.revision]
        migrator.run(upto=migration.revision)
    assert _tables(empty_db) >= OUR_TABLES
    assert migrator.pending() == []
    migrator.revert(None)
    assert not (OUR_TABLES & _tables(empty_db))
    with psycopg.connect(empty_db) as conn:
        sequences = conn.execute("SELECT relname FROM pg_class WHERE relkind = 'S'").fetchall()
    assert sequences == [], "a downgrade left a sequence behind"


def test_each_migration_is_its_own_transaction(empty_db: str, settings: Settings) -> None:
    migrator = Migrator(Target(parse_database_url(empty_db)), settings)
    migrator.run()
    with psycopg.connect(empty_db) as conn:
        times = conn.execute(
            "SELECT applied_at FROM shopdb_migrations ORDER BY revision"
        ).fetchall()
    # now() is the transaction's start time: distinct values mean distinct transactions.
    assert len({t[0] for t in times}) == len(times)


def test_models_and_migrated_database_agree(shopdb_pool: Pool) -> None:
    with shopdb_pool.engine.connect() as conn:
        assert schema_differences(conn) == []


# The seed's SQL, column by column: (name, type, nullable, default).
SEED_COLUMNS = {
    "users": [
        ("id", "integer", False, "nextval('users_id_seq'::regclass)"),
        ("username", "character varying", False, None),
        ("email", "character varying", False, None),
        ("password_hash", "character varying", False, None),
        ("created_at", "timestamp without time zone", False, "CURRENT_TIMESTAMP"),
    ],
    "products": [
        ("id", "integer", False, "nextval('products_id_seq'::regclass)"),
        ("name", "character varying", False, None),
        ("description", "text", True, None),
        ("price", "numeric", False, None),
        ("inventory_count", "integer", False, None),
    ],
    "carts": [
        ("id", "integer", False, "nextval('carts_id_seq'::regclass)"),
        ("user_id", "integer", False, None),
        ("created_at", "timestamp without time zone", False, "CURRENT_TIMESTAMP"),
    ],
    "cart_items": [
        ("id", "integer", False, "nextval('cart_items_id_seq'::regclass)"),
        ("cart_id", "integer", False, None),
        ("product_id", "integer", False, None),
        ("quantity", "integer", False, None),
    ],
}
#: What shopdb adds to the seed's tables, after the seed's own columns (0007, 0008, 0010, 0011).
ADDED_COLUMNS: dict[str, list[tuple[str, str, bool, str | None]]] = {
    "carts": [("closed_at", "timestamp with time zone", True, None)],
    "products": [
        ("units_ordered", "integer", False, "0"),
        ("search", "tsvector", True, None),  # 0011, kept by a trigger
    ],
    "users": [
        ("role", "character varying", False, "'customer'::character varying"),
        ("username_key", "character varying", True, None),
    ],
    "cart_items": [("unit_price", "numeric", True, None)],
}


@pytest.mark.parametrize("table", sorted(SEED_COLUMNS))
def test_migrated_schema_matches_the_seed(
    shopdb_server: DatabaseFactory, shopdb_target: Target, table: str
) -> None:
    url = shopdb_server.url(shopdb_target.database)
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            """SELECT column_name, data_type, is_nullable = 'YES', column_default,
                      character_maximum_length, numeric_precision, numeric_scale
               FROM information_schema.columns WHERE table_name = %s
               ORDER BY ordinal_position""",
            (table,),
        ).fetchall()
        pk = conn.execute(
            """SELECT a.attname FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = %s::regclass AND i.indisprimary""",
            (table,),
        ).fetchall()
    # The seed's columns, in its order and with its types, then only shopdb's additions.
    assert [c[:4] for c in columns] == SEED_COLUMNS[table] + ADDED_COLUMNS.get(table, [])
    # VARCHAR without length, NUMERIC without precision or scale.
    assert all(c[4] is None for c in columns)
    assert all(c[5] is None for c in columns if c[1] == "numeric")
    assert all(c[5] == 32 and c[6] == 0 for c in columns if c[1] == "integer")
    assert pk == [("id",)]


def test_seed_unique_and_foreign_keys_exist(
    shopdb_server: DatabaseFactory, shopdb_target: Target
) -> None:
    url = shopdb_server.url(shopdb_target.database)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT conrelid::regclass::text, contype,
                      (SELECT array_agg(attname ORDER BY attname) FROM pg_attribute
                       WHERE attrelid = conrelid AND attnum = ANY(conkey)),
                      confrelid::regclass::text
               FROM pg_constraint WHERE contype IN ('u', 'f')
                 AND conrelid::regclass::text IN ('users', 'products', 'carts', 'cart_items')"""
        ).fetchall()
    found = {(t, k, tuple(cols), ref if k == "f" else None) for t, k, cols, ref in rows}
    assert ("users", "u", ("username",), None) in found
    assert ("users", "u", ("email",), None) in found
    assert ("carts", "f", ("user_id",), "users") in found
    assert ("cart_items", "f", ("cart_id",), "carts") in found
    assert ("cart_items", "f", ("product_id",), "products") in found
