"""Staff: a role the data layer knows, set by an operator only, checked before catalog writes.

(The reference service's 403 for a customer is in tests/test_shop_api.py.)
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import Connection

from shopdb import Store
from shopdb.errors import Forbidden, InvalidInput, NotFound
from shopdb.schemas import NewUser, parse
from shopdb.testing import DatabaseFactory

from .helpers import refused, run_cli

PASSWORD = "correct horse battery"


def test_every_user_registers_as_a_customer(store: Store) -> None:
    alice = store.create_user("alice", "alice@example.com", PASSWORD)
    assert alice.role == "customer"
    assert store.get_user(alice.id).role == "customer"
    assert store.authenticate("alice", PASSWORD) == alice


def test_a_registration_cannot_ask_for_a_role() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(NewUser, {"username": "m", "email": "m@x.io", "password": PASSWORD, "role": "staff"})
    assert (caught.value.field, caught.value.reason) == ("role", "is not a known field")


def test_set_role_makes_staff_and_back(store: Store) -> None:
    alice = store.create_user("alice", "alice@example.com", PASSWORD)
    with pytest.raises(Forbidden) as caught:
        store.for_user(alice.id).require_staff()
    assert caught.value.problem()["status"] == 403
    assert caught.value.details() == {"required_role": "staff"}

    staff = store.set_role(alice.id, "staff")
    assert (staff.id, staff.role) == (alice.id, "staff")
    assert store.for_user(alice.id).require_staff() == staff
    assert store.for_user(alice.id).user().role == "staff"

    assert store.set_role(alice.id, "customer").role == "customer"
    with pytest.raises(Forbidden):
        store.for_user(alice.id).require_staff()


def test_set_role_refuses_unknown_roles_and_users(store: Store) -> None:
    alice = store.create_user("alice", "alice@example.com", PASSWORD)
    with pytest.raises(InvalidInput) as caught:
        store.set_role(alice.id, "admin")
    assert caught.value.field == "role"
    with pytest.raises(NotFound):
        store.set_role(2_000_000_000, "staff")
    with pytest.raises(NotFound):
        store.for_user(2_000_000_000).require_staff()


def test_the_database_refuses_an_unknown_role(db_connection: Connection) -> None:
    error = refused(
        db_connection,
        "INSERT INTO users (username, username_key, email, password_hash, role) "
        "VALUES ('amy', 'arny', 'amy@x.io', 'h', 'admin')",
    )
    assert isinstance(error, InvalidInput)
    assert error.field == "role"


# -- shopdb user staff|customer|show --------------------------------------------


@pytest.fixture
def migrated(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database with alice in it; yields its URL."""
    target = shopdb_server.create("shopdb_staff", migrated=True)
    url = shopdb_server.url(target.database)
    with psycopg.connect(url) as conn:
        Store.bound(conn).create_user("alice", "alice@example.com", PASSWORD)
    yield url
    shopdb_server.drop(target.database)


def _role(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT role FROM users WHERE username = 'alice'").fetchone()
    assert row is not None
    return str(row[0])


def test_shopdb_user_staff_and_customer(migrated: str) -> None:
    made = run_cli("--database-url", migrated, "user", "staff", "ALICE")
    assert (made.returncode, made.stdout, made.stderr) == (0, "alice (user 1) is staff now\n", "")
    assert _role(migrated) == "staff"
    again = run_cli("--database-url", migrated, "user", "staff", "alice@example.com")
    assert again.stdout == "alice (user 1) is staff already\n"

    shown = run_cli("--database-url", migrated, "user", "show", "\u0430lice")  # Cyrillic a
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:4] == [
        "id          1",
        "username    alice",
        "email       alice@example.com",
        "role        staff",
    ]

    back = run_cli("--database-url", migrated, "user", "customer", "alice")
    assert back.stdout == "alice (user 1) is customer now\n"
    assert _role(migrated) == "customer"


def test_shopdb_user_errors_are_one_line(migrated: str) -> None:
    missing = run_cli("--database-url", migrated, "user", "staff", "nobody")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == "Error: no user has the username or email 'nobody'\n"
    usage = run_cli("--database-url", migrated, "user", "admin", "alice")
    assert usage.returncode == 2
    assert "No such command 'admin'" in usage.stderr


def test_shopdb_user_help_shows_examples() -> None:
    for command in (["user"], ["user", "staff"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "shopdb user staff alice" in result.stdout
        assert "Examples:" in result.stdout
