"""An application's own migrations on top of shopdb's: the sample app in examples/, end to end."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.errors import MigrationError
from shopdb.migrate import Migrator

from .helpers import HEAD, PACKAGED, copy_migrations, extra_migration, run_cli

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "examples" / "reviews_app" / "migrations"
APP_METADATA = "examples.reviews_app.models:metadata"
SHOPDB = [revision for revision, _ in PACKAGED]
APP_ENV = {"SHOPDB_APP_MIGRATIONS_DIR": str(APP_DIR), "SHOPDB_APP_METADATA": APP_METADATA}


def _cli(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = run_cli("--database-url", url, *args, cwd=ROOT, env=env)
    return result.returncode, result.stdout, result.stderr


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}


def _migrator(
    url: str, settings: Settings, app: Path | None, shopdb: Path | None = None
) -> Migrator:
    overrides = settings.model_copy(update={"app_migrations_dir": app, "migrations_dir": shopdb})
    return Migrator(Target(parse_database_url(url)), overrides)


def test_setup_applies_the_apps_migrations_after_shopdbs_and_everything_sees_them(
    empty_db: str,
) -> None:
    code, out, err = _cli(empty_db, "setup", env=APP_ENV)
    assert code == 0, err
    applied = _steps(out, "applied")
    assert applied == [*SHOPDB, "app_0001"]
    assert "reviews" in _tables(empty_db)

    code, out, _ = _cli(empty_db, "status", env=APP_ENV)
    assert code == 0
    assert f"applied   {len(SHOPDB) + 1} of {len(SHOPDB) + 1} migrations" in out
    assert "pending   none" in out
    assert f"app       1 migration in {APP_DIR}" in out

    code, out, _ = _cli(empty_db, "check", env=APP_ENV)
    assert (code, out.strip()) == (0, "ok: models, database and migration files agree")

    code, out, _ = _cli(empty_db, "migration", "list", env=APP_ENV)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [*SHOPDB, "app_0001"]
    assert _cli(empty_db, "migration", "pending", env=APP_ENV)[0] == 0

    # The app's foreign key to shopdb's users works, and cascades.
    with psycopg.connect(empty_db, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (username, username_key, email, password_hash) "
            "VALUES ('bo', 'bo', 'bo@x.io', 'h') RETURNING id"
        ).fetchone()
        assert user is not None
        conn.execute("INSERT INTO reviews (user_id, stars) VALUES (%s, 5)", (user[0],))
        conn.execute("DELETE FROM users")
        assert conn.execute("SELECT count(*) FROM reviews").fetchone() == (0,)

    code, out, err = _cli(empty_db, "migration", "revert", "--all", env=APP_ENV)
    assert code == 0, err
    reverted = _steps(out, "reverted")
    assert reverted == ["app_0001", *reversed(SHOPDB)]
    assert _tables(empty_db) == {"alembic_version", "shopdb_migrations"}


def test_a_database_with_app_migrations_explains_itself_to_a_shopdb_without_them(
    empty_db: str,
) -> None:
    assert _cli(empty_db, "setup", env=APP_ENV)[0] == 0
    code, _, err = _cli(empty_db, "status")
    assert code == 2
    assert "the database is at revision app_0001" in err
    assert "SHOPDB_APP_MIGRATIONS_DIR" in err


def test_generate_without_autogenerate_touches_no_database_and_starts_no_server(
    tmp_path: Path,
) -> None:
    app = tmp_path / "migrations"
    # No DATABASE_URL: a command that needed a database would start the embedded
    # server here, in .shopdb/.
    result = run_cli(
        "--app-migrations-dir", str(app), "migration", "generate", "add_reviews", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    created = app / "app_0001_add_reviews.py"
    assert result.stdout.strip() == f"created {created}"
    assert not (tmp_path / ".shopdb").exists()
    source = created.read_text()
    assert 'revision = "app_0001"' in source
    assert "down_revision = None" in source
    assert 'branch_labels = ("app",)' in source
    assert f'depends_on = "{HEAD}"' in source

    result = run_cli(
        "--app-migrations-dir", str(app), "migration", "generate", "more", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    source = (app / "app_0002_more.py").read_text()
    assert 'down_revision = "app_0001"' in source
    assert "branch_labels = None" in source
    assert not (tmp_path / ".shopdb").exists()


def test_generate_needs_a_directory_for_new_migrations(tmp_path: Path) -> None:
    result = run_cli("migration", "generate", "add_reviews", cwd=tmp_path)
    assert result.returncode == 2
    assert "SHOPDB_APP_MIGRATIONS_DIR" in result.stderr
    assert not (tmp_path / ".shopdb").exists()


def test_autogenerate_writes_the_apps_tables_and_proposes_no_drops(
    empty_db: str, tmp_path: Path
) -> None:
    assert _cli(empty_db, "setup")[0] == 0
    app = tmp_path / "migrations"
    env = {"SHOPDB_APP_MIGRATIONS_DIR": str(app), "SHOPDB_APP_METADATA": APP_METADATA}
    code, out, err = _cli(
        empty_db, "migration", "generate", "create_reviews", "--autogenerate", env=env
    )
    assert code == 0, err
    source = (app / "app_0001_create_reviews.py").read_text()
    assert "op.create_table('reviews'" in source
    assert "ondelete='CASCADE'" in source
    assert "drop_table('users')" not in source
    assert source.count("drop_table") == 1  # the downgrade's own

    code, out, err = _cli(empty_db, "migration", "run", env=env)
    assert code == 0, err
    assert "applied  app_0001 create_reviews" in out
    code, out, _ = _cli(empty_db, "check", env=env)
    assert (code, out.strip()) == (0, "ok: models, database and migration files agree")

    # Up to date now: a second autogenerate finds nothing to do.
    code, _, err = _cli(empty_db, "migration", "generate", "nothing", "--autogenerate", env=env)
    assert code == 0, err
    source = (app / "app_0002_nothing.py").read_text()
    assert "op." not in source.split("def upgrade() -> None:")[1]


def test_autogenerate_for_the_app_needs_its_metadata(empty_db: str, tmp_path: Path) -> None:
    assert _cli(empty_db, "setup")[0] == 0
    env = {"SHOPDB_APP_MIGRATIONS_DIR": str(tmp_path / "m")}
    code, _, err = _cli(empty_db, "migration", "generate", "x", "--autogenerate", env=env)
    assert code == 2
    assert "SHOPDB_APP_METADATA" in err


def test_a_later_shopdb_migration_and_the_app_revert_newest_applied_first(
    empty_db: str, tmp_path: Path, settings: Settings
) -> None:
    """shopdb's next release adds 0099 after the app applied app_0001: reverting one
    migration reverts 0099 (the newest applied), and 0005 goes only after the app."""
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__"))
    versions = copy_migrations(
        tmp_path / "versions",
        (
            "0099_later.py",
            extra_migration(
                "0099",
                HEAD,
                'op.create_table("later", sa.Column("id", sa.Integer, primary_key=True))',
                'op.drop_table("later")',
            ),
        ),
    )
    before = _migrator(empty_db, settings, app)
    assert [s.migration.revision for s in before.run()] == [*SHOPDB, "app_0001"]

    after = _migrator(empty_db, settings, app, versions)
    assert [m.revision for m in after.pending()] == ["0099"]
    assert [s.migration.revision for s in after.run()] == ["0099"]
    with psycopg.connect(empty_db) as conn:
        heads = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
    assert heads == {"0099", "app_0001"}

    assert [s.migration.revision for s in after.revert(1)] == ["0099"]
    assert [s.migration.revision for s in after.run()] == ["0099"]
    reverted = [s.migration.revision for s in after.revert(3)]
    assert reverted == ["0099", "app_0001", HEAD]
    assert "reviews" not in _tables(empty_db)
    assert [s.migration.revision for s in after.run()] == [HEAD, "0099", "app_0001"]


def test_sql_for_a_database_with_two_heads_writes_the_version_rows_a_run_writes(
    empty_db: str, tmp_path: Path, settings: Settings
) -> None:
    versions = copy_migrations(
        tmp_path / "versions",
        (
            "0099_later.py",
            extra_migration(
                "0099",
                HEAD,
                'op.create_table("later", sa.Column("id", sa.Integer, primary_key=True))',
                'op.drop_table("later")',
            ),
        ),
    )
    migrator = _migrator(empty_db, settings, APP_DIR, versions)
    migrator.run(upto=HEAD)
    sql = migrator.sql("up")
    # app_0001 needs 0005 (a head now); 0099 needs 0005 too: one of them replaces the row.
    assert (
        "UPDATE alembic_version SET version_num='0099' "
        f"WHERE alembic_version.version_num = '{HEAD}'" in sql
    )
    assert "INSERT INTO alembic_version (version_num) VALUES ('app_0001')" in sql


def test_the_apps_migrations_must_form_one_line(tmp_path: Path, settings: Settings) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__"))
    for revision in ("app_0002", "app_0003"):
        (app / f"{revision}_x.py").write_text(extra_migration(revision, "app_0001", "pass"))
    migrator = Migrator(None, settings.model_copy(update={"app_migrations_dir": app}))
    with pytest.raises(
        MigrationError, match=r"the app migrations have 2 heads \(app_0002, app_0003\)"
    ):
        migrator.scripts()


def test_an_app_migration_needing_a_newer_shopdb_says_so(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    source = (APP_DIR / "app_0001_create_reviews.py").read_text()
    newer = re.sub(r'depends_on = "\d+"', 'depends_on = "0099"', source)
    assert newer != source
    (app / "app_0001_create_reviews.py").write_text(newer)
    result = run_cli("--app-migrations-dir", str(app), "migration", "generate", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "Error: a migration refers to revision '0099', which is not among the migrations in "
    )


def _steps(out: str, verb: str) -> list[str]:
    """The revisions of the ``[i/n] applied|reverted REV name  N ms`` lines, in order."""
    step = re.compile(rf"\[\d+/\d+\] +{verb} +(\S+)")
    return [m.group(1) for m in map(step.match, out.splitlines()) if m is not None]
