"""Least privilege: the app role does what the Store does and nothing more; history stays.

The forbidden statements run on a real connection as the role ``shopdb setup
--app-role`` makes; the triggers are tried as the owner too, because they
hold whoever asks. (The Store suite itself runs as the app role in CI, with
``SHOPDB_TEST_AS_APP_ROLE=1``: that proves the grants suffice.)
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg

from shopdb import Store, passwords
from shopdb.db import establish_connection_pool
from shopdb.errors import CartClosed, InvalidInput, translate
from shopdb.migrate.admin import grant_app_role
from shopdb.migrate.privileges import APP_GRANTS
from shopdb.testing import DatabaseFactory

from .flavours import Sql

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


class Shop:
    """A database with the app role's grants, a sale made through the Store as that role."""

    def __init__(self, owner_url: str, app_url: str, role: str) -> None:
        self.owner_url = owner_url
        self.app_url = app_url
        self.role = role
        self.ids: dict[str, int] = {}


@pytest.fixture(scope="module")
def shop(shopdb_server: DatabaseFactory) -> Iterator[Shop]:
    role = f"shopdb_app_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    target = shopdb_server.create("shopdb_privileges", migrated=True)
    grant_app_role(target, shopdb_server.settings(), role, password)
    app_url = (
        shopdb_server.server_url.set(username=role, password=password, database=target.database)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    owner_url = shopdb_server.url(target.database)
    made = Shop(owner_url, app_url, role)
    try:
        with establish_connection_pool(app_url, settings=shopdb_server.settings()) as pool:
            store = Store(pool)
            user = store.create_user("alice", "alice@example.com", PASSWORD)
            lamp = store.create_product("Lamp", "10.00", 5)
            sold = store.for_user(user.id)
            sold.add(lamp.id, 1)
            order = sold.checkout()
            made.ids = {"user": user.id, "product": lamp.id, "order": order.id}
            made.ids["sold_cart"] = order.cart_id
        yield made
    finally:
        shopdb_server.drop(target.database)
        with psycopg.connect(shopdb_server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _refusal(url: str, statement: str, params: tuple[object, ...] = ()) -> psycopg.Error:
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(statement, params)
        return refused.value


def test_each_forbidden_statement_is_refused_to_the_app_role(shop: Shop) -> None:
    ids = shop.ids
    denied = [
        ("SELECT password_hash FROM users", ()),
        ("SELECT * FROM users", ()),
        ("UPDATE users SET password_hash = 'x' WHERE id = %s", (ids["user"],)),
        ("DELETE FROM users", ()),
        ("DELETE FROM orders", ()),
        ("DELETE FROM order_items", ()),
        ("UPDATE orders SET total = 0, status = 'shipped' WHERE id = %s", (ids["order"],)),
        ("UPDATE orders SET total = 0 WHERE id = %s", (ids["order"],)),
        ("UPDATE order_items SET unit_price = 0", ()),
        ("INSERT INTO orders (user_id, cart_id, total, status) VALUES (1, 1, 0, 'shipped')", ()),
        ("SELECT * FROM inventory_adjustments", ()),
        ("UPDATE inventory_adjustments SET delta = delta + 100", ()),
        ("DELETE FROM inventory_adjustments", ()),
        ("DELETE FROM carts", ()),
        ("UPDATE carts SET user_id = user_id", ()),
        ("TRUNCATE orders CASCADE", ()),
        ("SELECT setval('orders_id_seq', 1)", ()),
        ("SELECT * FROM login_attempts", ()),
        ("DELETE FROM login_attempts", ()),
        ("SELECT * FROM auth_keys", ()),
        ("SELECT shopdb_login_key('salt', 'alice')", ()),
    ]
    for statement, params in denied:
        error = _refusal(shop.app_url, statement, params)
        assert isinstance(error, pg.InsufficientPrivilege), (statement, error)

    # What the app role may update, the database still refuses when it rewrites history.
    placed_to_shipped = "UPDATE orders SET status = 'shipped' WHERE id = %s"
    error = _refusal(shop.app_url, placed_to_shipped, (ids["order"],))
    assert isinstance(error, pg.CheckViolation)
    assert isinstance(translate(error), InvalidInput)
    reopen = "UPDATE carts SET closed_at = NULL WHERE id = %s"
    assert isinstance(translate(_refusal(shop.app_url, reopen, (ids["sold_cart"],))), CartClosed)
    line = "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (%s, %s, 1)"
    error = _refusal(shop.app_url, line, (ids["sold_cart"], ids["product"]))
    assert isinstance(translate(error), CartClosed)
    with psycopg.connect(shop.owner_url) as owner:
        row = owner.execute("SELECT status, total FROM orders WHERE id = %s", (ids["order"],))
        assert row.fetchone() == ("placed", 10)
        closed = owner.execute("SELECT closed_at FROM carts WHERE id = %s", (ids["sold_cart"],))
        assert closed.fetchone() != (None,)


def test_the_app_role_holds_exactly_the_documented_grants(shop: Shop) -> None:
    with psycopg.connect(shop.owner_url) as conn:
        columns = set(
            conn.execute(
                "SELECT privilege_type, table_name, column_name "
                "FROM information_schema.column_privileges WHERE grantee = %s",
                (shop.role,),
            ).fetchall()
        )
        tables = set(
            conn.execute(
                "SELECT privilege_type, table_name FROM information_schema.table_privileges "
                "WHERE grantee = %s",
                (shop.role,),
            ).fetchall()
        )
        sequences = set(
            conn.execute(
                "SELECT c.relname, p.privilege_type FROM pg_class c, "
                "aclexplode(c.relacl) p WHERE c.relkind = 'S' AND p.grantee = %s::regrole",
                (shop.role,),
            ).fetchall()
        )
        functions = set(
            conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a "
                "WHERE a.grantee = %s::regrole AND a.privilege_type = 'EXECUTE'",
                (shop.role,),
            ).fetchall()
        )
    grants = APP_GRANTS
    assert columns == {
        (g.privilege, g.on, column) for g in grants if g.kind == "table" for column in g.columns
    }
    assert tables == {(g.privilege, g.on) for g in grants if g.kind == "table" and not g.columns}
    assert sequences == {(g.on, "USAGE") for g in grants if g.kind == "sequence"}
    assert functions == {(g.on,) for g in grants if g.kind == "function"}


def test_the_readme_lists_every_grant_with_its_reason() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Every grant", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", section, flags=re.MULTILINE)
    assert rows == [(g.describe(), g.why) for g in APP_GRANTS]


