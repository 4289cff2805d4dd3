"""The seed's constraints reject what they must, and the errors come out translated."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shopdb.errors import AlreadyExists, InvalidInput, NotFound
from shopdb.names import username_key

from .helpers import refused


def _insert(conn: Connection, sql: str, **params: object) -> int:
    row = conn.execute(text(sql + " RETURNING id"), params).one()
    return int(row[0])


def _user(conn: Connection, name: str = "alice") -> int:
    return _insert(
        conn,
        "INSERT INTO users (username, username_key, email, password_hash) VALUES (:u, :k, :e, 'x')",
        u=name,
        k=username_key(name),
        e=f"{name}@example.com",
    )


def _product(conn: Connection) -> int:
    return _insert(
        conn,
        "INSERT INTO products (name, price, inventory_count) VALUES ('Tea', 4.50, 10)",
    )


NULL_CASES: list[tuple[str, str]] = [
    ("username", "INSERT INTO users (username, email, password_hash) VALUES (NULL, 'a@b.io', 'x')"),
    ("email", "INSERT INTO users (username, email, password_hash) VALUES ('a', NULL, 'x')"),
    (
        "password_hash",
        "INSERT INTO users (username, email, password_hash) VALUES ('a', 'a@b.io', NULL)",
    ),
    ("name", "INSERT INTO products (name, price, inventory_count) VALUES (NULL, 1, 1)"),
    ("price", "INSERT INTO products (name, price, inventory_count) VALUES ('x', NULL, 1)"),
    (
        "inventory_count",
        "INSERT INTO products (name, price, inventory_count) VALUES ('x', 1, NULL)",
    ),
    ("user_id", "INSERT INTO carts (user_id) VALUES (NULL)"),
    ("quantity", "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (1, 1, NULL)"),
]


@pytest.mark.parametrize(("field", "sql"), NULL_CASES, ids=[c[0] for c in NULL_CASES])
def test_not_null_columns_reject_null(db_connection: Connection, field: str, sql: str) -> None:
    error = refused(db_connection, sql)
    assert isinstance(error, InvalidInput)
    assert error.field == field
    assert "null" in error.reason


def test_created_at_defaults_to_now(db_connection: Connection) -> None:
    user_id = _user(db_connection)
    fresh = db_connection.execute(
        text(
            "SELECT created_at > now() AT TIME ZONE 'UTC' - interval '1 minute' FROM users "
            "WHERE id = :id"
        ),
        {"id": user_id},
    ).scalar_one()
    assert fresh is True


@pytest.mark.parametrize("field", ["username", "email"])
def test_duplicate_username_or_email_is_refused(db_connection: Connection, field: str) -> None:
    _user(db_connection, "alice")
    values = {"u": "bob", "e": "bob@example.com"}
    values["u" if field == "username" else "e"] = (
        "alice" if field == "username" else "alice@example.com"
    )
    error = refused(
        db_connection,
        "INSERT INTO users (username, username_key, email, password_hash) VALUES (:u, :k, :e, 'x')",
        k=username_key(values["u"]),
        **values,
    )
    assert isinstance(error, AlreadyExists)
    assert error.field == field


MISSING_PARENT: list[tuple[str, str, Callable[[Connection], dict[str, int]]]] = [
    ("user_id", "INSERT INTO carts (user_id) VALUES (:missing)", lambda c: {}),
    (
        "cart_id",
        "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (:missing, :p, 1)",
        lambda c: {"p": _product(c)},
    ),
    (
        "product_id",
        "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (:c, :missing, 1)",
        lambda c: {"c": _insert(c, "INSERT INTO carts (user_id) VALUES (:u)", u=_user(c))},
    ),
]


@pytest.mark.parametrize(
    ("field", "sql", "parents"), MISSING_PARENT, ids=[c[0] for c in MISSING_PARENT]
)
def test_rows_pointing_at_missing_parents_are_refused(
    db_connection: Connection,
    field: str,
    sql: str,
    parents: Callable[[Connection], dict[str, int]],
) -> None:
    params = parents(db_connection)
    error = refused(db_connection, sql, missing=999_999, **params)
    assert isinstance(error, NotFound)
    assert error.entity == field.removesuffix("_id")
