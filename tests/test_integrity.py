"""Migration 0005 harden_integrity: each rule holds against raw SQL, and reverts exactly."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.errors import AlreadyExists, InvalidInput
from shopdb.migrate import Migrator
from shopdb.migrate.print_schema import live_ddl
from shopdb.names import username_key
from shopdb.schema import TABLES

from .helpers import refused


@pytest.fixture
def rows(db_connection: Connection) -> dict[str, int]:
    """A user, a product and a cart holding one line of it."""
    c = db_connection

    def one(sql: str, **params: object) -> int:
        return int(c.execute(text(sql + " RETURNING id"), params).scalar_one())

    user = one(
        "INSERT INTO users (username, username_key, email, password_hash) "
        "VALUES ('amy', :k, 'amy@x.io', 'h')",
        k=username_key("amy"),
    )
    product = one("INSERT INTO products (name, price, inventory_count) VALUES ('Tea', 4.5, 3)")
    cart = one("INSERT INTO carts (user_id) VALUES (:u)", u=user)
    item = one(
        "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (:c, :p, 1)",
        c=cart,
        p=product,
    )
    return {"user": user, "product": product, "cart": cart, "item": item}


BAD_ROWS = [
    ("quantity", "UPDATE cart_items SET quantity = 0"),
    ("quantity", "UPDATE cart_items SET quantity = -3"),
    ("inventory_count", "UPDATE products SET inventory_count = -1"),
    ("price", "UPDATE products SET price = -0.01"),
    ("price", "UPDATE products SET price = 'NaN'"),
    ("price", "UPDATE products SET price = 'Infinity'"),
    ("price", "UPDATE products SET price = '-Infinity'"),
    ("name", "UPDATE products SET name = ''"),
    ("name", "UPDATE products SET name = '   '"),
    ("name", "UPDATE products SET name = repeat('x', 201)"),
    ("username", "UPDATE users SET username = ''"),
    ("username", "UPDATE users SET username = repeat('u', 65)"),
    ("username", "UPDATE users SET username = 'amy@home'"),
    ("email", "UPDATE users SET email = 'not-an-email'"),
    ("email", "UPDATE users SET email = 'a b@x.io'"),
    ("email", "UPDATE users SET email = repeat('e', 250) || '@x.io'"),
    # 0008: every stored text and count has a bound.
    ("description", "UPDATE products SET description = repeat('d', 10001)"),
    ("password_hash", "UPDATE users SET password_hash = repeat('h', 256)"),
    ("units_ordered", "UPDATE products SET units_ordered = -1"),
    ("inventory_count", "UPDATE products SET inventory_count = 2147483647, units_ordered = 1"),
]


@pytest.mark.parametrize(("field", "sql"), BAD_ROWS, ids=[s for _, s in BAD_ROWS])
def test_check_constraints_refuse_bad_rows_written_with_raw_sql(
    db_connection: Connection, rows: dict[str, int], field: str, sql: str
) -> None:
    error = refused(db_connection, sql)
    assert isinstance(error, InvalidInput)
    assert error.field == field


def test_limits_themselves_are_allowed(db_connection: Connection, rows: dict[str, int]) -> None:
    db_connection.execute(
        text(
            "UPDATE products SET price = 0, inventory_count = 0, name = repeat('x', 200),"
            " description = repeat('d', 10000);"
            "UPDATE products SET inventory_count = 2147483646, units_ordered = 1;"
            "UPDATE users SET username = repeat('u', 64), password_hash = repeat('h', 255)"
        )
    )


def test_a_product_appears_once_per_cart(db_connection: Connection, rows: dict[str, int]) -> None:
    error = refused(
        db_connection,
        "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (:c, :p, 2)",
        c=rows["cart"],
        p=rows["product"],
    )
    assert isinstance(error, AlreadyExists)
    assert error.field == "product_id"


@pytest.mark.parametrize(
    ("field", "username", "email"),
    [("username", "AMY", "other@x.io"), ("email", "other", "AMY@X.IO")],
)
def test_username_and_email_are_unique_regardless_of_case(
    db_connection: Connection, rows: dict[str, int], field: str, username: str, email: str
) -> None:
    error = refused(
        db_connection,
        "INSERT INTO users (username, username_key, email, password_hash) VALUES (:u, :k, :e, 'h')",
        u=username,
        k=username_key(username),
        e=email,
    )
    assert isinstance(error, AlreadyExists)
    assert error.field == field


def test_deleting_a_product_leaves_the_carts_it_was_in(
    db_connection: Connection, rows: dict[str, int]
) -> None:
    db_connection.execute(text("DELETE FROM products WHERE id = :p"), {"p": rows["product"]})
    assert db_connection.execute(text("SELECT count(*) FROM cart_items")).scalar_one() == 0
    assert db_connection.execute(text("SELECT count(*) FROM carts")).scalar_one() >= 1


def test_deleting_a_user_takes_their_carts_and_lines(
    db_connection: Connection, rows: dict[str, int]
) -> None:
    db_connection.execute(text("DELETE FROM users WHERE id = :u"), {"u": rows["user"]})
    left = db_connection.execute(
        text(
            "SELECT (SELECT count(*) FROM carts WHERE id = :c), (SELECT count(*) FROM cart_items)"
        ),
        {"c": rows["cart"]},
    ).one()
    assert tuple(left) == (0, 0)
    assert db_connection.execute(text("SELECT count(*) FROM products")).scalar_one() >= 1


def test_every_foreign_key_column_leads_an_index(db_connection: Connection) -> None:
    unindexed = db_connection.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, a.attname
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.contype = 'f' AND NOT EXISTS (
                SELECT 1 FROM pg_index i
                WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]
            )
            """
        )
    ).all()
    assert unindexed == []


def _ddl(url: str) -> str:
    with psycopg.connect(url) as conn:
        return live_ddl(conn, [t.name for t in TABLES])


def test_downgrade_restores_the_seed_schema_exactly(empty_db: str, settings: Settings) -> None:
    migrator = Migrator(Target(parse_database_url(empty_db)), settings)
    migrator.run(upto="0004")
    seed = _ddl(empty_db)
    migrator.run(upto="0005")
    hardened = _ddl(empty_db)
    assert hardened != seed
    assert "ON DELETE CASCADE" in hardened
    migrator.revert(1)
    assert _ddl(empty_db) == seed


def test_upgrade_refuses_existing_bad_rows_and_changes_nothing(
    empty_db: str, settings: Settings
) -> None:
    migrator = Migrator(Target(parse_database_url(empty_db)), settings)
    migrator.run(upto="0004")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES "
            "('Bo', 'bo@x.io', 'h'), ('bo', 'BO@x.io', 'h')"
        )
        conn.execute("INSERT INTO products (name, price, inventory_count) VALUES ('x', 'NaN', -1)")
    seed = _ddl(empty_db)
    with pytest.raises(Exception, match="existing rows break the new rules") as caught:
        migrator.run()
    message = str(caught.value)
    assert "1 products rows break price_nonnegative_finite" in message
    assert "1 products rows break inventory_count_nonnegative" in message
    assert "1 users share a username up to case" in message
    assert "1 users share an email up to case" in message
    assert _ddl(empty_db) == seed
