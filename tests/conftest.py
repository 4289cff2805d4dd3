"""Shared fixtures for shopdb's own tests; the database fixtures come from shopdb.testing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopdb import Store
from shopdb.config import Settings
from shopdb.db import Pool
from shopdb.testing import DatabaseFactory


@pytest.fixture
def settings(shopdb_server: DatabaseFactory) -> Settings:
    """Settings for tests: no .env, no connect retries."""
    return shopdb_server.settings()


@pytest.fixture
def empty_db(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards; yields its URL."""
    target = shopdb_server.create("shopdb_empty")
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture
def committed_pool(shopdb_server: DatabaseFactory) -> Iterator[Pool]:
    """A pool on a migrated database of its own, whose writes really commit."""
    from shopdb.db import make_engine

    target = shopdb_server.create("shopdb_committed", migrated=True)
    settings = shopdb_server.settings(pool_size=20, pool_timeout=60)
    route = shopdb_server.pooled_target(target.database)
    pool = Pool(make_engine(route, settings), settings, route)
    yield pool
    pool.close()
    shopdb_server.drop(target.database)


@pytest.fixture
def committed_store(committed_pool: Pool) -> Store:
    """A Store on :func:`committed_pool` (for concurrency tests)."""
    return Store(committed_pool)
