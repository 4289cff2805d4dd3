"""Table ``shopdb_migrations``: which file was applied, when, with which checksum.

Beside Alembic's ``alembic_version`` (which holds only the heads), it keeps a
row per applied migration, shopdb's and the application's, so ``check`` can
tell an applied migration whose file was edited afterwards. Rows are written
inside the migration's own transaction, and printed by ``--sql`` like
everything else that runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from alembic.runtime.migration import MigrationContext

    from shopdb.migrate.graph import Migration

HISTORY_TABLE = "shopdb_migrations"
#: Alembic's table of the applied heads.
VERSION_TABLE = "alembic_version"
#: The heads, as Alembic reads them.
HEADS = f"SELECT version_num FROM {VERSION_TABLE}"

CREATE = f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    revision VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    checksum VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


def heads(conn: psycopg.Connection[Any]) -> list[str]:
    """What ``alembic_version`` holds (empty before the first run)."""
    if not _exists(conn, VERSION_TABLE):
        return []
    return [row[0] for row in conn.execute(HEADS)]


def read(conn: psycopg.Connection[Any]) -> dict[str, tuple[datetime, str]]:
    """``revision -> (applied_at, checksum)`` for every row (empty before the first run)."""
    if not _exists(conn, HISTORY_TABLE):
        return {}
    rows = conn.execute(f"SELECT revision, applied_at, checksum FROM {HISTORY_TABLE}")
    return {row[0]: (row[1], row[2]) for row in rows}


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    """Whether ``table`` is on the search path (as Alembic looks for its table)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def record(context: MigrationContext, migration: Migration, *, applied: bool) -> None:
    """Add (or, when reverted, remove) the migration's row, in the current transaction."""
    from sqlalchemy import text

    if applied:
        statement = text(
            f"INSERT INTO {HISTORY_TABLE} (revision, name, checksum) "
            "VALUES (:revision, :name, :checksum) ON CONFLICT (revision) DO UPDATE "
            "SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, applied_at = now()"
        ).bindparams(revision=migration.revision, name=migration.name, checksum=migration.checksum)
    else:
        statement = text(f"DELETE FROM {HISTORY_TABLE} WHERE revision = :revision").bindparams(
            revision=migration.revision
        )
    context.execute(statement)
