"""``shopdb check``: do the models, the migrations and the live database agree?

Alembic's autogenerate comparison finds schema drift (a column added by hand,
a constraint dropped); the migration history's checksums find applied
migrations whose file was edited afterwards, which neither Alembic, diesel
nor Django notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from shopdb.errors import ShopError, translate

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

    from shopdb.migrate.runner import Migration, Migrator


@dataclass(frozen=True)
class DriftReport:
    """What disagrees; empty lists mean everything agrees."""

    schema: list[str] = field(default_factory=list)
    edited: list[Migration] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when models, database and migration files all agree."""
        return not (self.schema or self.edited or self.pending)


def check(migrator: Migrator) -> DriftReport:
    """Compare the models with the live database, and migration files with their history.

    The models are shopdb's tables, and the application's when
    ``SHOPDB_APP_METADATA`` names its metadata.
    """
    from shopdb.migrate.sources import target_metadata

    state = migrator.migrations()
    metadata = target_metadata(migrator.settings)
    try:
        with migrator.connection() as conn:
            differences = schema_differences(conn, metadata)
    except ShopError:
        raise
    except Exception as exc:
        raise translate(exc) from exc
    return DriftReport(
        schema=differences,
        edited=[m for m in state if m.edited],
        pending=[m for m in state if not m.applied],
    )


def schema_differences(conn: Connection, metadata: Sequence[MetaData] | None = None) -> list[str]:
    """How the live schema of the models' tables differs from the models, one line each.

    ``metadata`` defaults to shopdb's tables; tables it does not define are
    not compared (so they are never reported as extra).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from shopdb.migrate.sources import include_tables

    if metadata is None:
        from shopdb.schema import metadata as shopdb_metadata

        metadata = [shopdb_metadata]
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": include_tables(metadata),
        },
    )
    # A list, as for target_metadata (AutogenContext takes one; the annotation says MetaData).
    both = cast("MetaData", list(metadata))
    return [describe(d) for d in _flatten(compare_metadata(context, both))]


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    # Column modifications come grouped in a list; everything else is a tuple.
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        if isinstance(diff, list):
            flat.extend(diff)
        else:
            flat.append(diff)
    return flat


def describe(diff: tuple[Any, ...]) -> str:
    """One Alembic difference as a sentence a person can act on."""
    kind = diff[0]
    in_models = "in the models but not in the database"
    in_db = "in the database but not in the models"
    if kind in {"add_table", "remove_table"}:
        where = in_models if kind == "add_table" else in_db
        return f"table {diff[1].name}: {where}"
    if kind in {"add_column", "remove_column"}:
        where = in_models if kind == "add_column" else in_db
        column = diff[3]
        return f"column {diff[2]}.{column.name} ({column.type}): {where}"
    if kind in {"add_index", "remove_index", "add_constraint", "remove_constraint"}:
        item = diff[1]
        where = in_models if kind.startswith("add") else in_db
        what = "index" if kind.endswith("index") else "constraint"
        return f"{what} {item.name} on {item.table.name}: {where}"
    if kind in {"add_fk", "remove_fk"}:
        fk = diff[1]
        where = in_models if kind == "add_fk" else in_db
        return f"foreign key {fk.name} on {fk.parent.name}: {where}"
    if kind.startswith("modify_"):
        _, _, table, column, _, old, new = diff
        what = kind.removeprefix("modify_").replace("_", " ")
        return f"column {table}.{column}: {what} is {old!r} in the database, {new!r} in the models"
    return f"{kind}: {diff[1:]!r}"
