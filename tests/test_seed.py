"""`shopdb seed`: deterministic sample data, into an empty database only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from shopdb import Store
from shopdb.db import Pool
from shopdb.errors import DatabaseNotEmpty, InvalidInput
from shopdb.passwords import verify_password
from shopdb.seeding import DEMO_PASSWORD, SeedCounts, seed_database
from shopdb.testing import DatabaseFactory

from .helpers import run_cli

SMALL = ("--products", "60", "--users", "12", "--carts", "15")
TABLES = ("products", "users", "carts", "cart_items")


@pytest.fixture
def migrated(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A new migrated database with empty tables; yields its URL."""
    target = shopdb_server.create("shopdb_seed", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture
def other(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A second one."""
    target = shopdb_server.create("shopdb_seed", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


def _seed(url: str, *args: str) -> tuple[int, str, str]:
    result = run_cli("--database-url", url, "seed", *args)
    return result.returncode, result.stdout, result.stderr


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall() for table in TABLES
        }


def _without_hashes(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    users = [(*row[:3], row[4]) for row in dump["users"]]  # id, username, email, created_at
    return {**dump, "users": users}


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_rows(
    migrated: str, other: str
) -> None:
    code, out, err = _seed(migrated, *SMALL, "--seed", "7")
    assert code == 0, err
    assert out.splitlines()[0].startswith("seeded 60 products, 12 users, 15 carts and "), out
    assert out.splitlines()[1] == "every user's password is 'shopdb-demo' (log in as user0001)"
    code, _, err = _seed(other, *SMALL, "--seed", "7")
    assert code == 0, err
    first, second = _dump(migrated), _dump(other)
    # The hash alone differs: argon2 salts every hash afresh.
    assert _without_hashes(first) == _without_hashes(second)
    assert first["users"][0][3] != second["users"][0][3]

    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("TRUNCATE users, products, carts, cart_items CASCADE")
    code, _, err = _seed(other, *SMALL, "--seed", "8")
    assert code == 0, err
    third = _dump(other)
    assert third["products"] != first["products"]
    assert third["cart_items"] != first["cart_items"]
    assert _without_hashes(third)["users"] == _without_hashes(first)["users"]


def test_seeded_rows_look_as_documented(migrated: str) -> None:
    code, _, err = _seed(migrated, *SMALL)
    assert code == 0, err
    dump = _dump(migrated)
    assert [len(dump[t]) for t in ("products", "users", "carts")] == [60, 12, 15]

    products = dump["products"]
    assert [p[0] for p in products] == list(range(1, 61))
    assert products[0][1] == "Product 000001"
    assert products[59][1] == "Product 000060"
    assert any(p[2] is None for p in products)
    assert any(p[2] for p in products)
    for row in products:
        price, stock = row[3], row[4]
        assert Decimal("0.50") <= price <= Decimal("500.00")
        assert price == price.quantize(Decimal("0.01"))
        assert 0 <= stock <= 1000
    assert sum(p[4] > 20 for p in products) > 30

    users = dump["users"]
    assert [(u[0], u[1], u[2]) for u in users[:2]] == [
        (1, "user0001", "user0001@example.com"),
        (2, "user0002", "user0002@example.com"),
    ]
    assert len({u[3] for u in users}) == 1  # one hash for everyone

    carts = dump["carts"]
    assert [c[1] for c in carts] == [i % 12 + 1 for i in range(15)]
    assert all(c[2] > users[c[1] - 1][4] for c in carts)  # opened after sign-up
    # Each user's newest cart is open (carts 4 to 15); the older ones are closed.
    assert [c[0] for c in carts if c[3] is None] == list(range(4, 16))

    lines: dict[int, list[tuple[int, int]]] = {}
    prices = {p[0]: p[3] for p in products}
    for _, cart_id, product_id, quantity, unit_price in dump["cart_items"]:
        lines.setdefault(cart_id, []).append((product_id, quantity))
        assert unit_price == prices[product_id]  # as if added through the Store
    assert sorted(lines) == list(range(4, 16))
    for items in lines.values():
        assert 1 <= len(items) <= 4
        assert len({product for product, _ in items}) == len(items)
        assert all(1 <= quantity <= 3 and 1 <= product <= 60 for product, quantity in items)


def test_defaults_and_sequences_that_go_on_after_the_seeded_ids(migrated: str) -> None:
    code, out, err = _seed(migrated)
    assert code == 0, err
    assert re.match(r"seeded 10000 products, 1000 users, 1000 carts and \d+ cart items in ", out)
    with psycopg.connect(migrated) as conn:
        assert conn.execute(
            "INSERT INTO products (name, price, inventory_count) VALUES ('New', 1, 1) RETURNING id"
        ).fetchone() == (10001,)
        user = conn.execute(
            "INSERT INTO users (username, username_key, email, password_hash) "
            "VALUES ('new', 'new', 'new@example.com', 'x') RETURNING id"
        ).fetchone()
        assert user == (1001,)
        assert conn.execute(
            "INSERT INTO carts (user_id) VALUES (1001) RETURNING id"
        ).fetchone() == (1001,)


def test_seed_refuses_a_database_that_holds_rows(migrated: str) -> None:
    assert _seed(migrated, *SMALL)[0] == 0
    before = _dump(migrated)
    code, out, err = _seed(migrated, *SMALL, "--seed", "1")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "Error: the database is not empty (products, users, carts, cart_items already hold "
        "rows); seed fills an empty database: run `shopdb database reset --yes` first"
    )
    assert _dump(migrated) == before


def test_one_table_with_rows_is_enough_to_refuse(migrated: str) -> None:
    with psycopg.connect(migrated) as conn:
        conn.execute("INSERT INTO products (name, price, inventory_count) VALUES ('x', 1, 1)")
        conn.commit()
        with pytest.raises(DatabaseNotEmpty) as caught:
            seed_database(conn, products=5, users=2, carts=2)
    assert caught.value.tables == ("products",)
    assert "products already holds rows" in str(caught.value)


def test_truncate_starts_again_from_empty(migrated: str) -> None:
    with psycopg.connect(migrated) as conn:
        assert seed_database(conn, products=20, users=4, carts=3, seed=5).products == 20
        first = _dump(migrated)
        counts = seed_database(conn, products=20, users=4, carts=3, seed=5, truncate=True)
    assert counts == SeedCounts(20, 4, 3, len(first["cart_items"]))
    assert _without_hashes(_dump(migrated)) == _without_hashes(first)


def test_seeded_users_log_in_with_the_demo_password(
    migrated: str, shopdb_server: DatabaseFactory
) -> None:
    assert _seed(migrated, *SMALL)[0] == 0
    settings = shopdb_server.settings()
    target = shopdb_server.target(str(conninfo_to_dict(migrated)["dbname"]))
    pool = Pool.open(target, settings)
    try:
        store = Store(pool)
        user = store.authenticate("user0003", DEMO_PASSWORD)
        assert user is not None
        assert (user.id, user.email) == (3, "user0003@example.com")
        assert store.authenticate("USER0012@example.com", DEMO_PASSWORD) is not None
        assert store.authenticate("user0003", "not-the-password") is None
    finally:
        pool.close()
    with psycopg.connect(migrated) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE id = 1").fetchone()
    assert row is not None
    assert verify_password(row[0], DEMO_PASSWORD)


def test_counts_that_cannot_make_carts_are_refused(migrated: str) -> None:
    code, _, err = _seed(migrated, "--users", "0", "--carts", "3")
    assert (code, err.strip()) == (2, "Error: carts: need at least one user to belong to")
    code, _, err = _seed(migrated, "--products", "0")
    assert (code, err.strip()) == (2, "Error: carts: need at least one product to hold")
    assert _seed(migrated, "--products", "-1")[0] == 2
    with psycopg.connect(migrated) as conn, pytest.raises(InvalidInput):
        seed_database(conn, products=-1)
    code, out, err = _seed(migrated, "--products", "0", "--users", "0", "--carts", "0")
    assert code == 0, err
    assert out.strip().startswith("seeded 0 products, 0 users, 0 carts and 0 cart items in ")


def test_seed_into_a_database_without_tables_says_to_run_setup(empty_db: str) -> None:
    code, _, err = _seed(empty_db, *SMALL)
    assert code == 2
    assert re.fullmatch(
        r"Error: tables products, users, carts, cart_items do not exist: "
        r"run `shopdb setup` first",
        err.strip(),
    )
