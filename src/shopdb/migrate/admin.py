"""Server-level operations: creating and dropping the database itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shopdb.connect import libpq_url
from shopdb.errors import translating

if TYPE_CHECKING:
    import psycopg
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
    """Create or update a login role that may do what the Store does, and nothing more.

    Everything the role held on shopdb's tables, sequences and login functions
    is revoked, then exactly :data:`shopdb.migrate.privileges.APP_GRANTS` are granted
    (column by column where the Store needs only some columns): it cannot read
    ``users.password_hash`` (logins go through ``SECURITY DEFINER``
    functions), delete orders, lines or adjustments, or change an order's
    total. It may not create, alter or drop anything (it owns nothing, and
    CREATE on schema ``public`` is revoked from PUBLIC, as PostgreSQL 15 does
    by default). Its sessions get shopdb's timeouts and UTC as role defaults,
    so they apply even through PgBouncer, which refuses connection options.
    Grants on an application's own tables are left alone. Refuses a superuser
    or a role that owns the database.
    """
    import psycopg
    from psycopg import sql

    from shopdb.errors import ConfigurationError

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
        for setup in (
            "GRANT CONNECT ON DATABASE {db} TO {role}",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {role}",
        ):
            conn.execute(sql.SQL(setup).format(db=database, role=name))
        for statement in _revocations(conn, name) + _grants(conn, name):
            conn.execute(statement)
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


def _revocations(conn: psycopg.Connection[Any], role: sql.Identifier) -> list[sql.Composed]:
    """REVOKE ALL on each of shopdb's tables, sequences and login functions that exists."""
    from psycopg import sql

    from shopdb.migrate.privileges import APP_GRANTS, REVOKED_SEQUENCES, REVOKED_TABLES

    functions = [g.on for g in APP_GRANTS if g.kind == "function"]
    functions.append("shopdb_login_key(text,text)")
    found = []
    for kind, names, lookup in (
        ("TABLE", REVOKED_TABLES, "to_regclass"),
        ("SEQUENCE", REVOKED_SEQUENCES, "to_regclass"),
        ("FUNCTION", functions, "to_regprocedure"),
    ):
        for obj in names:
            exists = conn.execute(
                sql.SQL("SELECT {}(%s) IS NOT NULL").format(sql.SQL(lookup)), (obj,)
            ).fetchone()
            if exists and exists[0]:
                found.append(
                    sql.SQL("REVOKE ALL ON {} {} FROM {}").format(
                        sql.SQL(kind), _object(kind, obj), role
                    )
                )
    return found


def _grants(conn: psycopg.Connection[Any], role: sql.Identifier) -> list[sql.Composed]:
    """:data:`~shopdb.migrate.privileges.APP_GRANTS` as statements."""
    from psycopg import sql

    from shopdb.migrate.privileges import APP_GRANTS

    statements = []
    for grant in APP_GRANTS:
        columns = (
            sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, grant.columns)))
            if grant.columns
            else sql.SQL("")
        )
        kind = grant.kind.upper()
        statements.append(
            sql.SQL("GRANT {}{} ON {} {} TO {}").format(
                sql.SQL(grant.privilege), columns, sql.SQL(kind), _object(kind, grant.on), role
            )
        )
    return statements


def _object(kind: str, name: str) -> sql.Composable:
    """A table or sequence name as an identifier; a function signature as written (ours)."""
    from psycopg import sql

    if kind == "FUNCTION":
        return sql.SQL(name)
    return sql.Identifier(name)
