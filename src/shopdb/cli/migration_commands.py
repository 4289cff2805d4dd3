"""``shopdb setup``, ``shopdb status`` and ``shopdb migration ...``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from shopdb.cli.context import state
from shopdb.cli.output import duration, table, when

if TYPE_CHECKING:
    from shopdb.migrate.runner import Migration, Migrator, Step


@click.command(
    epilog="""\b
Examples:
  shopdb setup
  DATABASE_URL=postgres://postgres@127.0.0.1/shop shopdb setup
  SHOPDB_APP_ROLE_PASSWORD=... shopdb setup --app-role shop_app
"""
)
@click.option(
    "--app-role",
    metavar="NAME",
    help="Also create (or update) a login role that may do what shopdb's Store does and "
    "nothing more: no reading password hashes, no deleting orders, no changing any "
    "schema (README, 'The app role'). Its password comes from "
    "SHOPDB_APP_ROLE_PASSWORD, or is asked for on a terminal.",
)
def setup(app_role: str | None) -> None:
    """Create the database if the server says it does not exist, then apply
    every pending migration (also on later runs)."""
    from shopdb.errors import DatabaseMissing
    from shopdb.migrate.admin import create_database

    st = state()
    target = st.target(create=True)
    try:
        st.database()
    except DatabaseMissing:
        create_database(target, st.settings())
        click.echo(f"created database {target.database}")
    apply_pending(st.migrator())
    if app_role is not None:
        _app_role(app_role)


def _app_role(role: str) -> None:
    import os
    import sys

    from shopdb.config import login_url
    from shopdb.migrate.admin import grant_app_role

    st = state()
    password = os.environ.get("SHOPDB_APP_ROLE_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = (
            click.prompt(
                f"password for {role} (empty: none)",
                hide_input=True,
                confirmation_prompt=True,
                default="",
                show_default=False,
            )
            or None
        )
    grant_app_role(st.target(), st.settings(), role, password)
    login = login_url(st.target().url, role, has_password=bool(password))
    click.echo(
        f"app role {role} may do what the Store does and nothing more "
        f"(README, 'The app role'); connect as {login}"
    )


@click.command(
    epilog="""\b
Example:
  shopdb status
"""
)
def status() -> None:
    """Show which server and database are in use, and the migrations applied and pending."""
    import psycopg

    from shopdb.connect import libpq_url

    st = state()
    target = st.database()
    with psycopg.connect(libpq_url(target.url)) as conn:
        version = conn.info.parameter_status("server_version") or "?"
    if target.embedded is not None:
        server = f"embedded PostgreSQL {version} in {target.embedded.directory}"
    else:
        server = f"PostgreSQL {version}"
    migrations = st.migrator().migrations()
    applied = [m for m in migrations if m.applied]
    pending = [m for m in migrations if not m.applied]
    rows = [
        ("server", server),
        ("database", target.database),
        ("url", target.masked),
        ("applied", f"{len(applied)} of {len(migrations)} migrations" + _latest(applied)),
        ("pending", ", ".join(f"{m.revision} {m.name}" for m in pending) or "none"),
    ]
    edited = [m for m in applied if m.edited]
    if edited:
        rows.append(("edited", ", ".join(f"{m.revision} {m.name}" for m in edited)))
    earlier = [m for m in applied if m.applied_earlier_version]
    if earlier:
        rows.append(
            (
                "note",
                ", ".join(f"{m.revision} {m.name}" for m in earlier)
                + " applied from an earlier version of the file (same schema)",
            )
        )
    app = st.settings().app_migrations_dir
    if app is not None:
        mine = sum(1 for m in migrations if m.source == "app")
        rows.append(("app", f"{mine} migration{'s' if mine != 1 else ''} in {app}"))
    for line in table(rows):
        click.echo(line)


def _latest(applied: list[Migration]) -> str:
    if not applied:
        return ""
    # The most recently applied (positions break ties and stand in for unknown times).
    last = max(
        enumerate(applied),
        key=lambda pair: (pair[1].applied_at is not None, pair[1].applied_at or 0, pair[0]),
    )[1]
    return f" (latest {last.revision} {last.name}, {when(last.applied_at)})"


@click.group(
    epilog="""\b
Examples:
  shopdb migration list
  shopdb migration run
  shopdb migration revert -n 2
"""
)
def migration() -> None:
    """Apply, revert, list and write migrations."""


@migration.command(
    "run",
    epilog="""\b
Examples:
  shopdb migration run
  shopdb migration run --sql > upgrade.sql
