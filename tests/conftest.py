"""Shared fixtures for shopdb's own tests; the database fixtures come from shopdb.testing.

``store`` and ``committed_store`` are parametrised over both flavours
(``Store`` and ``AsyncStore``, see ``tests/flavours.py``): every test that
takes one runs twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopdb import Store
from shopdb.config import Settings
from shopdb.connect import Target
from shopdb.db import Pool
from shopdb.testing import DatabaseFactory

from .flavours import FLAVOURS, Flavour, LoopThread, Sql, bound_store, pooled_store


@pytest.fixture
def settings(shopdb_server: DatabaseFactory) -> Settings:
    """Settings for tests: no .env, no connect retries."""
    return shopdb_server.settings()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """The event loop the async flavour runs on, in a thread of its own."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    """``sync`` (Store) or ``async`` (AsyncStore)."""
    chosen: Flavour = request.param
    return chosen


@pytest.fixture
def bound(
    flavour: Flavour,
    shopdb_server: DatabaseFactory,
    shopdb_target: Target,
    loop_thread: LoopThread,
) -> Iterator[tuple[Store, Sql]]:
    """A store in a transaction rolled back after the test, and ``sql`` on its connection."""
    route = shopdb_server.pooled_target(shopdb_target.database)
    role = shopdb_server.app_role  # SHOPDB_TEST_AS_APP_ROLE: the store runs as the app role
    with bound_store(flavour, route, shopdb_server.settings(), loop_thread, as_role=role) as pair:
        yield pair


@pytest.fixture
def store(bound: tuple[Store, Sql]) -> Store:
    """A Store (or an AsyncStore behind a Store's interface) rolled back after the test."""
    return bound[0]


@pytest.fixture
def sql(bound: tuple[Store, Sql]) -> Sql:
    """Runs SQL inside the same transaction as ``store``: ``sql("SELECT %s", (1,))``."""
    return bound[1]


@pytest.fixture
def empty_db(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards; yields its URL."""
    target = shopdb_server.create("shopdb_empty")
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture
def committed_pool(shopdb_server: DatabaseFactory) -> Iterator[Pool]:
    """A pool on a migrated database of its own, whose writes really commit (connected
    as the app role when ``SHOPDB_TEST_AS_APP_ROLE`` is set)."""
    target = shopdb_server.create("shopdb_committed", migrated=True)
    settings = shopdb_server.settings(pool_size=20, pool_timeout=60)
    route = shopdb_server.store_target(target.database)
    with Pool(route, settings) as pool:
        yield pool
    shopdb_server.drop(target.database)


@pytest.fixture
def committed_store(
    flavour: Flavour, committed_pool: Pool, loop_thread: LoopThread
) -> Iterator[Store]:
    """A Store (or AsyncStore) on a pool of its own on :func:`committed_pool`'s database."""
    with pooled_store(
        flavour, committed_pool.target, committed_pool.settings, loop_thread
    ) as store:
        yield store


#: The Store's default ``retries``, and none: a race test runs with both, so that a
#: deadlock (which the default would run again, unseen) fails it once.
RACE_RETRIES = (5, 0)


@pytest.fixture(params=RACE_RETRIES, ids=lambda n: f"retries{n}")
def racing_store(
    request: pytest.FixtureRequest,
    flavour: Flavour,
    committed_pool: Pool,
    loop_thread: LoopThread,
) -> Iterator[Store]:
    """:func:`committed_store`, for races: once with the default ``retries`` and once
    with ``retries=0``, where a deadlock surfaces as a ``ConcurrencyConflict`` (see
    :func:`tests.helpers.outcomes`, which fails a race on one)."""
    retries: int = request.param
    with pooled_store(
        flavour, committed_pool.target, committed_pool.settings, loop_thread, retries=retries
    ) as store:
        yield store


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio (psycopg's async connections need it)."""
    return "asyncio"
