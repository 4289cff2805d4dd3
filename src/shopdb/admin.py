"""Server-level operations: creating and dropping the database itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopdb.connect import libpq_url
from shopdb.errors import translate

if TYPE_CHECKING:
    from psycopg import sql

    from shopdb.config import Settings
    from shopdb.connect import Target


def create_database(target: Target, settings: Settings) -> None:
    """``CREATE DATABASE`` for the target's database, through the maintenance database."""
    from psycopg import sql

    _maintenance(target, settings, sql.SQL("CREATE DATABASE {}").format(_name(target)))


def drop_database(target: Target, settings: Settings) -> None:
    """``DROP DATABASE ... WITH (FORCE)``: ends other sessions on it first."""
    from psycopg import sql

    _maintenance(
        target,
        settings,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_name(target)),
    )


def _name(target: Target) -> sql.Identifier:
    from psycopg import sql

    return sql.Identifier(target.database)


def _maintenance(target: Target, settings: Settings, statement: sql.Composed) -> None:
    import psycopg

    try:
        with psycopg.connect(
            libpq_url(target.url, "postgres"),
            autocommit=True,
            connect_timeout=int(settings.connect_timeout),
        ) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise translate(exc) from None
