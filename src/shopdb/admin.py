"""Server-level operations: creating and dropping the database itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopdb.connect import libpq_url
from shopdb.errors import translating

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

    with (
        translating,
        psycopg.connect(
            libpq_url(target.url, "postgres"),
            autocommit=True,
            connect_timeout=int(settings.connect_timeout),
        ) as conn,
    ):
        conn.execute(statement)


def grant_app_role(
    target: Target, settings: Settings, role: str, password: str | None = None
) -> None:
    """Create or update a login role that may use shopdb's tables and nothing more.

    The role may read and write shopdb's tables and use their sequences; it
    may not create, alter or drop anything (it owns nothing, and CREATE on
    schema ``public`` is revoked from PUBLIC, as PostgreSQL 15 does by
    default). Its sessions get shopdb's timeouts and UTC as role defaults, so
    they apply even through PgBouncer, which refuses connection options.
    Refuses a superuser or a role that owns the database.
    """
    import psycopg
    from psycopg import sql

    from shopdb.errors import ConfigurationError
    from shopdb.schema import TABLES

    name = sql.Identifier(role)
    database = sql.Identifier(target.database)
    with (
        translating,
        psycopg.connect(
            libpq_url(target.url),
            autocommit=True,
            connect_timeout=int(settings.connect_timeout),
        ) as conn,
        conn.transaction(),
    ):
        row = conn.execute(
            "SELECT rolsuper, pg_get_userbyid(d.datdba) = r.rolname FROM pg_roles r, "
            "pg_database d WHERE r.rolname = %s AND d.datname = current_database()",
            (role,),
        ).fetchone()
        if row is not None and (row[0] or row[1]):
            raise ConfigurationError(
                f"role {role!r} is a superuser or owns the database; "
                "the app role must be a dedicated role"
            )
        verb = "CREATE" if row is None else "ALTER"
        login = sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
            sql.SQL(verb), name
        )
        if password is not None:
            login += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        conn.execute(login)
        tables = sql.SQL(", ").join(sql.Identifier(t.name) for t in TABLES)
        for statement in (
            "GRANT CONNECT ON DATABASE {db} TO {role}",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {role}",
            # What the pool's start-up check reads (shopdb.schema_check): read only.
            "GRANT SELECT ON alembic_version, shopdb_migrations TO {role}",
        ):
            conn.execute(sql.SQL(statement).format(db=database, role=name, tables=tables))
        for table in TABLES:
            conn.execute(
                sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
                    sql.Identifier(f"{table.name}_id_seq"), name
                )
            )
        defaults = {
            "statement_timeout": f"{int(settings.statement_timeout * 1000)}ms",
            "idle_in_transaction_session_timeout": (
                f"{int(settings.idle_in_transaction_timeout * 1000)}ms"
            ),
            "TimeZone": "UTC",
        }
        for setting, value in defaults.items():
            conn.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                    name, database, sql.Identifier(setting), sql.Literal(value)
                )
            )