def test_a_login_check_needs_an_attempt_counted_first(shop: Shop) -> None:
    """The app role cannot skip the throttle by calling the check alone, however right."""
    with psycopg.connect(shop.app_url, autocommit=True) as conn:
        begin = "SELECT * FROM shopdb_login_begin(%s, %s)"
        row = conn.execute(begin, ("alice", passwords.current_settings())).fetchone()
        assert row is not None
        settings, length, wait = row
        assert wait is None
        assert settings.count("$") == 4  # variant, version, parameters, salt: no digest
        digest = passwords.derive(settings, length, PASSWORD)
        finish = "SELECT * FROM shopdb_login_finish(%s, %s, NULL)"
        assert conn.execute(finish, ("alice", digest)).fetchone() is not None
        # The success consumed the one attempt begun: the same check again finds none.
        assert conn.execute(finish, ("alice", digest)).fetchone() is None


def test_the_rules_hold_for_the_owner_too(store: Store, sql: Sql) -> None:
    """Triggers, not grants: a raw UPDATE by the table owner is refused the same way."""
    user = store.create_user("bob", "bob@example.com", PASSWORD)
    lamp = store.create_product("Lamp", "10.00", 5)
    store.adjust_inventory(lamp.id, 3)
    shopper = store.for_user(user.id)
    shopper.add(lamp.id, 2)
    order = shopper.checkout()

    def refused(statement: str, *params: object) -> Exception:
        sql("SAVEPOINT refused")
        try:
            sql(statement, params)
        except psycopg.Error as exc:
            sql("ROLLBACK TO SAVEPOINT refused")
            return translate(exc)
        raise AssertionError(f"the database accepted {statement}")

    for statement in (
        "UPDATE orders SET status = 'shipped' WHERE id = %s",
        "UPDATE orders SET status = 'lost' WHERE id = %s",
        "UPDATE orders SET total = 0 WHERE id = %s",
        "UPDATE orders SET created_at = now() - interval '1 day' WHERE id = %s",
    ):
        assert isinstance(refused(statement, order.id), InvalidInput), statement
    for statement in (
        "UPDATE inventory_adjustments SET delta = 0 WHERE product_id = %s",
        "DELETE FROM inventory_adjustments WHERE product_id = %s",
    ):
        error = refused(statement, lamp.id)
        assert isinstance(error, InvalidInput), statement
        assert error.field == "inventory_adjustments"
    for statement in (
        "UPDATE carts SET closed_at = NULL WHERE id = %s",
        "UPDATE carts SET closed_at = now() - interval '1 day' WHERE id = %s",
    ):
        assert isinstance(refused(statement, order.cart_id), CartClosed), statement

    # The legal moves pass, and no way back; a deleted product's adjustments go with it.
    sql("UPDATE orders SET status = 'paid', updated_at = now() WHERE id = %s", (order.id,))
    assert isinstance(
        refused("UPDATE orders SET status = 'placed' WHERE id = %s", order.id), InvalidInput
    )
    sql("UPDATE orders SET status = 'cancelled' WHERE id = %s", (order.id,))
    for back in ("placed", "paid", "shipped"):
        statement = f"UPDATE orders SET status = '{back}' WHERE id = %s"
        assert isinstance(refused(statement, order.id), InvalidInput), back
    assert sql("SELECT count(*) FROM inventory_adjustments WHERE product_id = %s", (lamp.id,)) == [
        (2,)
    ]
    store.delete_product(lamp.id)
    assert sql("SELECT count(*) FROM inventory_adjustments WHERE product_id = %s", (lamp.id,)) == [
        (0,)
    ]
    assert store.get_order(order.id).items[0].name == "Lamp"


def test_the_store_fixtures_run_as_the_app_role_when_asked(
    shopdb_server: DatabaseFactory, committed_pool: object
) -> None:
    """Under ``SHOPDB_TEST_AS_APP_ROLE`` the pools the Store suite uses log in as the role."""
    from shopdb.db import Pool

    assert isinstance(committed_pool, Pool)
    with committed_pool.raw() as conn:
        row = conn.execute("SELECT current_user").fetchone()
    expected = shopdb_server.app_role or str(shopdb_server.server_url.username)
    assert row == (expected,)
