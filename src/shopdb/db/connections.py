"""What the sync and the async pool share: how connections are opened, sized and healed.

Both pools are psycopg_pool's (``ConnectionPool`` and ``AsyncConnectionPool``):
the same driver, the same pool logic, sync and async. They are made with
``close_returns=True``, psycopg_pool's documented way to lend its connections
to SQLAlchemy (``NullPool`` with the pool's ``getconn`` as creator), so the
Store and SQLAlchemy sessions draw from one set of connections.

This module is the one place that decides how a connection is opened
(:func:`connection_kwargs`) and how a pool is sized and timed
(:func:`pool_kwargs`), and when the pool is drained after a connection died
(:class:`Healer`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shopdb.errors import PoolLimits

if TYPE_CHECKING:
    from shopdb.config import Settings

#: The name the pool and the server's pg_stat_activity know our connections by.
APPLICATION_NAME = "shopdb"
#: ``pool_recycle = -1`` (never): ten years is as good as never and stays a finite float.
_NEVER = 10 * 365 * 24 * 3600.0


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every connection shopdb opens for an application.

    Connections rest in autocommit mode, so a one-statement Store operation
    costs one round trip; the timeouts and the UTC time zone go in the startup
    packet unless ``startup_options`` is off (PgBouncer refuses them there).
    """
    options = [
        f"-c statement_timeout={int(settings.statement_timeout * 1000)}",
        "-c idle_in_transaction_session_timeout="
        f"{int(settings.idle_in_transaction_timeout * 1000)}",
        # created_at is TIMESTAMP WITHOUT TIME ZONE filled by CURRENT_TIMESTAMP:
        # pin the session to UTC so every stored time means the same instant.
        "-c TimeZone=UTC",
    ]
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": int(settings.connect_timeout),
        "application_name": APPLICATION_NAME,
        # None disables server-side prepared statements (PgBouncer < 1.21);
        # the Store asks for every statement to be prepared, which psycopg
        # ignores when this is None.
        "prepare_threshold": 5 if settings.prepared_statements else None,
    }
    if settings.startup_options:
        kwargs["options"] = " ".join(options)
    return kwargs


def pool_kwargs(settings: Settings) -> dict[str, Any]:
    """Sizing and timing arguments for a psycopg_pool pool, from ``settings``."""
    # Opened on demand up to pool_size (+ overflow), closed again after ten
    # idle minutes down to pool_min_size: a process that barely uses the
    # database does not hold pool_size connections of the server's limit.
    return {
        "min_size": min(settings.pool_min_size, settings.pool_size),
        "max_size": settings.pool_size + settings.max_overflow,
        "timeout": settings.pool_timeout,
        "max_lifetime": _NEVER if settings.pool_recycle < 0 else settings.pool_recycle,
        "close_returns": True,
        "name": APPLICATION_NAME,
        "open": False,
    }


def pool_limits(settings: Settings) -> PoolLimits:
    """The numbers a :class:`~shopdb.errors.PoolTimeout` message names."""
    return PoolLimits(settings.pool_timeout, settings.pool_size + settings.max_overflow)


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot of the pool's connections."""

    #: Connections open (idle or in use).
    size: int
    #: Idle in the pool.
    checked_in: int
    #: In use by a caller.
    checked_out: int
    #: Open beyond ``pool_size`` (up to ``max_overflow``).
    overflow: int
    #: Callers waiting for a connection.
    waiting: int


def status_from_stats(stats: dict[str, int]) -> PoolStatus:
    """A :class:`PoolStatus` from psycopg_pool's ``get_stats()``."""
    size = stats.get("pool_size", 0)
    idle = stats.get("pool_available", 0)
    return PoolStatus(
        size=size,
        checked_in=idle,
        checked_out=max(0, size - idle),
        overflow=max(0, size - stats.get("pool_min", 0)),
        waiting=stats.get("requests_waiting", 0),
    )


class Healer:
    """Decides when the pool should drop every connection after one was found dead.

    Connections die together (a restart, a failover, a terminated server):
    handing them out one failure at a time would fail one request per dead
    connection. So the first dead one drains the pool (psycopg_pool's
    ``drain()``: idle connections are replaced now, connections in use when
    they come back). Each connection is stamped with the drain generation it
    was born in; a dead connection born before the latest drain was already
    dealt with, so a burst of failures drains once, not once per failure.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._born: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def born(self, conn: object) -> None:
        """Note a new connection (the pool's ``configure`` callback calls this)."""
        self._born[conn] = self.generation

    def should_drain(self, conn: object | None) -> bool:
        """A connection died: drain the pool if nothing since its birth has."""
        with self._lock:
            if conn is not None and self._born.get(conn, self.generation) < self.generation:
                return False
            self.generation += 1
            return True
