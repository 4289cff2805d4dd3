"""Failover on real servers: the pool finds the new primary; no write is lost or misplaced.

A primary and a streaming replica of its own for each test (promotion is
destructive). DATABASE_URL lists both (libpq's multi-host form); the
primary stops with a transaction held across it, so the fault is met for
certain; the replica is promoted; writes resume by themselves. How long
that takes is a figure (``make bench-replicas``), not an assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from shopdb import AsyncStore, Store
from shopdb.config import Settings
from shopdb.connect import libpq_url, resolve_target, wait_for_database
from shopdb.db import AsyncPool, Pool, establish_async_pool, establish_connection_pool
from shopdb.errors import DatabaseUnavailable, InvalidInput, ShopError
from shopdb.migrate import migrator

from .flavours import Flavour, LoopThread, as_store
from .replication import HANG_GUARD, Cluster


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"_env_file": None, "connect_retry": 0, "pool_size": 2}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def pair() -> Iterator[Cluster]:
    """A migrated primary and one streaming replica, for this test alone."""
    with Cluster(replicas=1) as cluster:
        migrator(cluster.primary.url(), settings=_settings()).run()
        cluster.sync()
        yield cluster


@contextmanager
def store_on(
    flavour: Flavour, url: str, settings: Settings, loop: LoopThread
) -> Iterator[tuple[Store, Pool | AsyncPool]]:
    """A Store (or AsyncStore) on ``url`` as an application makes it, and its pool."""
    if flavour == "sync":
        with establish_connection_pool(url, settings=settings, announce=False) as pool:
            yield Store(pool), pool
        return
    apool = loop.run(establish_async_pool(url, settings=settings, announce=False))
    try:
        yield as_store(AsyncStore(apool), loop), apool
    finally:
        loop.run(apool.close())


def held_across(store: Store, product_id: int, fault: Callable[[], None]) -> None:
    """A transaction that holds its pooled connection while ``fault`` happens."""
    with store.transaction() as tx:
        tx.get_product(product_id)
        fault()
        tx.get_product(product_id)  # on the connection the fault took away


def _products(server_sql: Callable[..., list[tuple[Any, ...]]]) -> set[int]:
    return {row[0] for row in server_sql("SELECT id FROM products")}


def test_after_a_failover_the_pool_finds_the_new_primary_and_nothing_is_lost(
    pair: Cluster, flavour: Flavour, loop_thread: LoopThread
) -> None:
    old, new = pair.primary, pair.replicas[0]
    # Both servers; shopdb adds target_session_attrs=read-write to a multi-host URL.
    url = f"postgresql://postgres@{old.host},{new.host}/shopdb"
    settings = _settings(
        pool_timeout=1, replica_urls=new.url(), replica_max_lag=3600, replica_probe_interval=3600
    )
    with store_on(flavour, url, settings, loop_thread) as (store, _):
        acknowledged = {store.create_product(f"Before {i}", "1.00", 5).id for i in range(20)}
        pair.sync()  # the replica has replayed them: the catalog reads below are certain

        # In flight: a transaction holds a connection across the primary's stop.
        with pytest.raises(DatabaseUnavailable) as met:
            held_across(store, min(acknowledged), old.stop)
        assert met.value.retryable

        # No primary: writes fail, retryably, and land nowhere; the catalog is still read.
        with pytest.raises(DatabaseUnavailable):
            store.create_product("Nowhere", "1.00", 1)
        assert store.get_product(min(acknowledged)).name.startswith("Before")
        with pytest.raises(DatabaseUnavailable) as diagnosed:
            wait_for_database(resolve_target(url, settings), settings)
        assert "failover" in str(diagnosed.value)
        assert _products(new.sql) <= acknowledged  # nothing landed on the read-only server

        new.promote()
        # By itself, the pool reaches the new primary: wait for the first write through.
        deadline = time.monotonic() + HANG_GUARD
        while True:
            try:
                after = store.create_product("After", "1.00", 5)
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline, "writes never resumed"
        store.adjust_inventory(after.id, -1)
        assert store.get_product(after.id).inventory_count == 4

    assert not old.running()
    assert _products(new.sql) == acknowledged | {after.id}


def test_a_write_on_a_read_only_server_is_unavailable_and_its_connection_dropped(
    committed_pool: Pool, flavour: Flavour, loop_thread: LoopThread
) -> None:
    """A connection alive on a server that no longer takes writes (25006): a fenced
    primary, made certain here by one session's default_transaction_read_only."""
    url = libpq_url(committed_pool.target.url)
    settings = _settings(pool_size=1)
    with store_on(flavour, url, settings, loop_thread) as (store, pool):
        store.create_product("Writable", "1.00", 1)
        _fence(pool, loop_thread)
        with pytest.raises(DatabaseUnavailable) as caught:
            store.create_product("Refused", "1.00", 1)
        assert caught.value.retryable
        cause = caught.value.__cause__
        assert isinstance(cause, psycopg.Error)
        assert cause.sqlstate == "25006"
        # The pool dropped that connection: the same call, again, on a new one.
        assert store.create_product("Accepted", "1.00", 1).name == "Accepted"
    with psycopg.connect(url) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM products ORDER BY id")]
    assert names == ["Writable", "Accepted"]


def _fence(pool: Pool | AsyncPool, loop: LoopThread) -> None:
    """Make the pool's only connection read-only for the rest of its life."""
    fence = "SET default_transaction_read_only = on"
    if isinstance(pool, Pool):
        with pool.raw() as conn:
            conn.execute(fence)
        return

    async def fence_async() -> None:
        async with pool.raw() as conn:
            await conn.execute(fence)

    loop.run(fence_async())


def test_a_token_inside_a_transaction_that_wrote_is_refused(store: Store) -> None:
    assert "/" in store.freshness_token()  # nothing written yet: the token covers it all
    store.create_product("Uncommitted", "1.00", 1)
    with pytest.raises(ShopError, match="after the transaction commits"):
        store.freshness_token()


def test_a_bound_store_reads_after_any_token_on_its_own_connection(store: Store) -> None:
    """It reads on the caller's connection, which sees its own writes: a token changes nothing."""
    tea = store.create_product("Own write", "1.00", 1)
    assert store.after("FFFFFFFF/FFFFFFFF").get_product(tea.id).name == "Own write"
    with pytest.raises(InvalidInput):
        store.after("not a token")
