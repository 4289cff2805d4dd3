"""``shopdb migration generate``: where a new migration file goes, and its id.

With an application directory (``SHOPDB_APP_MIGRATIONS_DIR``) the file goes
there, as ``app_NNNN_<name>.py``: the first one starts the ``app`` branch and
depends on shopdb's newest migration, each later one follows the app's
newest. ``--autogenerate`` compares the application's metadata
(``SHOPDB_APP_METADATA``) with the database, looking only at the tables it
defines. Without an application directory, the file goes into
``SHOPDB_MIGRATIONS_DIR`` (a copy of shopdb's own migrations) as
``NNNN_<name>.py``, compared with shopdb's models.

Without ``--autogenerate`` nothing connects: Alembic only writes the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopdb.errors import MigrationError
from shopdb.migrate.sources import APP_BRANCH

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from shopdb.migrate.runner import Migrator


def generate(migrator: Migrator, name: str, *, autogenerate: bool = False) -> Path:
    """Write the new migration file and return its path."""
    from alembic import command

    from shopdb.migrate.sources import include_tables

    slug = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not slug.replace("_", "").isalnum() or not slug[0].isalpha():
        raise MigrationError(
            f"migration name {name!r} must be letters, digits and underscores, "
            "starting with a letter"
        )
    options = _placement(migrator)
    if not autogenerate:
        script = command.revision(migrator.alembic_config(), message=slug, **options)
    else:
        metadata = _metadata(migrator)
        with migrator.reading() as conn:
            config = migrator.alembic_config(
                connection=conn, target_metadata=metadata, include_name=include_tables(metadata)
            )
            script = command.revision(config, message=slug, autogenerate=True, **options)
    if script is None or isinstance(script, list):
        raise MigrationError("Alembic wrote no single migration file")
    return Path(script.path)


def _placement(migrator: Migrator) -> dict[str, Any]:
    """The new file's id, directory and place in the history, for ``command.revision``."""
    app = migrator.sources.app
    if app is None:
        if migrator.settings.migrations_dir is None:
            raise MigrationError(
                "set SHOPDB_APP_MIGRATIONS_DIR (or --app-migrations-dir) to your "
                "application's migrations directory: new migrations go there, on top of "
                "shopdb's"
            )
        existing = [m for m in migrator.scripts() if m.source == "shopdb"]
        numbers = [int(m.revision) for m in existing if m.revision.isdigit()]
        return {"rev_id": f"{max(numbers, default=0) + 1:04d}"}
    app.mkdir(parents=True, exist_ok=True)
    scripts = migrator.scripts()
    mine = [m for m in scripts if m.source == APP_BRANCH]
    numbers = [
        int(m.revision.removeprefix(f"{APP_BRANCH}_"))
        for m in mine
        if re.fullmatch(rf"{APP_BRANCH}_\d+", m.revision)
    ]
    rev_id = f"{APP_BRANCH}_{max(numbers, default=0) + 1:04d}"
    if mine:
        required = {r for m in mine for r in m.parents}
        head = next(m.revision for m in reversed(mine) if m.revision not in required)
        return {"rev_id": rev_id, "head": head, "version_path": str(app)}
    # The first: a branch of its own, which needs shopdb's newest migration.
    shopdb_head = [m for m in scripts if m.source == "shopdb"][-1].revision
    return {
        "rev_id": rev_id,
        "head": "base",
        "branch_label": APP_BRANCH,
        "version_path": str(app),
        "depends_on": shopdb_head,
    }


def _metadata(migrator: Migrator) -> list[MetaData]:
    from shopdb.migrate.sources import load_app_metadata
    from shopdb.schema import metadata

    if migrator.sources.app is None:
        return [metadata]
    if not migrator.settings.app_metadata:
        raise MigrationError(
            "--autogenerate compares your models with the database: set "
            "SHOPDB_APP_METADATA=module:attribute to your SQLAlchemy MetaData"
        )
    return [load_app_metadata(migrator.settings.app_metadata)]
