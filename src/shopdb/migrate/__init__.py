"""The migrator: versioned, reversible migrations that are safe under traffic.

What the seed's ``diesel migration`` and ``embed_migrations!`` do, on Alembic:

- :mod:`shopdb.migrate.runner`: :class:`Migrator` and :func:`run_pending`:
  plan, apply and revert, one revision per transaction, under an advisory
  lock (:mod:`~shopdb.migrate.lock`), recorded with checksums in a history
  table (:mod:`~shopdb.migrate.history`);
- :mod:`~shopdb.migrate.sources` (where migration files come from: shopdb's
  own and the application's branch), :mod:`~shopdb.migrate.graph` (their
  order, heads, what is applied) and :mod:`~shopdb.migrate.files` (writing a
  new one);
- :mod:`~shopdb.migrate.lock_policy` and :mod:`shopdb.online_ddl`: DDL that
  waits briefly for its locks and retries, never queueing traffic behind it;
- inspection: :mod:`~shopdb.migrate.drift` (the database against the
  models), :mod:`~shopdb.migrate.print_schema` (the live DDL) and
  :mod:`~shopdb.migrate.check` (the start-up check of a pool);
- roles: :mod:`~shopdb.migrate.admin` (databases, the app role) and
  :mod:`~shopdb.migrate.privileges` (every grant, in one table).

The names below are imported lazily: ``import shopdb.migrate`` loads no Alembic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "HISTORY_TABLE",
    "LOCK_KEY",
    "Migration",
    "Migrator",
    "Step",
    "file_checksum",
    "migrator",
    "run_pending",
]

if TYPE_CHECKING:
    from shopdb.migrate.runner import (
        HISTORY_TABLE,
        LOCK_KEY,
        Migration,
        Migrator,
        Step,
        file_checksum,
        migrator,
        run_pending,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'shopdb.migrate' has no attribute {name!r}")
    from shopdb.migrate import runner

    return getattr(runner, name)