""",
)
@click.option("--sql", is_flag=True, help="Print the SQL that would run; run nothing.")
def run_cmd(sql: bool) -> None:
    """Apply pending migrations, each in its own transaction."""
    migrator = state().migrator()
    if sql:
        click.echo(migrator.sql("up"), nl=False)
        return
    apply_pending(migrator)


def apply_pending(migrator: Migrator) -> None:
    """Apply pending migrations, one line each, then a summary."""
    pending = migrator.pending()
    if not pending:
        total = len(migrator.scripts())
        click.echo(f"nothing to apply: all {total} migrations are applied")
        return
    steps = migrator.run(on_step=_printer(pending))
    click.echo(f"applied {len(steps)} migration{'s' if len(steps) != 1 else ''}; up to date")


def _printer(todo: list[Migration], total: int | None = None) -> Callable[[Step], None]:
    counter = [0]
    count = total or len(todo)
    # Columns as wide as this run's longest entries, so every line lines up.
    place = len(f"[{count}/{count}]")
    width = max((len(m.revision) for m in todo), default=0)
    names = max((len(m.name) for m in todo), default=0)

    def show(step: Step) -> None:
        counter[0] += 1
        verb = "applied " if step.direction == "up" else "reverted"
        click.echo(
            f"{f'[{counter[0]}/{count}]':<{place}} {verb} {step.migration.revision:<{width}} "
            f"{step.migration.name:<{names}}  {duration(step.seconds)}"
        )

    return show


def _count(count: int | None, everything: bool) -> int | None:
    if everything and count is not None:
        raise click.UsageError("give either -n/--count or --all, not both")
    if everything:
        return None
    return 1 if count is None else count


_count_option = click.option(
    "-n", "--count", type=click.IntRange(min=1), help="How many migrations (default 1)."
)
_all_option = click.option("--all", "everything", is_flag=True, help="Every applied migration.")


@migration.command(
    epilog="""\b
Examples:
  shopdb migration revert            the last migration
  shopdb migration revert -n 2       the last two
  shopdb migration revert --all --sql
""",
)
@_count_option
@_all_option
@click.option("--sql", is_flag=True, help="Print the SQL that would run; run nothing.")
def revert(count: int | None, everything: bool, sql: bool) -> None:
    """Revert the last applied migration(s), newest first."""
    n = _count(count, everything)
    migrator = state().migrator()
    if sql:
        click.echo(migrator.sql("down", n), nl=False)
        return
    applied = [m for m in migrator.migrations() if m.applied]
    if not applied:
        click.echo("nothing to revert: no migration is applied")
        return
    todo = len(applied) if n is None else min(n, len(applied))
    steps = migrator.revert(n, on_step=_printer(applied, todo))
    click.echo(f"reverted {len(steps)} migration{'s' if len(steps) != 1 else ''}")


@migration.command(
    epilog="""\b
Examples:
  shopdb migration redo              revert and re-apply the last migration
  shopdb migration redo --all
""",
)
@_count_option
@_all_option
def redo(count: int | None, everything: bool) -> None:
    """Revert the last migration(s), then apply them again."""
    n = _count(count, everything)
    migrator = state().migrator()
    applied = [m for m in migrator.migrations() if m.applied]
    if not applied:
        click.echo("nothing to redo: no migration is applied")
        return
    todo = len(applied) if n is None else min(n, len(applied))
    steps = migrator.redo(n, on_step=_printer(applied, 2 * todo))
    click.echo(f"redid {len(steps) // 2} migration{'s' if len(steps) != 2 else ''}")


@migration.command(
    "list",
    epilog="""\b
Examples:
  shopdb migration list
  shopdb migration list --json | jq '.[] | select(.applied | not)'
""",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def list_cmd(as_json: bool) -> None:
    """Every migration, applied or pending, with when it was applied."""
    migrations = state().migrator().migrations()
    if as_json:
        click.echo(json.dumps([_as_json(m) for m in migrations], indent=2))
        return
    rows = [("revision", "name", "applied")]
    for m in migrations:
        applied = when(m.applied_at) if m.applied else "pending"
        if m.edited:
            applied += "  (file edited since)"
        elif m.applied_earlier_version:
            applied += "  (from an earlier version of the file, same schema)"
        rows.append((m.revision, m.name, applied))
    for line in table(rows):
        click.echo(line)


def _as_json(m: Migration) -> dict[str, object]:
    return {
        "revision": m.revision,
        "name": m.name,
        "applied": m.applied,
        "applied_at": m.applied_at.isoformat() if m.applied_at else None,
        "checksum": m.checksum,
        "edited": m.edited,
        "applied_earlier_version": m.applied_earlier_version,
        "source": m.source,
    }


@migration.command(
    epilog="""\b
Example:
  shopdb migration pending || shopdb migration run
"""
)
def pending() -> None:
    """Say whether migrations are pending: exit 1 when some are, 0 when none, 2 when it
    cannot tell (no database, cannot connect)."""
    todo = state().migrator().pending()
    if not todo:
        click.echo("no pending migrations")
        return
    click.echo(f"{len(todo)} pending: " + ", ".join(f"{m.revision} {m.name}" for m in todo))
    raise click.exceptions.Exit(1)


@migration.command(
    epilog="""\b
Examples:
  SHOPDB_APP_MIGRATIONS_DIR=migrations shopdb migration generate add_reviews
  shopdb --app-migrations-dir migrations migration generate add_reviews --autogenerate
  shopdb --migrations-dir src/shopdb/migrations/versions migration generate add_sku
"""
)
@click.argument("name")
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Fill upgrade and downgrade from the difference between your models "
    "(SHOPDB_APP_METADATA) and the database, which must be up to date.",
)
def generate(name: str, autogenerate: bool) -> None:
    """Write a new migration file with upgrade() and downgrade().

    It goes into your application's directory (SHOPDB_APP_MIGRATIONS_DIR or
    --app-migrations-dir) as app_NNNN_NAME.py, on top of shopdb's migrations.
    Without --autogenerate no database is touched.
    """
    path = state().migrator(database=autogenerate).generate(name, autogenerate=autogenerate)
    click.echo(f"created {path}")


def register(cli: click.Group) -> None:
    """Add these commands to the root group."""
    cli.add_command(setup)
    cli.add_command(status)
    cli.add_command(migration)
