"""Behaviour the two pool flavours once disagreed on, now one generated code path: both checked.

Before the sync pool was generated from the async one (docs/architecture.md),
``Pool.checkout`` let psycopg_pool's own timeout escape where
``AsyncPool.checkout`` translated it, and the async disconnect hook drained
the pool on every disconnect where the sync one drained once per burst.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from shopdb.connect import Target
from shopdb.db import AsyncPool, Pool
from shopdb.errors import DatabaseUnavailable, PoolTimeout
from shopdb.testing import DatabaseFactory

from .flavours import Flavour, LoopThread

HANG_GUARD = 60.0


class Either:
    """A Pool, or an AsyncPool whose calls run on a loop thread: one interface for the test."""

    def __init__(self, pool: Pool | AsyncPool, loop: LoopThread) -> None:
        self.pool, self.loop = pool, loop

    def checkout(self) -> Any:
        if isinstance(self.pool, Pool):
            return self.pool.checkout()
        return self.loop.run(self.pool.checkout())

    def checkin(self, conn: Any) -> None:
        if isinstance(self.pool, Pool):
            self.pool.checkin(conn)
        else:
            self.loop.run(self.pool.checkin(conn))

    def select_one_through_sqlalchemy(self) -> None:
        if isinstance(self.pool, Pool):
            with self.pool.connect() as conn:
                conn.execute(text("SELECT 1"))
            return

        async def select() -> None:
            assert isinstance(self.pool, AsyncPool)
            async with self.pool.connect() as conn:
                await conn.execute(text("SELECT 1"))

        self.loop.run(select())

    def backend_pids(self, count: int) -> set[int]:
        """The backends of ``count`` connections taken at once (then given back)."""
        conns = [self.checkout() for _ in range(count)]
        try:
            pids = set()
            for conn in conns:
                pids.add(conn.info.backend_pid)
            return pids
        finally:
            for conn in conns:
                self.checkin(conn)


@contextmanager
def either(flavour: Flavour, target: Target, settings: Any, loop: LoopThread) -> Iterator[Either]:
    if flavour == "sync":
        with Pool(target, settings) as pool:
            yield Either(pool, loop)
        return
    apool = loop.run(AsyncPool.open(target, settings))
    try:
        yield Either(apool, loop)
    finally:
        loop.run(apool.close())


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_GUARD  # a hang guard, not a timing assertion
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_checkout_translates_a_pool_timeout_in_both_flavours(
    flavour: Flavour, shopdb_server: DatabaseFactory, shopdb_target: Target, loop_thread: LoopThread
) -> None:
    settings = shopdb_server.settings(pool_size=1, max_overflow=0, pool_timeout=0.2)
    with either(flavour, shopdb_target, settings, loop_thread) as pool:
        held = pool.checkout()
        try:
            with pytest.raises(PoolTimeout) as caught:
                pool.checkout()
            assert caught.value.retryable
        finally:
            pool.checkin(held)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_disconnect_seen_by_sqlalchemy_replaces_the_older_connections_in_both_flavours(
    flavour: Flavour, shopdb_server: DatabaseFactory, shopdb_target: Target, loop_thread: LoopThread
) -> None:
    settings = shopdb_server.settings(pool_size=2, max_overflow=0)
    with either(flavour, shopdb_target, settings, loop_thread) as pool:
        pool.select_one_through_sqlalchemy()  # SQLAlchemy has met this database before
        before = pool.backend_pids(2)
        # Every backend of the pool is cut off: the next statement meets a dead connection.
        with psycopg.connect(shopdb_server.url(shopdb_target.database), autocommit=True) as admin:
            for pid in before:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DatabaseUnavailable):
            pool.select_one_through_sqlalchemy()
        # The pool was drained (async: by a task the hook started) and the dead
        # connection SQLAlchemy held came back to it (psycopg's close() does not
        # return a closed connection): both connections now are new, none is lost.
        _until(lambda: not (pool.backend_pids(2) & before))
        pool.select_one_through_sqlalchemy()
