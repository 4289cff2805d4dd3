"""``shopdb user staff|customer|show LOGIN``: who may change the catalog, set by an operator.

The only ways to make staff are this command and ``Store.set_role``: a
registration always makes a customer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from shopdb.cli.data_commands import database_connection
from shopdb.cli.output import table, when

if TYPE_CHECKING:
    import psycopg

    from shopdb.schemas import UserRead

_EPILOG = """\b
Examples:
  shopdb user staff alice            alice may now change the catalog
  shopdb user customer alice         and now she may not
  shopdb user show alice@example.com who alice is, and her role

\b
LOGIN is a username or an email, found as a login finds it: in any case,
and a look-alike spelling of a username finds its account.
"""


@click.group("user", epilog=_EPILOG)
def user_group() -> None:
    """Look a user up, and make them staff (who may change the catalog) or a customer."""


@user_group.command("staff", epilog=_EPILOG)
@click.argument("login")
def staff(login: str) -> None:
    """Make the user LOGIN staff: they may add, change and delete products."""
    _set_role(login, "staff")


@user_group.command("customer", epilog=_EPILOG)
@click.argument("login")
def customer(login: str) -> None:
    """Make the user LOGIN a customer again (every user starts as one)."""
    _set_role(login, "customer")


@user_group.command("show", epilog=_EPILOG)
@click.argument("login")
def show(login: str) -> None:
    """Show the user LOGIN: id, username, email, role, when they registered."""
    with database_connection("shopdb user") as conn:
        found = _find(conn, login)
    rows = [
        ("id", str(found.id)),
        ("username", found.username),
        ("email", found.email),
        ("role", found.role),
        ("registered", when(found.created_at)),
    ]
    for line in table(rows):
        click.echo(line)


def _set_role(login: str, role: str) -> None:
    from shopdb.store import Store

    with database_connection("shopdb user") as conn:
        found = _find(conn, login)
        if found.role == role:
            click.echo(f"{found.username} (user {found.id}) is {role} already")
            return
        changed = Store.bound(conn).set_role(found.id, role)
    click.echo(f"{changed.username} (user {changed.id}) is {role} now")


def _find(conn: psycopg.Connection[Any], login: str) -> UserRead:
    from shopdb.errors import NotFound
    from shopdb.store import Store

    try:
        return Store.bound(conn).find_user(login)
    except NotFound:
        raise NotFound("user", None, f"no user has the username or email {login!r}") from None


def register(cli: click.Group) -> None:
    """Add these commands to the root group."""
    cli.add_command(user_group)
