"""Alembic environment for shopdb's migrations and the application's.

Driven by :mod:`shopdb.migrate`, and by any tool that drives Alembic itself
(pytest-alembic, an ``alembic`` script) with a config from
:func:`shopdb.migrate.sources.alembic_config`. ``config.attributes`` may hold:

``connection``       a SQLAlchemy Connection, or an Engine to connect with
                     (else ``sqlalchemy.url``, else ``DATABASE_URL``)
``settings``         shopdb settings (else read from the environment)
``target_metadata``  what autogenerate compares (else shopdb's tables and the
                     application's, ``SHOPDB_APP_METADATA``)
``include_name``     Alembic's filter (else: only the tables of that metadata)
``url``, ``output_buffer``  for ``--sql``

Every migration runs in its own transaction. Before any, the session
settings of :mod:`shopdb.migrate.lock_policy` are SET, and ``--sql`` prints them.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from shopdb.config import load_settings
from shopdb.migrate.lock_policy import LockPolicy
from shopdb.migrate.sources import include_tables, target_metadata
from shopdb.migrate.state import run_state

config = context.config
run = run_state(config.attributes)
settings = run.settings or load_settings()
policy = run.lock_policy = LockPolicy.from_settings(settings)
metadata = run.target_metadata or target_metadata(settings)
metadatas = list(metadata) if isinstance(metadata, list | tuple) else [metadata]
options: dict[str, Any] = {
    "target_metadata": metadata,
    "transaction_per_migration": True,
    "compare_type": True,
    "compare_server_default": True,
    "include_name": run.include_name or include_tables(metadatas),
    "on_version_apply": run.on_version_apply,
}


def run_offline() -> None:
    """Print the SQL (``--sql``)."""
    context.configure(
        url=run.url or config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        output_buffer=run.output_buffer,
        **options,
    )
    for statement in policy.session_statements():
        context.execute(statement)
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    """Run the migrations on ``connection``."""
    if not connection.in_transaction():
        for statement in policy.session_statements():
            connection.exec_driver_sql(statement)
        # SET outlives the transaction; ending it leaves Alembic free to run
        # one transaction per migration.
        connection.commit()
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


def connectable() -> Any:
    """The Connection or Engine to migrate with."""
    given = run.connection
    if given is None:
        # Alembic's cookbook shares a connection as config.attributes["connection"]
        # ("Sharing a Connection across one or more programmatic migration
        # commands"); tools such as pytest-alembic hand theirs over that way.
        given = config.attributes.get("connection")
    if given is not None:
        return given
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        from shopdb.connect import resolve_target

        return create_engine(resolve_target(None, settings).url.sqlalchemy(), poolclass=NullPool)
    return create_engine(url, poolclass=NullPool)


if context.is_offline_mode():
    run_offline()
else:
    found = connectable()
    if isinstance(found, Connection):
        run_online(found)
    else:
        with found.connect() as connection:
            run_online(connection)
            # Alembic commits each migration; commit what a caller's hooks left open.
            connection.commit()
