"""One migration run at a time: a PostgreSQL advisory lock on a connection of its own.

Every command that changes the schema holds it; a second process waits (at
most ``SHOPDB_MIGRATION_LOCK_WAIT``), then finds nothing pending. It is a
session lock, so migrations must reach PostgreSQL directly, not through
PgBouncer in transaction mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from shopdb.connect import libpq_url, wait_for_database
from shopdb.errors import MigrationLockTimeout

if TYPE_CHECKING:
    from shopdb.config import Settings
    from shopdb.connect import Target

#: Advisory lock key: "shopdb" in ASCII, then 1 for migrations.
LOCK_KEY = 0x73686F7064620001


@contextmanager
def hold(target: Target, settings: Settings) -> Iterator[None]:
    """Hold the migration lock for the ``with`` block."""
    import psycopg

    wait_for_database(target, settings)
    deadline = time.monotonic() + settings.migration_lock_wait
    with psycopg.connect(libpq_url(target.url), autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if row and row[0]:
                break
            if time.monotonic() >= deadline:
                raise MigrationLockTimeout(
                    "another process kept the migration lock for more than "
                    f"{settings.migration_lock_wait:g} s "
                    "(raise SHOPDB_MIGRATION_LOCK_WAIT to wait longer)"
                )
            time.sleep(0.1)
        try:
            yield
        finally:
            # Closing the connection would release it too; say so explicitly.
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
