"""An :class:`~shopdb.async_db.AsyncPool`'s streaming replicas, probed by an asyncio task.

:mod:`shopdb.replicas` with ``await``: the same :class:`~shopdb.routing.Router`
(the rules), the same probe round, on the pool's event loop. The pool
starts it in :meth:`AsyncPool.open <shopdb.async_db.AsyncPool.open>`, after
one round, and stops it in ``close()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from shopdb.config import replica_urls
from shopdb.connect import Target, libpq_url
from shopdb.errors import translate
from shopdb.pooling import connection_kwargs
from shopdb.replicas import PROBE_NAME
from shopdb.routing import (
    PRIMARY_PROBE,
    REPLICA_PROBE,
    Replica,
    Router,
    RoutingStats,
    replica_settings,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.async_db import AsyncPool
    from shopdb.config import Settings

log = logging.getLogger("shopdb.routing")


class AsyncReplicas(Router["AsyncPool"]):
    """The replicas of an :class:`~shopdb.async_db.AsyncPool` (``pool.replicas``).

    :meth:`stats` says where operations went and what each replica is
    doing; ``await`` :meth:`probe` runs a probe round now.
    """

    def __init__(self, primary: AsyncPool, settings: Settings) -> None:
        """Replicas from ``settings.replica_urls``; :meth:`start` starts probing them."""
        super().__init__(primary, replica_urls(settings), settings.replica_max_lag)
        self.settings = settings
        self._pool_settings = replica_settings(settings)
        self._connect = {
            **connection_kwargs(settings),
            "application_name": PROBE_NAME,
            "prepare_threshold": None,
        }
        self._probes: dict[Replica[AsyncPool] | None, psycopg.AsyncConnection[TupleRow]] = {}
        self._round = asyncio.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Probe once, then every ``replica_probe_interval`` seconds in a task."""
        await self.probe()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="shopdb-probe")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_probe_interval)
            try:
                await self.probe()
            except Exception:  # a probe must never die: log it, and probe again later
                log.exception("replica probe round failed")

    async def probe(self) -> RoutingStats:
        """Probe the primary and every replica now, and return the stats that result."""
        async with self._round:
            if not self._closed:
                row = await self._ask(None, PRIMARY_PROBE)
                self.observe_primary(time.monotonic(), row[0] if isinstance(row, tuple) else None)
                for replica in self.replicas:
                    await self._probe(replica)
        return self.stats()

    async def _probe(self, replica: Replica[AsyncPool]) -> None:
        row = await self._ask(replica, REPLICA_PROBE)
        if not isinstance(row, tuple):
            await self._close_pool(replica)
            self.settle(replica, f"down: {row}")
            return
        problem = self.judge(replica, time.monotonic(), row)
        if problem is None and replica.pool is None:
            problem = await self._open_pool(replica)
        self.settle(replica, problem)

    async def _ask(self, replica: Replica[AsyncPool] | None, sql: str) -> tuple[Any, ...] | str:
        """The row ``sql`` returns on the server, or why there is none."""
        import psycopg

        kept = self._probes.pop(replica, None)
        if kept is not None:  # from the last round; it may have died alone: then a new one
            with suppress(psycopg.Error):
                row = await (await kept.execute(sql)).fetchone()
                self._probes[replica] = kept
                return row if row is not None else "no answer"
            await kept.close()
        url = self.primary.target.url if replica is None else replica.url
        try:
            conn = await psycopg.AsyncConnection.connect(libpq_url(url), **self._connect)
        except psycopg.Error as exc:
            return str(translate(exc))
        try:
            row = await (await conn.execute(sql)).fetchone()
        except psycopg.Error as exc:
            await conn.close()
            return str(translate(exc))
        self._probes[replica] = conn
        return row if row is not None else "no answer"

    async def _open_pool(self, replica: Replica[AsyncPool]) -> str | None:
        from psycopg_pool import PoolTimeout

        from shopdb.async_db import AsyncPool

        pool = await AsyncPool.open(Target(replica.url), self._pool_settings)
        try:
            await pool.driver.wait(timeout=self.settings.connect_timeout)
        except PoolTimeout:
            await pool.close()
            return "down: its pool could not connect"
        replica.pool = pool
        return None

    async def _close_pool(self, replica: Replica[AsyncPool]) -> None:
        pool, replica.pool = replica.pool, None
        if pool is not None:
            await pool.close()

    async def close(self) -> None:
        """Stop probing; close every replica's pool and the probe's connections."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        async with self._round:
            for replica in self.replicas:
                replica.usable, replica.problem = False, "closed"
                await self._close_pool(replica)
            for conn in self._probes.values():
                await conn.close()
            self._probes.clear()
