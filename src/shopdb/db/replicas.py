# GENERATED from shopdb/db/replicas_async.py by tools/async_to_sync.py: edit that, not this.
"""A pool's streaming replicas: their pools, and the probe that watches them.

Written once, async; :mod:`shopdb.db.replicas` is generated from it by
``tools/async_to_sync.py``. :class:`AsyncReplicas` (``Replicas``) is the
pool's :class:`~shopdb.db.routing.Router` (the rules, sans I/O) plus its
I/O: the probe runs in a task on the pool's event loop (sync: in a thread of
its own, :mod:`shopdb.db.concurrency`). The pool builds it when
``SHOPDB_REPLICA_URLS`` lists replicas; with none there is no such object,
no thread, and nothing on the Store's path but one ``is None`` test.

A probe round, every ``replica_probe_interval`` seconds (and once in
:meth:`AsyncReplicas.start`, before the pool is handed out, so routing
starts informed):

1. samples the primary's WAL position, on a connection of the probe's own;
2. asks each replica whether it is still a standby and how far it has
   replayed (:data:`~shopdb.db.routing.REPLICA_PROBE`), and judges it;
3. opens the pool of a replica that came (back) up, and waits for its
   connections before reads go there, so no read waits on a reconnection;
   closes the pool of one that is down, so its pool does not retry a dead
   server in the background.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from shopdb.config import replica_urls
from shopdb.connect import Target, libpq_url
from shopdb.db.concurrency import Lock, Repeating
from shopdb.db.connections import connection_kwargs
from shopdb.db.routing import (
    PRIMARY_PROBE,
    REPLICA_PROBE,
    Replica,
    Router,
    RoutingStats,
    replica_settings,
)
from shopdb.errors import translate

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.config import Settings
    from shopdb.db.pool import Pool

log = logging.getLogger("shopdb.db.routing")

#: What the probe's connections are called in ``pg_stat_activity``.
PROBE_NAME = "shopdb probe"


class Replicas(Router["Pool"]):
    """The replicas of a pool (``pool.replicas``), probed in the background.

    :meth:`stats` says where operations went and what each replica is
    doing; :meth:`probe` runs a probe round now. Closed with the pool.
    """

    def __init__(self, primary: Pool, settings: Settings) -> None:
        """Replicas from ``settings.replica_urls``; :meth:`start` starts probing them."""
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
        self._round = Lock()
        self._closed = False
        self._repeating = Repeating(
            settings.replica_probe_interval, self._tick, name="shopdb-replica-probe"
        )

    def start(self) -> None:
        """Probe once, then every ``replica_probe_interval`` seconds in the background."""
        self.probe()
        self._repeating.start()

    def _tick(self) -> None:
        try:
            self.probe()
        except Exception:  # a probe must never die: log it, and probe again later
            log.exception("replica probe round failed")

    def probe(self) -> RoutingStats:
        """Probe the primary and every replica now, and return the stats that result."""
        with self._round:
            if not self._closed:
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
                row = (kept.execute(sql)).fetchone()
                self._probes[replica] = kept
                return row if row is not None else "no answer"
            kept.close()
        url = self.primary.target.url if replica is None else replica.url
        try:
            conn = psycopg.Connection.connect(libpq_url(url), **self._connect)
        except psycopg.Error as exc:
            return str(translate(exc))
        try:
            row = (conn.execute(sql)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            return str(translate(exc))
        self._probes[replica] = conn
        return row if row is not None else "no answer"

    def _open_pool(self, replica: Replica[Pool]) -> str | None:
        from psycopg_pool import PoolTimeout

        # The primary's own class: a replica's pool is the same kind of pool.
        pool = type(self.primary).open(Target(replica.url), self._pool_settings)
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
        self._closed = True
        self._repeating.stop()
        with self._round:
            for replica in self.replicas:
                replica.usable, replica.problem = False, "closed"
                self._close_pool(replica)
            for conn in self._probes.values():
                conn.close()
            self._probes.clear()
