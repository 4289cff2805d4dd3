"""A :class:`~shopdb.db.Pool`'s streaming replicas: their pools, and the probe that watches them.

:class:`Replicas` is the pool's :class:`~shopdb.routing.Router` (the rules,
written once for both flavours) plus its I/O, written here for threads and
in :mod:`shopdb.async_replicas` for asyncio. The pool builds it when
``SHOPDB_REPLICA_URLS`` lists replicas; with none there is no such object,
no thread, and nothing on the Store's path but one ``is None`` test.

A probe round, every ``replica_probe_interval`` seconds in a thread of its
own (and once before the pool is handed out, so routing starts informed):

1. samples the primary's WAL position, on a connection of the probe's own;
2. asks each replica whether it is still a standby and how far it has
   replayed (:data:`~shopdb.routing.REPLICA_PROBE`), and judges it;
3. opens the pool of a replica that came (back) up, and waits for its
   connections before reads go there, so no read waits on a reconnection;
   closes the pool of one that is down, so its pool does not retry a dead
   server in the background.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from shopdb.config import replica_urls
from shopdb.connect import Target, libpq_url
from shopdb.errors import translate
from shopdb.pooling import connection_kwargs
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

    from shopdb.config import Settings
    from shopdb.db import Pool

log = logging.getLogger("shopdb.routing")

#: What the probe's connections are called in ``pg_stat_activity``.
PROBE_NAME = "shopdb probe"


class Replicas(Router["Pool"]):
    """The replicas of a :class:`~shopdb.db.Pool` (``pool.replicas``), probed in a thread.

    :meth:`stats` says where operations went and what each replica is
    doing; :meth:`probe` runs a probe round now. Closed with the pool.
    """

    def __init__(self, primary: Pool, settings: Settings) -> None:
        """Probe ``settings.replica_urls`` once, then every ``replica_probe_interval`` s."""
        super().__init__(primary, replica_urls(settings), settings.replica_max_lag)
        self.settings = settings
        self._pool_settings = replica_settings(settings)
        self._connect = {
            **connection_kwargs(settings),
            "application_name": PROBE_NAME,
            "prepare_threshold": None,
        }
        # The probe's own connections: the primary's under None, each replica's under it.
        self._probes: dict[Replica[Pool] | None, psycopg.Connection[TupleRow]] = {}
        self._round = threading.Lock()
        self._stop = threading.Event()
        self.probe()
        self._thread = threading.Thread(target=self._run, name="shopdb-replica-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.replica_probe_interval):
            try:
                self.probe()
            except Exception:  # a probe must never die: log it, and probe again later
                log.exception("replica probe round failed")

    def probe(self) -> RoutingStats:
        """Probe the primary and every replica now, and return the stats that result."""
        with self._round:
            if not self._stop.is_set():
                row = self._ask(None, PRIMARY_PROBE)
                self.observe_primary(time.monotonic(), row[0] if isinstance(row, tuple) else None)
                for replica in self.replicas:
                    self._probe(replica)
        return self.stats()

    def _probe(self, replica: Replica[Pool]) -> None:
        row = self._ask(replica, REPLICA_PROBE)
        if not isinstance(row, tuple):
            self._close_pool(replica)
            self.settle(replica, f"down: {row}")
            return
        problem = self.judge(replica, time.monotonic(), row)
        if problem is None and replica.pool is None:
            problem = self._open_pool(replica)
        self.settle(replica, problem)

    def _ask(self, replica: Replica[Pool] | None, sql: str) -> tuple[Any, ...] | str:
        """The row ``sql`` returns on the server, or why there is none."""
        import psycopg

        kept = self._probes.pop(replica, None)
        if kept is not None:  # from the last round; it may have died alone: then a new one
            with suppress(psycopg.Error):
                row = kept.execute(sql).fetchone()
                self._probes[replica] = kept
                return row if row is not None else "no answer"
            kept.close()
        url = self.primary.target.url if replica is None else replica.url
        try:
            conn = psycopg.connect(libpq_url(url), **self._connect)
        except psycopg.Error as exc:
            return str(translate(exc))
        try:
            row = conn.execute(sql).fetchone()
        except psycopg.Error as exc:
            conn.close()
            return str(translate(exc))
        self._probes[replica] = conn
        return row if row is not None else "no answer"

    def _open_pool(self, replica: Replica[Pool]) -> str | None:
        from psycopg_pool import PoolTimeout

        from shopdb.db import Pool

        pool = Pool(Target(replica.url), self._pool_settings)
        try:
            pool.driver.wait(timeout=self.settings.connect_timeout)
        except PoolTimeout:
            pool.close()
            return "down: its pool could not connect"
        replica.pool = pool
        return None

    def _close_pool(self, replica: Replica[Pool]) -> None:
        pool, replica.pool = replica.pool, None
        if pool is not None:
            pool.close()

    def close(self) -> None:
        """Stop probing; close every replica's pool and the probe's connections."""
        self._stop.set()
        self._thread.join()
        with self._round:
            for replica in self.replicas:
                replica.usable, replica.problem = False, "closed"
                self._close_pool(replica)
            for conn in self._probes.values():
                conn.close()
            self._probes.clear()
