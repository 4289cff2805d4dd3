"""Alembic environment for shopdb; driven by :mod:`shopdb.migrate`, not by alembic.ini.

Every migration runs in its own transaction, so a failure rolls back only the
migration that failed and leaves the ones before it applied.
"""

from __future__ import annotations

from alembic import context

from shopdb.schema import metadata

config = context.config
options = {
    "target_metadata": metadata,
    "transaction_per_migration": True,
    "compare_type": True,
    "compare_server_default": True,
    "include_name": config.attributes.get("include_name"),
    "on_version_apply": config.attributes.get("on_version_apply", ()),
}

if context.is_offline_mode():
    context.configure(
        url=config.attributes["url"],
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        output_buffer=config.attributes["output_buffer"],
        **options,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(connection=config.attributes["connection"], **options)
    with context.begin_transaction():
        context.run_migrations()
