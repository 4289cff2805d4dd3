"""Bulk import of products from CSV or JSON Lines, through PostgreSQL ``COPY``.

Every row is checked in Python by the rules the API applies, which the
database also enforces (:mod:`shopdb.limits`, whose bounds the CHECK
constraints of :mod:`shopdb.schema` are generated from), and
the file goes in as one transaction: all of it, or nothing when any row is
bad. Problems are reported by line and field, and checking goes on to the end
of the file so that one run lists them all.

CSV is the fast path. The file is read in chunks of about a megabyte that end
where a record ends. A chunk is checked as a whole: its shape by one regular
expression, its columns by C-level passes over lists of values. When it
passes, its original bytes go to ``COPY ... (FORMAT csv)`` untouched, so no
row is ever re-serialized; a thread sends them, so the client checks one chunk
while the server inserts the ones before. A chunk that fails those quick checks is checked again
row by row, which either finds it valid after all (a count written ``+7``, a
bidi mark in a description) or names each problem. Memory holds a few chunks,
whatever the size of the file.

::

    with psycopg.connect(url) as conn:
        rows = import_products(conn, "products.csv")
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from shopdb.bulk.common import (
    CHUNK_SIZE,
    COLUMNS,
    EXTENSIONS,
    MAX_PROBLEMS,
    MAX_RECORD,
    REQUIRED,
    Batch,
    Format,
    Invalid,
    Problems,
    Progress,
    ignore,
)
from shopdb.bulk.csv_source import open_csv
from shopdb.bulk.jsonl_source import open_jsonl
from shopdb.bulk.writer import BackgroundWriter
from shopdb.errors import ImportFailed, InvalidInput, ShopError, translating

if TYPE_CHECKING:
    import os

    from psycopg import sql

__all__ = [
    "CHUNK_SIZE",
    "COLUMNS",
    "EXTENSIONS",
    "MAX_PROBLEMS",
    "MAX_RECORD",
    "REQUIRED",
    "BackgroundWriter",
    "Format",
    "Progress",
    "detect_format",
    "import_products",
    "require_tables",
]


def detect_format(path: str | os.PathLike[str]) -> Format:
    """The format a file's extension names: ``.csv``, or ``.jsonl``/``.ndjson``."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise InvalidInput(
            "format",
            f"cannot tell the format of {Path(path).name!r} from its extension "
            "(.csv, .jsonl or .ndjson); name it: csv or jsonl (--format)",
        )
    return EXTENSIONS[suffix]


def import_products(
    conn: psycopg.Connection[Any],
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    progress: Progress | None = None,
) -> int:
    """Insert every product in the file at ``path``, or none of them; return how many.

    CSV has a header naming its columns (``name``, ``price``,
    ``inventory_count`` and optionally ``description``, in any order); an
    empty description is NULL. JSON Lines has one object per line with those
    keys. ``format`` defaults to what the extension says.

    The rows go in through ``COPY`` in one transaction, committed at the end
    (a savepoint if ``conn`` is already in a transaction, which the caller
    then commits). Raises :class:`~shopdb.errors.ImportFailed`, listing the
    first :data:`MAX_PROBLEMS` problems by line and field, when any row is
    bad; the file is read to its end first so that the list is complete.
    """
    kind = format or detect_format(path)
    if kind not in ("csv", "jsonl"):
        raise InvalidInput("format", f"must be csv or jsonl, not {kind!r}")
    require_tables(conn, "products")
    try:
        file = Path(path).open("rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise InvalidInput("file", f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    # Values longer than the csv module's default limit (128 Ki characters)
    # are valid for PostgreSQL; raise the process-wide limit, never lower it.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))
    problems = Problems()
    with file:
        source = open_csv if kind == "csv" else open_jsonl
        statement, batches = source(file, problems)
        return _load(conn, statement, batches, problems, progress or ignore)


def require_tables(conn: psycopg.Connection[Any], *tables: str) -> None:
    """Raise a :class:`~shopdb.errors.ShopError` saying to migrate when a table is missing."""
    with translating, conn.transaction():
        found = conn.execute(
            "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NULL",
            (list(tables),),
        ).fetchall()
    if found:
        missing = ", ".join(row[0] for row in found)
        some = f"tables {missing} do not" if len(found) > 1 else f"table {missing} does not"
        raise ShopError(f"{some} exist: run `shopdb setup` first")


def _send(
    copy: psycopg.Copy, batches: Iterator[Batch], problems: Problems, progress: Progress
) -> int:
    rows = 0
    for batch in batches:
        progress(batch.size)
        if problems.count:
            raise Invalid
        if batch.data is not None:
            copy.write(batch.data)
        for record in batch.records or ():
            copy.write_row(record)
        rows += batch.rows
    return rows


def _load(
    conn: psycopg.Connection[Any],
    statement: sql.SQL | sql.Composed,
    batches: Iterator[Batch],
    problems: Problems,
    progress: Progress,
) -> int:
    rows = 0
    if not problems.count:
        try:
            with (
                translating,
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(statement, writer=BackgroundWriter(cur)) as copy,
            ):
                rows = _send(copy, batches, problems, progress)
        except Invalid:
            pass  # rolled back
    # After the first problem nothing more is sent; the rest is only checked.
    for batch in batches:
        progress(batch.size)
    if problems.count:
        raise ImportFailed(problems.first, problems.count)
    return rows
