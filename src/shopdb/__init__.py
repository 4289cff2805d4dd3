"""shopdb: the data layer of an e-commerce API on PostgreSQL.

Public names are imported lazily, so ``import shopdb`` (and the CLI's
``--help``) costs nothing and nothing connects at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "establish_connection_pool": "shopdb.db.pool",
    "Pool": "shopdb.db.pool",
    "DbConnection": "shopdb.db.pool",
    "establish_async_pool": "shopdb.db.pool_async",
    "AsyncPool": "shopdb.db.pool_async",
    "AsyncStore": "shopdb.store",
    "Settings": "shopdb.config",
    "load_settings": "shopdb.config",
    "errors": "shopdb.errors",
    "Store": "shopdb.store",
}

__all__ = [
    "AsyncPool",
    "AsyncStore",
    "DbConnection",
    "Pool",
    "Settings",
    "Store",
    "errors",
    "establish_async_pool",
    "establish_connection_pool",
    "load_settings",
]

if TYPE_CHECKING:
    from shopdb import errors
    from shopdb.config import Settings, load_settings
    from shopdb.db.pool import DbConnection, Pool, establish_connection_pool
    from shopdb.db.pool_async import AsyncPool, establish_async_pool
    from shopdb.store import AsyncStore, Store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shopdb' has no attribute {name!r}")
    import importlib

    imported = importlib.import_module(module)
    return imported if module.endswith(f".{name}") else getattr(imported, name)
