"""The ``shopdb`` command: a thin layer over the library.

Every library error becomes one ``Error: ...`` line on stderr. Exit status:
0 done; 1 the answer is "no" (``migration pending`` found some, ``check``
found drift); 2 an error (no database, cannot connect, a failed migration,
bad input or usage); 130 interrupted. Modules are imported only by the
command that needs them, so ``shopdb --help`` starts at once.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from shopdb.cli.context import State
from shopdb.errors import ShopError


class ShopGroup(click.Group):
    """A click group that turns errors into one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ShopError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted", status=130)
        except Exception as exc:
            if os.environ.get("SHOPDB_DEBUG"):
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc} "
                "(this is a bug in shopdb; SHOPDB_DEBUG=1 shows where)"
            )


#: Exit status of every error (the README's table): 1 is kept for "pending" and "drift".
ERROR = 2


def _fail(message: str, status: int = ERROR) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(status)


@click.group(
    cls=ShopGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  shopdb setup                  create the database and apply migrations
  shopdb status                 which server, which database, which migrations
  shopdb --database-url postgres://app@db.internal/shop migration list
""",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="PostgreSQL URL; default DATABASE_URL from the environment or .env, "
    "else the embedded server.",
)
@click.option(
    "--app-migrations-dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Your application's migrations, applied on top of shopdb's; default "
    "SHOPDB_APP_MIGRATIONS_DIR.",
)
@click.option(
    "--migrations-dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="A patched copy of shopdb's own migrations, used instead of the packaged ones "
    "(your own migrations go in --app-migrations-dir).",
)
@click.version_option(package_name="shopdb")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    app_migrations_dir: str | None,
    migrations_dir: str | None,
) -> None:
    """shopdb: the data layer of an e-commerce API on PostgreSQL."""
    ctx.obj = State(
        database_url=database_url,
        migrations_dir=migrations_dir,
        app_migrations_dir=app_migrations_dir,
    )


def _register() -> None:
    from shopdb.cli import data_commands, database_commands, migration_commands, user_commands

    migration_commands.register(cli)
    database_commands.register(cli)
    data_commands.register(cli)
    user_commands.register(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="shopdb")
