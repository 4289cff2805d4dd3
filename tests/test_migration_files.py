"""Reading the migration files without Alembic, and a ``shopdb status`` that imports neither
SQLAlchemy nor Alembic.

The migrator parses the files (``shopdb.migrate.declared``) instead of letting
Alembic import them; Alembic's reading stays the reference, and these tests
hold the two to the same answer, on shopdb's migrations and on an
application's branch.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.errors import MigrationError
from shopdb.migrate import Migrator
from shopdb.migrate.declared import read_declared

from .helpers import HEAD, copy_migrations, extra_migration, run_cli

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "examples" / "reviews_app" / "migrations"
HEAVY = ("sqlalchemy", "alembic")


def _migrator(settings: Settings, dirs: dict[str, Path], url: str | None = None) -> Migrator:
    target = Target(parse_database_url(url)) if url else None
    return Migrator(target, settings.model_copy(update=dirs))


def _app_branch(tmp_path: Path) -> dict[str, Path]:
    """shopdb's migrations and one more (0099), the sample app's and a second app revision
    written as newer Alembic templates write them (annotated, a one-element list)."""
    versions = copy_migrations(
        tmp_path / "versions",
        ("0099_later.py", extra_migration("0099", HEAD, "pass")),
    )
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__"))
    source = extra_migration("app_0002", "app_0001", "pass")
    source = source.replace('revision = "app_0002"', 'revision: str = "app_0002"')
    source = source.replace('down_revision = "app_0001"', 'down_revision = ["app_0001"]')
    (app / "app_0002_more.py").write_text(source)
    return {"migrations_dir": versions, "app_migrations_dir": app}


def test_shopdbs_migrations_read_without_alembic_as_alembic_reads_them(
    settings: Settings,
) -> None:
    migrator = _migrator(settings, {})
    assert read_declared(migrator.sources) is not None  # the files are parsed, not imported
    assert migrator.scripts() == migrator.alembic_scripts()
    assert [m.revision for m in migrator.scripts()][-1] == HEAD


def test_an_application_branch_reads_the_same_both_ways(settings: Settings, tmp_path: Path) -> None:
    migrator = _migrator(settings, _app_branch(tmp_path))
    assert read_declared(migrator.sources) is not None
    scripts = migrator.scripts()
    assert scripts == migrator.alembic_scripts()
    assert [m.revision for m in scripts][-3:] == ["0099", "app_0001", "app_0002"]
    assert [m.source for m in scripts][-2:] == ["app", "app"]
    first = next(m for m in scripts if m.revision == "app_0001")
    assert first.requires == ("0005",)  # its depends_on, no parent


def test_a_file_that_is_not_plain_literals_is_read_by_alembic(
    settings: Settings, tmp_path: Path
) -> None:
    source = extra_migration("0099", HEAD, "pass").replace(
        f'down_revision = "{HEAD}"', f'down_revision = "{HEAD}" if True else None'
    )
    versions = copy_migrations(tmp_path / "versions", ("0099_later.py", source))
    migrator = _migrator(settings, {"migrations_dir": versions})
    assert read_declared(migrator.sources) is None
    assert migrator.scripts() == migrator.alembic_scripts()
    assert migrator.scripts()[-1].revision == "0099"


@pytest.mark.parametrize(
    ("down", "depends"), [("0098", "None"), (HEAD, '"nowhere"'), (HEAD, '"app"')]
)
def test_a_history_the_parser_cannot_place_fails_in_alembics_words(
    settings: Settings, tmp_path: Path, down: str, depends: str
) -> None:
    source = extra_migration("0099", down, "pass").replace(
        "depends_on = None", f"depends_on = {depends}"
    )
    versions = copy_migrations(tmp_path / "versions", ("0099_later.py", source))
    migrator = _migrator(settings, {"migrations_dir": versions})
    assert read_declared(migrator.sources) is None
    with pytest.raises(MigrationError) as alembic:
        migrator.alembic_scripts()
    with pytest.raises(MigrationError, match=re.escape(str(alembic.value))):
        migrator.scripts()


def _status_imports(url: str, *options: str) -> tuple[str, set[str]]:
    """``shopdb status``'s output, and the top-level packages it imported (``-X importtime``)."""
    result = run_cli("--database-url", url, *options, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return result.stdout, imported


def test_status_imports_neither_sqlalchemy_nor_alembic(empty_db: str, settings: Settings) -> None:
    _migrator(settings, {}, empty_db).run(upto="0002")
    out, imported = _status_imports(empty_db, "status")
    assert re.search(r"^applied +2 of ", out, re.M), out
    assert "psycopg" in imported  # the check sees the imports
    assert not imported & set(HEAVY)


def test_status_of_an_application_branch_imports_neither_too(
    empty_db: str, settings: Settings, tmp_path: Path
) -> None:
    dirs = _app_branch(tmp_path)
    migrator = _migrator(settings, dirs, empty_db)
    migrator.run(upto=HEAD)
    migrator.run(upto="app_0001")
    options = ["--migrations-dir", str(dirs["migrations_dir"])]
    options += ["--app-migrations-dir", str(dirs["app_migrations_dir"]), "status"]
    out, imported = _status_imports(empty_db, *options)
    assert re.search(r"^pending +0099 later, app_0002 more$", out, re.M), out
    assert re.search(r"^app +2 migrations in ", out, re.M), out
    assert not imported & set(HEAVY)
