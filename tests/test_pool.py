"""The pool: waiting, timing out, and failing clearly on a bad URL."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from shopdb.connect import Target
from shopdb.db import Pool, establish_connection_pool
from shopdb.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DatabaseMissing,
    DatabaseUnavailable,
    PoolTimeout,
)
from shopdb.testing import DatabaseFactory

from .helpers import run_cli

SECRET = "sekrit-pw-9f2c"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_more_callers_than_connections_wait_and_all_succeed(
    shopdb_server: DatabaseFactory, shopdb_target: Target
) -> None:
    settings = shopdb_server.settings(pool_size=2, max_overflow=0, pool_timeout=60)
    # Each caller holds its connection until another caller holds one too, so
    # both connections are in use at once by construction, every time.
    both_out = threading.Barrier(2, timeout=60)
    peak = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal peak
        with pool.connect() as conn:
            both_out.wait()
            with lock:
                peak = max(peak, pool.status().checked_out)
            return int(conn.execute(text("SELECT :i"), {"i": i}).scalar_one())

    with (
        establish_connection_pool(
            shopdb_server.url(shopdb_target.database), settings=settings
        ) as pool,
        ThreadPoolExecutor(max_workers=8) as executor,
    ):
        results = list(executor.map(work, range(40)))  # an even number: callers pair up
        assert pool.status().checked_out == 0
    assert results == list(range(40))
    assert peak == 2  # never more than the pool's size, and all of it used


def test_checkout_past_the_timeout_raises_pool_timeout(
    shopdb_server: DatabaseFactory, shopdb_target: Target
) -> None:
    settings = shopdb_server.settings(pool_size=1, max_overflow=0, pool_timeout=0.2)
    with (
        establish_connection_pool(
            shopdb_server.url(shopdb_target.database), settings=settings
        ) as pool,
        pool.connect(),
    ):
        with pytest.raises(PoolTimeout) as caught, pool.connect():
            pass
        assert "0.20 s" in str(caught.value)
        assert caught.value.retryable


def test_unreachable_server_is_named_without_the_password(shopdb_server: DatabaseFactory) -> None:
    url = f"postgres://shop:{SECRET}@127.0.0.1:{_closed_port()}/shop"
    with pytest.raises(DatabaseUnavailable) as caught:
        establish_connection_pool(url, settings=shopdb_server.settings())
    message = str(caught.value)
    assert "127.0.0.1" in message
    assert "refused" in message.lower()
    assert SECRET not in message
    assert "\n" not in message


def test_connect_retries_for_the_configured_time_then_fails(
    shopdb_server: DatabaseFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgres://shop:{SECRET}@127.0.0.1:{_closed_port()}/shop"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        establish_connection_pool(url, settings=shopdb_server.settings(connect_retry=1.0))
    assert time.monotonic() - started >= 1.0
    assert "retrying" in caplog.text
    assert SECRET not in caplog.text


def test_missing_database_is_named(shopdb_server: DatabaseFactory) -> None:
    with pytest.raises(DatabaseMissing) as caught:
        establish_connection_pool(
            shopdb_server.url("no_such_db_here"), settings=shopdb_server.settings()
        )
    assert caught.value.database == "no_such_db_here"


def test_unknown_role_is_an_authentication_failure(shopdb_server: DatabaseFactory) -> None:
    url = shopdb_server.server_url.set(username="nobody_here", password=SECRET)
    with pytest.raises(AuthenticationFailed) as caught:
        establish_connection_pool(
            url.render_as_string(hide_password=False), settings=shopdb_server.settings()
        )
    assert "nobody_here" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgres://u:{SECRET}@host:notaport/db",
        f"mysql://u:{SECRET}@host/db",
        f"postgres://u:{SECRET}@host",
        "",
    ],
)
def test_malformed_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        establish_connection_pool(url)
    assert SECRET not in str(caught.value)


def test_postgres_and_postgresql_schemes_both_work(
    shopdb_server: DatabaseFactory, shopdb_target: Target
) -> None:
    url = shopdb_server.url(shopdb_target.database)
    for scheme in ("postgres://", "postgresql://"):
        with (
            establish_connection_pool(
                scheme + url.split("://", 1)[1], settings=shopdb_server.settings()
            ) as pool,
            pool.connect() as conn,
        ):
            assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_connections_carry_the_configured_timeouts(
    shopdb_server: DatabaseFactory, shopdb_target: Target
) -> None:
    settings = shopdb_server.settings(statement_timeout=1.5, idle_in_transaction_timeout=7)
    with (
        establish_connection_pool(
            shopdb_server.url(shopdb_target.database), settings=settings
        ) as pool,
        pool.connect() as conn,
    ):
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1500ms"
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one() == "7s"
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"


def test_cli_reports_a_bad_url_in_one_line_without_traceback_or_password(tmp_path: Path) -> None:
    url = f"postgres://shop:{SECRET}@127.0.0.1:{_closed_port()}/shop"
    result = run_cli(
        "--database-url", url, "status", cwd=tmp_path, env={"SHOPDB_CONNECT_RETRY": "0"}
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: cannot reach PostgreSQL at 127.0.0.1")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_nothing_connects_or_starts_at_import(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import shopdb, shopdb.db, shopdb.models, shopdb.schema, shopdb.migrate, shopdb.testing"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not (tmp_path / ".shopdb").exists()


def test_with_pre_ping_a_dead_connection_is_replaced_before_use(
    shopdb_server: DatabaseFactory, committed_pool: Pool
) -> None:
    from shopdb import Store

    # A database of its own: every shopdb connection to it is terminated below.
    url = shopdb_server.url(committed_pool.target.database)
    settings = shopdb_server.settings(pool_size=2, pool_pre_ping=True)
    with establish_connection_pool(url, settings=settings) as pool:
        store = Store(pool)
        warm = store.create_product("Warm", "1.00", 1)  # a pooled connection, opened
        assert store.list_products(after_id=warm.id - 1, limit=1).items == [warm]
        with psycopg.connect(url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'shopdb'"
            ).fetchone()
        assert killed is not None
        assert killed[0] >= 1
        # Writes are not retried, so this succeeds only if the ping caught it.
        product = store.create_product("Pinged", "1.00", 1)
        assert store.get_product(product.id) == product
        store.delete_product(product.id)
