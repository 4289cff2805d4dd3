"""The start-up check: refuse to serve a database whose shopdb migrations are behind.

:func:`~shopdb.db.establish_connection_pool` and
:func:`~shopdb.db.establish_async_pool` run it on the pool's first
connection (unless ``SHOPDB_CHECK_SCHEMA=false``; the I/O is
:func:`shopdb.db.pool_async.check_schema_async`, the verdict is here): one query reads
``alembic_version``, and the same graph walk the migrator uses
(:func:`~shopdb.migrate.graph.applied_revisions`) says which of shopdb's
migrations are applied. Anything missing raises
:class:`~shopdb.errors.SchemaOutdated` naming the revisions, instead of a
``relation "products" does not exist`` at the first request.

Only shopdb's own migrations are required: they are what shopdb's queries
need. The application's branch (``SHOPDB_APP_MIGRATIONS_DIR``) is read when
set, so that its heads (which stand for the shopdb revisions they depend on)
can be placed, but its pending revisions are the application's business.
A head this process does not know (a newer shopdb wrote it, or the
application's directory is not set here) cannot be walked; the history table
then says what was applied. A role that may not read them (an app role made
before ``shopdb setup --app-role`` granted it) skips the check, with a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopdb.errors import SchemaOutdated
from shopdb.migrate import history
from shopdb.migrate.graph import applied_revisions

if TYPE_CHECKING:
    from shopdb.config import Settings
    from shopdb.migrate.graph import Migration

#: The one query of the check (the history table is read only for a head it cannot place).
HEADS = history.HEADS
RECORDED = f"SELECT revision FROM {history.HISTORY_TABLE}"


def missing(scripts: list[Migration], heads: list[str], recorded: set[str]) -> list[Migration]:
    """shopdb's migrations not applied in a database at ``heads`` (``recorded``: the history
    table's revisions, consulted only for heads not among ``scripts``)."""
    applied = applied_revisions(scripts, heads)
    known = {m.revision for m in scripts}
    if any(head not in known for head in heads):
        applied |= recorded
    return [m for m in scripts if m.source == "shopdb" and m.revision not in applied]


def scripts(settings: Settings) -> list[Migration]:
    """Every migration file, as the migrator reads them."""
    from shopdb.migrate.runner import Migrator

    return Migrator(None, settings).scripts()


def verdict(every: list[Migration], heads: list[str], recorded: set[str] | None) -> bool:
    """Raise :class:`SchemaOutdated` when shopdb's migrations are behind; False when the
    history table is needed to tell (``recorded`` is None), True when all is well."""
    known = {m.revision for m in every}
    if recorded is None and any(head not in known for head in heads):
        return False
    todo = missing(every, heads, recorded or set())
    if todo:
        own = sum(1 for m in every if m.source == "shopdb")
        raise SchemaOutdated([(m.revision, m.name) for m in todo], own)
    return True


def skipped() -> None:
    import logging

    logging.getLogger("shopdb").warning(
        "the schema check was skipped: this role may not read alembic_version "
        "(run `shopdb setup --app-role NAME` again to grant it, or set SHOPDB_CHECK_SCHEMA=false)"
    )
