"""``shopdb import products`` and ``shopdb seed``: bulk data through COPY."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from shopdb.cli.context import state
from shopdb.cli.output import duration

if TYPE_CHECKING:
    import psycopg

    from shopdb.bulk import Format
    from shopdb.errors import ImportFailed


@contextmanager
def database_connection(application: str) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to the target database, closed on exit."""
    import psycopg

    conn = _direct_connection(application)
    if conn is None:
        from shopdb.connect import libpq_url
        from shopdb.errors import translating

        target = state().database()
        with translating:
            conn = psycopg.connect(libpq_url(target.url), application_name=application)
    with conn:
        yield conn


def _direct_connection(application: str) -> psycopg.Connection[Any] | None:
    """A connection made straight from a URL given on the command line or in
    DATABASE_URL, or None to take the regular way.

    The regular way loads pydantic and SQLAlchemy first, a third of a second
    that counts against a bulk load; it is still the way when this one fails,
    since it is the one that says what went wrong.
    """
    import psycopg

    url = state().database_url or os.environ.get("DATABASE_URL", "")
    if not url.strip().startswith(("postgres://", "postgresql://")):
        return None
    try:
        return psycopg.connect(url.strip(), application_name=application, connect_timeout=2)
    except psycopg.Error:
        return None


@click.group(
    "import",
    epilog="""\b
Example:
  shopdb import products products.csv
""",
)
def import_group() -> None:
    """Load rows from files, all or nothing."""


@import_group.command(
    "products",
    epilog="""\b
Examples:
  shopdb import products catalog.csv
  shopdb import products catalog.jsonl
  shopdb import products export.txt --format csv

\b
CSV has a header row naming its columns, in any order: name, price,
inventory_count, and optionally description (an empty cell is NULL).
JSON Lines has one object per line with those keys.
""",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "jsonl"]),
    help="The file's format; default from its extension (.csv, .jsonl, .ndjson).",
)
def import_products_command(file: Path, file_format: str | None) -> None:
    """Insert every product in FILE in one transaction, or none if any row is bad.

    Every bad row is reported by line and field (the first 20, and how many
    more); nothing is imported unless every row is valid.
    """
    from shopdb.bulk import detect_format, import_products
    from shopdb.errors import ImportFailed

    kind = detect_format(file) if file_format is None else cast("Format", file_format)
    started = time.perf_counter()
    with database_connection("shopdb import") as conn, _progress(file.stat().st_size) as advance:
        try:
            rows = import_products(conn, file, format=kind, progress=advance)
        except ImportFailed as failed:
            _report(failed)
            raise click.exceptions.Exit(2) from None
    plural = "s" if rows != 1 else ""
    click.echo(f"imported {rows} product{plural} in {duration(time.perf_counter() - started)}")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar by bytes on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
        yield bar.update


def _report(failed: ImportFailed) -> None:
    for problem in failed.problems:
        click.echo(f"Error: {problem}", err=True)
    shown = len(failed.problems)
    rest = f" ({failed.count - shown} more not shown)" if failed.count > shown else ""
    plural = "s" if failed.count != 1 else ""
    click.echo(f"Error: {failed.count} problem{plural}{rest}; nothing was imported", err=True)


@click.command(
    "seed",
    epilog="""\b
Examples:
  shopdb seed                                    10000 products, 1000 users, 1000 carts
  shopdb seed --products 100000 --seed 42
  shopdb database reset --yes && shopdb seed     start again from empty

\b
Every seeded user's password is shopdb-demo (log in as user0001).
""",
)
@click.option("--products", default=10_000, show_default=True, type=click.IntRange(min=0))
@click.option("--users", default=1_000, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--carts",
    default=1_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Cart i (from 0) belongs to user (i mod users) + 1 and holds 1 to 4 products; "
    "each user's newest cart is open, the older ones closed.",
)
@click.option(
    "--seed",
    "seed_value",
    default=0,
    show_default=True,
    type=int,
    help="The same seed gives the same rows.",
)
def seed_command(products: int, users: int, carts: int, seed_value: int) -> None:
    """Fill an empty database with deterministic sample data.

    Refuses a database whose tables hold any row (run `shopdb database reset
    --yes` first). Everything goes in through COPY, in one transaction.
    """
    from shopdb.seeding import DEMO_PASSWORD, seed_database

    started = time.perf_counter()
    with database_connection("shopdb seed") as conn:
        counts = seed_database(conn, products=products, users=users, carts=carts, seed=seed_value)
    click.echo(
        f"seeded {counts.products} products, {counts.users} users, {counts.carts} carts "
        f"and {counts.cart_items} cart items in {duration(time.perf_counter() - started)}"
    )
    if counts.users:
        click.echo(f"every user's password is {DEMO_PASSWORD!r} (log in as user0001)")


def register(cli: click.Group) -> None:
    """Add these commands to the root group."""
    cli.add_command(import_group)
    cli.add_command(seed_command)
