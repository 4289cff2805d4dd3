"""``shopdb database ...``, ``shopdb print-schema`` and ``shopdb check``."""

from __future__ import annotations

import sys

import click

from shopdb.cli.context import state


@click.group(
    epilog="""\b
Examples:
  shopdb database url
  shopdb database reset --yes
"""
)
def database() -> None:
    """Reset, drop, or show the database in use."""


def _confirm_destruction(action: str, yes: bool) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given."""
    if yes:
        return
    name = state().target().database
    if not sys.stdin.isatty():
        click.echo(
            f"Error: refusing to {action} database {name!r} without --yes (no terminal to ask on)",
            err=True,
        )
        sys.exit(2)
    click.confirm(
        f"This will {action} database {name!r} and every row in it. Continue?", abort=True
    )


@database.command(
    epilog="""\b
Examples:
  shopdb database reset              asks first on a terminal
  shopdb database reset --yes        in scripts and CI
"""
)
@click.option("--yes", is_flag=True, help="Do not ask; required when there is no terminal.")
def reset(yes: bool) -> None:
    """Drop the database, create it again and apply every migration."""
    from shopdb.cli.migration_commands import apply_pending
    from shopdb.migrate.admin import create_database, drop_database

    st = state()
    target = st.target()
    if _exists():
        _confirm_destruction("drop and recreate", yes)
        drop_database(target, st.settings())
        create_database(target, st.settings())
        click.echo(f"recreated database {target.database}")
    else:
        create_database(target, st.settings())
        click.echo(f"database {target.database} did not exist; created it")
    st.database()
    apply_pending(st.migrator())


@database.command(
    epilog="""\b
Example:
  shopdb database drop --yes
"""
)
@click.option("--yes", is_flag=True, help="Do not ask; required when there is no terminal.")
def drop(yes: bool) -> None:
    """Drop the database (ending other sessions on it).

    A database that does not exist is said so, and exits 0: nothing is left to drop.
    """
    from shopdb.migrate.admin import drop_database

    st = state()
    if not _exists():
        click.echo(f"database {st.target().database} does not exist; nothing to drop")
        return
    _confirm_destruction("drop", yes)
    drop_database(st.target(), st.settings())
    click.echo(f"dropped database {st.target().database}")


def _exists() -> bool:
    """Whether the target database exists; any other connection problem is raised."""
    from shopdb.errors import DatabaseMissing

    try:
        state().database()
    except DatabaseMissing:
        return False
    return True


@database.command(
    epilog="""\b
Example:
  shopdb database url
"""
)
def url() -> None:
    """Print the database URL in use, with the password masked."""
    click.echo(state().target().masked)


@click.command(
    "print-schema",
    epilog="""\b
Example:
  shopdb print-schema > schema.sql
""",
)
def print_schema() -> None:
    """Print the live definition of shopdb's tables as DDL."""
    import psycopg

    from shopdb.connect import libpq_url
    from shopdb.migrate.print_schema import live_ddl
    from shopdb.schema import TABLES

    target = state().database()
    with psycopg.connect(libpq_url(target.url)) as conn:
        text = live_ddl(conn, [t.name for t in TABLES])
    if not text:
        click.echo("-- none of shopdb's tables exist yet (run `shopdb setup`)")
        return
    click.echo(text, nl=False)


@click.command(
    epilog="""\b
Examples:
  shopdb check                       exit 0: models, database and migrations agree
  shopdb check || exit 1             in CI, after `shopdb migration run`
"""
)
def check() -> None:
    """Compare models with the live database, and applied migrations with their files.

    Exits 1 with a readable list when anything drifted, 2 when it cannot tell.
    """
    from shopdb.cli.output import when
    from shopdb.migrate.drift import check as find_drift

    report = find_drift(state().migrator())
    if report.clean:
        click.echo("ok: models, database and migration files agree")
        return
    for line in report.schema:
        click.echo(f"drift    {line}")
    for m in report.edited:
        click.echo(
            f"edited   migration {m.revision} {m.name}: its file changed after it was applied "
            f"({when(m.applied_at)})"
        )
    for m in report.pending:
        click.echo(f"pending  migration {m.revision} {m.name} is not applied")
    raise click.exceptions.Exit(1)


def register(cli: click.Group) -> None:
    """Add these commands to the root group."""
    cli.add_command(database)
    cli.add_command(print_schema)
    cli.add_command(check)
