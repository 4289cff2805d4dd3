"""Connections and pools: the seed's ``config/db.rs``, sync and async.

The layer every query goes through, in the order a connection is made:

- :mod:`shopdb.db.connections`: how one connection is opened (autocommit,
  timeouts, ``TimeZone=UTC``, prepared statements) and how a pool is sized;
  the :class:`~shopdb.db.connections.Healer` that drains a pool once per burst
  of dead connections;
- :mod:`shopdb.db.pool_async` (:class:`AsyncPool`, :func:`establish_async_pool`)
  and :mod:`shopdb.db.pool` (:class:`Pool`, :func:`establish_connection_pool`),
  the second generated from the first by ``tools/async_to_sync.py``;
- :mod:`shopdb.db.routing` (which replica may serve a read, sans I/O) and the
  replica pools it steers, :mod:`shopdb.db.replicas_async` and its generated
  twin :mod:`shopdb.db.replicas`.

Where a connection goes (URL, ``.env``, the embedded server) is decided one
layer down, in :mod:`shopdb.connect`. The names below are imported lazily, so
``import shopdb.db.routing`` loads no pool, SQLAlchemy or Store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AsyncDriverConnection": "shopdb.db.pool_async",
    "AsyncPool": "shopdb.db.pool_async",
    "establish_async_pool": "shopdb.db.pool_async",
    "DbConnection": "shopdb.db.pool",
    "DriverConnection": "shopdb.db.pool",
    "Pool": "shopdb.db.pool",
    "establish_connection_pool": "shopdb.db.pool",
    "PoolStatus": "shopdb.db.connections",
}

__all__ = [
    "AsyncDriverConnection",
    "AsyncPool",
    "DbConnection",
    "DriverConnection",
    "Pool",
    "PoolStatus",
    "establish_async_pool",
    "establish_connection_pool",
]

if TYPE_CHECKING:
    from shopdb.db.connections import PoolStatus
    from shopdb.db.pool import DbConnection, DriverConnection, Pool, establish_connection_pool
    from shopdb.db.pool_async import AsyncDriverConnection, AsyncPool, establish_async_pool


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shopdb.db' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
