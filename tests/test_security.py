"""Security: password hashing, no secret in any output, timeouts, a least-privilege role."""

from __future__ import annotations

import logging
import secrets
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import click
import psycopg
import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import text

from shopdb import Store, passwords
from shopdb.cli import cli
from shopdb.config import Settings
from shopdb.db import Pool, establish_connection_pool
from shopdb.errors import DatabaseUnavailable, PermissionDenied, QueryTimeout, ShopError, translate
from shopdb.models import NewUser, User
from shopdb.schemas import UserRead
from shopdb.testing import DatabaseFactory

from .flavours import Sql
from .helpers import copy_migrations, run_cli

#: The database password used throughout; trust authentication ignores it.
DB_SECRET = "db-pw-Zq81x"
USER_SECRET = "user-pw-Kd93v"


def test_hashes_are_argon2id_at_owasp_minimum_or_above() -> None:
    hasher = passwords.HASHER
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= 19 * 1024
    assert hasher.time_cost >= 2
    assert hasher.parallelism >= 1
    assert passwords.hash_password("x").startswith("$argon2id$")


def test_a_weak_hash_is_upgraded_at_the_next_successful_login(store: Store, sql: Sql) -> None:
    user = store.create_user("legacy", "legacy@example.com", USER_SECRET)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(USER_SECRET)
    sql("UPDATE users SET password_hash = %s WHERE id = %s RETURNING id", (weak, user.id))

    def stored() -> str:
        return str(sql("SELECT password_hash FROM users WHERE id = %s", (user.id,))[0][0])

    assert store.authenticate("legacy", "wrong password") is None
    assert stored() == weak  # a failed login changes nothing
    assert store.authenticate("legacy", USER_SECRET) == user
    upgraded = stored()
    assert upgraded != weak
    assert "$m=19456,t=2,p=1$" in upgraded
    assert not passwords.needs_rehash(upgraded)
    assert store.authenticate("LEGACY", USER_SECRET) == user


