"""Faults injected into real PostgreSQL: nothing acknowledged is lost, the pool heals itself."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from bench.soak import Ledger, prepare, run_mixed, settle, violations
from shopdb import Store
from shopdb.config import Settings
from shopdb.connect import libpq_url
from shopdb.db import Pool, establish_connection_pool
from shopdb.embedded import EmbeddedServer, start_embedded
from shopdb.errors import DatabaseUnavailable
from shopdb.migrate import migrator


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"_env_file": None, "connect_retry": 0}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """An embedded server of this test's own, to stop, start and kill."""
    server = start_embedded(tmp_path / "pg", announce=False)
    migrator(server.url(), settings=_settings()).run()
    yield server
    with suppress(Exception):
        server.stop()


def _under_load(store: Store, fault: Callable[[], None], seconds: float = 6.0) -> Ledger:
    """Run the mixed workload on 8 threads with ``fault`` after 1.5 s; check that nothing
    was lost, and that the pool served again within 2 s of the fault's end and kept on."""
    catalog = prepare(store, products=20, stock=10_000)
    ledger = Ledger()
    until = time.monotonic() + seconds
    load = threading.Thread(
        target=run_mixed, args=(store, catalog, ledger), kwargs={"threads": 8, "until": until}
    )
    load.start()
    time.sleep(1.5)
    fault()
    back = ledger.back_at = time.monotonic()
    load.join()
    settle(store, ledger)
    assert ledger.unexpected == [], ledger.unexpected[:5]
    assert ledger.unavailable > 0, "the fault went unnoticed"
    assert ledger.recovered_at is not None
    assert ledger.recovered_at - back <= 2.0, "the pool took more than 2 s to serve again"
    assert ledger.last_unavailable - back <= 2.0, "failures went on after the server was back"
    assert ledger.successes_after["checkout"] > back + 2.0, "checkouts stopped after the fault"
    assert violations(store, catalog, ledger, libpq_url(store._runner.pool.target.url)) == []  # type: ignore[union-attr]
    return ledger


def test_embedded_restart_under_load_loses_nothing_and_heals_within_2s(
    own_server: EmbeddedServer,
) -> None:
    pool = establish_connection_pool(
        own_server.url(), settings=_settings(pool_size=8), announce=False
    )

    def restart() -> None:
        own_server.stop()
        time.sleep(1.0)
        own_server.start()

    _under_load(Store(pool), restart)
    pool.close()


def test_terminated_connections_under_load_lose_nothing_and_heal_within_2s(
    committed_pool: Pool,
) -> None:
    url = libpq_url(committed_pool.target.url)

    def terminate_everything() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            for _ in range(3):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                time.sleep(0.3)

    _under_load(Store(committed_pool), terminate_everything)


def test_acknowledged_writes_survive_a_sigkill(own_server: EmbeddedServer) -> None:
    with psycopg.connect(own_server.url(), autocommit=True) as conn:
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }
    assert set(settings.values()) == {("on",)}
    pool = establish_connection_pool(own_server.url(), settings=_settings(), announce=False)
    store = Store(pool)
    acknowledged = [store.create_product(f"Durable {i}", "1.00", i).id for i in range(200)]
    own_server.kill()
    pool.close()
    own_server.start()
    with psycopg.connect(own_server.url()) as conn:
        found = conn.execute(
            "SELECT count(*) FROM products WHERE id = ANY(%s)", (acknowledged,)
        ).fetchone()
    assert found == (200,)


def test_durability_can_be_turned_off_and_on_again(tmp_path: Path) -> None:
    fast = start_embedded(tmp_path / "fast", announce=False, durable=False)
    try:
        with psycopg.connect(fast.url(), autocommit=True) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        fast.stop()
        fast.start()
        with psycopg.connect(fast.url(), autocommit=True) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
    finally:
        fast.stop()


def test_connecting_waits_for_a_server_that_is_still_starting(
    own_server: EmbeddedServer,
) -> None:
    own_server.stop()
    starter = threading.Timer(1.5, own_server.start)
    started = time.monotonic()
    starter.start()
    pool = establish_connection_pool(
        own_server.url(), settings=_settings(connect_retry=20), announce=False
    )
    waited = time.monotonic() - started
    starter.join()
    with pool.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert waited >= 1.0
    pool.close()


def test_a_server_that_stays_down_gives_one_clear_error(own_server: EmbeddedServer) -> None:
    own_server.stop()
    with pytest.raises(DatabaseUnavailable) as caught:
        establish_connection_pool(
            own_server.url(), settings=_settings(connect_retry=1), announce=False
        )
    assert str(caught.value).startswith("cannot reach PostgreSQL at")
    assert "\n" not in str(caught.value)


class Boom(Exception):
    """Raised on purpose inside transactions."""


def test_ten_thousand_operations_with_random_failures_leak_nothing(
    committed_pool: Pool,
) -> None:
    pool = committed_pool
    store = Store(pool)
    product = store.create_product("Leak check", "1.00", 1_000_000)
    user = store.create_user("leaky", "leaky@example.com", "correct horse")

    def store_transaction(rng: random.Random) -> None:
        with store.transaction() as tx:
            cart = tx.create_cart(user.id)
            tx.add_to_cart(cart.id, product.id)
            if rng.random() < 0.5:
                raise Boom

    def orm_transaction(rng: random.Random) -> None:
        with pool.transaction() as session:
            session.execute(text("SELECT count(*) FROM products"))
            if rng.random() < 0.5:
                raise Boom

    def core_connection(rng: random.Random) -> None:
        with pool.connect() as conn:
            conn.execute(text("UPDATE products SET name = name WHERE id = :id"), {"id": product.id})
            if rng.random() < 0.5:
                raise Boom
            conn.commit()

    def raw_transaction(rng: random.Random) -> None:
        with pool.raw() as conn, conn.transaction():
            conn.execute("SELECT 1")
            if rng.random() < 0.5:
                raise Boom

    def plain_store_call(rng: random.Random) -> None:
        store.get_product(product.id)

    kinds = [store_transaction, orm_transaction, core_connection, raw_transaction, plain_store_call]
    failures = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 (a reproducible workload)
        for _ in range(1250):
            try:
                rng.choice(kinds)(rng)
            except Boom:
                pass
            except Exception as exc:  # collected for the assertion below
                failures.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert pool.status().checked_out == 0
    with psycopg.connect(libpq_url(pool.target.url)) as conn:
        rows = conn.execute(
            "SELECT state, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY state"
        ).fetchall()
    states: dict[str | None, int] = dict(rows)
    assert not any(state and state.startswith("idle in transaction") for state in states)
    assert sum(states.values()) <= pool.settings.pool_size