def test_the_password_hash_appears_in_no_repr_str_json_or_log(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    public = store.create_user("hidden", "hidden@example.com", USER_SECRET)
    logged_in = store.authenticate("hidden", USER_SECRET)
    with pytest.raises(ShopError) as taken:
        store.create_user("HIDDEN", "other@example.com", USER_SECRET)
    row = User(id=1, username="x", email="x@y.io", password_hash="$argon2id$v=19$secret")
    new = NewUser.model_validate(
        {"username": "n", "email": "n@example.com", "password": USER_SECRET}
    )
    shapes = [
        repr(public),
        str(public),
        public.model_dump_json(),
        repr(logged_in),
        repr(row),
        str(row),
        repr(new),
        str(new),
        new.model_dump_json(),
        str(new.model_dump()),
        str(UserRead.model_json_schema()),
        str(taken.value),
    ]
    # Tracebacks quote source lines, which may name the column; never its value.
    everything = "\n".join([*shapes, "".join(traceback.format_exception(taken.value)), caplog.text])
    assert "argon2" not in everything
    assert USER_SECRET not in everything
    assert "password_hash" not in "\n".join(shapes)


def _url_with_secret(factory: DatabaseFactory, database: str) -> str:
    url = factory.server_url.set(password=DB_SECRET, database=database)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every runnable command under ``group``, as the words that name it."""
    found: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _leaf_commands(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_no_command_prints_the_database_password(
    shopdb_server: DatabaseFactory, empty_db: str, tmp_path: Path
) -> None:
    """Every command and subcommand, run with a URL holding a distinctive password.

    The list of runs must cover every command the CLI has: a new command
    fails this test until it is run here too.
    """
    database = empty_db.rsplit("/", 1)[1].split("?", 1)[0]
    url = _url_with_secret(shopdb_server, database)
    products = tmp_path / "products.csv"
    products.write_text("name,price,inventory_count\nTea,4.50,10\n")
    versions = copy_migrations(tmp_path / "versions")
    role = f"shopdb_app_{secrets.token_hex(3)}"
    # (command words, extra arguments, extra environment), in an order that works.
    runs: list[tuple[tuple[str, ...], list[str], dict[str, str]]] = [
        (("setup",), [], {}),
        (("setup",), ["--app-role", role], {}),  # no app password: none may be shown
        (("setup",), ["--app-role", role], {"SHOPDB_APP_ROLE_PASSWORD": USER_SECRET}),
        (("status",), [], {}),
        (("check",), [], {}),
        (("print-schema",), [], {}),
        (("database", "url"), [], {}),
        (("migration", "list"), ["--json"], {}),
        (("migration", "list"), [], {}),
        (("migration", "pending"), [], {}),
        (("migration", "revert"), ["--sql"], {}),
        (("migration", "revert"), [], {}),
        (("migration", "run"), ["--sql"], {}),
        (("migration", "run"), [], {}),
        (("migration", "redo"), [], {}),
        (("migration", "generate"), ["--migrations-dir", str(versions), "add_things"], {}),
        (("seed",), ["--products", "5", "--users", "2", "--carts", "1"], {}),  # wants it empty
        (("import", "products"), [str(products)], {}),
        (("user", "staff"), ["user0001"], {}),  # seeded above
        (("user", "customer"), ["user0001"], {}),
        (("user", "show"), ["user0001@example.com"], {}),
        (("database", "reset"), ["--yes"], {}),
        (("database", "drop"), ["--yes"], {}),
    ]
    assert {words for words, _, _ in runs} == _leaf_commands(cli), "a command is not run here"

    captured: list[str] = []
    try:
        for words, extra, env in runs:
            # --migrations-dir is an option of the top-level group.
            top = extra[:2] if extra[:1] == ["--migrations-dir"] else []
            rest = extra[2:] if top else extra
            result = run_cli("--database-url", url, *top, *words, *rest, env=env)
            assert result.returncode == 0, (words, result.stderr)
            captured += [result.stdout, result.stderr]
    finally:
        with psycopg.connect(shopdb_server.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                for (name,) in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname = %s", (database,)
                ).fetchall():
                    with psycopg.connect(shopdb_server.url(name), autocommit=True) as owner:
                        owner.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE "{role}"')
    everything = "\n".join(captured)
    assert DB_SECRET not in everything
    assert USER_SECRET not in everything
    assert ":***@" in everything  # the masked form is what is shown
    # Without SHOPDB_APP_ROLE_PASSWORD the role's URL carries no password at all.
    assert f"connect as postgresql://{role}@" in everything


def test_the_database_password_appears_in_no_error_repr_or_log(
    shopdb_server: DatabaseFactory,
    empty_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    database = empty_db.rsplit("/", 1)[1].split("?", 1)[0]
    url = _url_with_secret(shopdb_server, database)
    unreachable = f"postgres://shop:{DB_SECRET}@127.0.0.1:1/shop"
    missing = _url_with_secret(shopdb_server, "no_such_database_here")
    captured: list[str] = []

    assert run_cli("--database-url", url, "setup").returncode == 0
    for bad in (unreachable, missing, url.replace(database, 'bad"name')):
        result = run_cli("--database-url", bad, "status", env={"SHOPDB_CONNECT_RETRY": "0"})
        assert result.returncode == 2
        captured += [result.stdout, result.stderr]

    settings = shopdb_server.settings()
    for bad in (unreachable, missing):
        with pytest.raises(ShopError) as caught:
            establish_connection_pool(bad, settings=settings)
        captured += [str(caught.value), repr(caught.value)]
        captured.append("".join(traceback.format_exception(caught.value)))
    with establish_connection_pool(url, settings=settings) as pool:
        store = Store(pool)
        store.create_product("Secretless", "1.00", 1)
        captured += [repr(pool.engine), repr(pool.target), pool.url, repr(settings)]
        with pytest.raises(ShopError) as caught, pool.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
        captured.append("".join(traceback.format_exception(caught.value)))
    captured.append(caplog.text)

    everything = "\n".join(captured)
    assert DB_SECRET not in everything
    assert ":***@" in everything  # the masked form is what is shown


def test_connections_enforce_statement_and_idle_in_transaction_timeouts(
    shopdb_server: DatabaseFactory, committed_pool: Pool
) -> None:
    settings = shopdb_server.settings(statement_timeout=0.2, idle_in_transaction_timeout=0.3)
    url = shopdb_server.url(committed_pool.target.database)
    with establish_connection_pool(url, settings=settings) as pool:
        with pytest.raises(QueryTimeout), pool.connect() as conn:
            conn.execute(text("SELECT pg_sleep(60)"))  # far past the timeout

        def idle_too_long() -> None:
            with pool.transaction() as session:
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                _wait_until_gone(url, pid)  # the server ended the idle session
                session.execute(text("SELECT 1"))

        with pytest.raises(DatabaseUnavailable):
            idle_too_long()
        with pool.connect() as conn:  # and the pool carries on with a fresh connection
            assert conn.execute(text("SELECT 1")).scalar_one() == 1


def _wait_until_gone(url: str, pid: int, hang_guard: float = 60.0) -> None:
    """Wait until the server has ended backend ``pid`` (polling; a hang guard bounds it)."""
    deadline = time.monotonic() + hang_guard
    with psycopg.connect(url, autocommit=True) as watcher:
        while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} was never ended"
            time.sleep(0.05)


@pytest.fixture
def app_role(shopdb_server: DatabaseFactory, empty_db: str) -> Iterator[tuple[str, str]]:
    """A role name for this test, dropped (with its grants) afterwards; and the db URL."""
    role = f"shopdb_app_{secrets.token_hex(3)}"
    yield role, empty_db
    with psycopg.connect(empty_db, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_the_app_role_runs_the_store_but_cannot_change_the_schema(
    shopdb_server: DatabaseFactory, app_role: tuple[str, str]
) -> None:
    role, admin_url = app_role
    result = run_cli(
        "--database-url",
        admin_url,
        "setup",
        "--app-role",
        role,
        env={"SHOPDB_APP_ROLE_PASSWORD": DB_SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert f"app role {role} may do what the Store does" in result.stdout
    assert DB_SECRET not in result.stdout + result.stderr
    # Running setup again updates the role instead of failing.
    again = run_cli("--database-url", admin_url, "setup", "--app-role", role)
    assert again.returncode == 0, again.stderr

    database = admin_url.rsplit("/", 1)[1].split("?", 1)[0]
    app_url = (
        shopdb_server.server_url.set(username=role, password=DB_SECRET, database=database)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    with establish_connection_pool(app_url, settings=shopdb_server.settings()) as pool:
        store = Store(pool)
        user = store.create_user("shopper", "shopper@example.com", USER_SECRET)
        assert store.authenticate("SHOPPER", USER_SECRET) == user  # without reading the hash
        assert store.authenticate("shopper", "not the password") is None
        product = store.create_product("Allowed", "2.00", 3)
        cart = store.create_cart(user.id)
        store.add_to_cart(cart.id, product.id, 2)
        assert store.checkout(cart.id).total == 4
        store.delete_product(product.id)

    with psycopg.connect(app_url, autocommit=True) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        for ddl in (
            "DROP TABLE cart_items",
            "ALTER TABLE products ADD COLUMN sku varchar",
            "CREATE TABLE intruder (id int)",
            "TRUNCATE users CASCADE",
            "DROP SEQUENCE users_id_seq",
        ):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(ddl)
            assert isinstance(translate(refused.value), PermissionDenied), ddl


def test_the_app_role_may_not_be_a_superuser(app_role: tuple[str, str]) -> None:
    _, admin_url = app_role
    result = run_cli("--database-url", admin_url, "setup", "--app-role", "postgres")
    assert result.returncode == 2
    assert "superuser" in result.stderr


def test_default_settings_connect_with_timeouts(shopdb_server: DatabaseFactory) -> None:
    defaults = Settings(_env_file=None)
    assert defaults.statement_timeout > 0
    assert defaults.idle_in_transaction_timeout > 0
