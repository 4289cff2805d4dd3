"""Migration safety: the lock between processes, per-migration rollback, DDL lock_timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.migrate import LOCK_KEY, Migrator

from .helpers import HEAD, PACKAGED, copy_migrations, extra_migration, run_cli

#: Every table shopdb's migrations make: the seed's four, the orders', the login throttle's.
SHOPDB_TABLES = {
    "users",
    "products",
    "carts",
    "cart_items",
    "orders",
    "order_items",
    "inventory_adjustments",
    "login_attempts",
    "auth_keys",
}
ALL = [revision for revision, _ in PACKAGED]


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}


def _history(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT revision FROM shopdb_migrations ORDER BY revision")
        return [r[0] for r in rows]


def _version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None
        return str(row[0])


def _marker(revision: str, down: str, table: str, *before: str) -> tuple[str, str]:
    body = "\n    ".join(
        [*before, f'op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))']
    )
    return (
        f"{revision}_{table}.py",
        extra_migration(revision, down, body, f'op.drop_table("{table}")'),
    )


RUN_PENDING = """
import sys
from shopdb.migrate import run_pending
steps = run_pending(sys.argv[1])
print("programmatic applied", len(steps))
"""


def test_two_processes_migrating_at_once_apply_everything_exactly_once(
    empty_db: str, tmp_path: Path
) -> None:
    versions = copy_migrations(
        tmp_path / "versions",
        _marker("0099", HEAD, "slow_marker", 'op.execute("SELECT pg_sleep(1.5)")'),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env["SHOPDB_MIGRATIONS_DIR"] = str(versions)
    cli = subprocess.Popen(
        [sys.executable, "-m", "shopdb", "--database-url", empty_db, "migration", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    code = subprocess.Popen(
        [sys.executable, "-c", RUN_PENDING, empty_db],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cli_out, cli_err = cli.communicate(timeout=120)
    code_out, code_err = code.communicate(timeout=120)
    assert cli.returncode == 0, cli_err
    assert code.returncode == 0, code_err
    applied_by_cli = cli_out.count("applied  ")
    applied_by_code = int(code_out.split()[-1])
    total = len(PACKAGED) + 1
    assert applied_by_cli + applied_by_code == total
    assert {applied_by_cli, applied_by_code} == {0, total}
    assert _history(empty_db) == [*ALL, "0099"]
    assert _version(empty_db) == "0099"


def test_waiting_for_the_lock_is_bounded(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        result = run_cli(
            "--database-url",
            empty_db,
            "migration",
            "run",
            env={"SHOPDB_MIGRATION_LOCK_WAIT": "0.5"},
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: another process kept the migration lock for more than 0.5 s "
        "(raise SHOPDB_MIGRATION_LOCK_WAIT to wait longer)"
    )
    assert _tables(empty_db) == set()


def test_a_failing_migration_rolls_back_alone_and_the_next_run_starts_clean(
    empty_db: str, tmp_path: Path
) -> None:
    broken = _marker("0098", HEAD, "half_done", "pass")
    broken_source = broken[1].replace(
        "primary_key=True))", 'primary_key=True))\n    op.execute("SELECT 1/0")'
    )
    versions = copy_migrations(
        tmp_path / "versions",
        (broken[0], broken_source),
        _marker("0099", "0098", "after_marker"),
    )
    result = run_cli(
        "--database-url", empty_db, "--migrations-dir", str(versions), "migration", "run"
    )
    assert result.returncode == 2
    error = result.stderr.strip()
    assert error.startswith("Error: applying migration 0098 (half_done) failed and was rolled back")
    assert "division by zero" in error
    assert f"the {len(ALL)} before it stay applied" in error
    assert "\n" not in error
    assert _tables(empty_db) == SHOPDB_TABLES | {"alembic_version", "shopdb_migrations"}
    assert _version(empty_db) == HEAD
    assert _history(empty_db) == ALL

    (versions / broken[0]).write_text(broken[1])  # fix the file, run again
    result = run_cli(
        "--database-url", empty_db, "--migrations-dir", str(versions), "migration", "run"
    )
    assert result.returncode == 0, result.stderr
    assert "applied  0098" in result.stdout
    assert "applied  0099" in result.stdout
    assert {"half_done", "after_marker"} <= _tables(empty_db)


def test_ddl_waiting_on_a_busy_table_fails_fast_instead_of_queueing(
    empty_db: str, tmp_path: Path, settings: Settings
) -> None:
    versions = copy_migrations(
        tmp_path / "versions",
        (
            "0099_add_sku.py",
            extra_migration(
                "0099",
                HEAD,
                'op.add_column("products", sa.Column("sku", sa.String()))',
                'op.drop_column("products", "sku")',
            ),
        ),
    )
    Migrator(Target(parse_database_url(empty_db)), settings).run(upto=HEAD)
    args = ["--database-url", empty_db, "--migrations-dir", str(versions), "migration", "run"]
    with psycopg.connect(empty_db) as reader:
        reader.execute("SELECT count(*) FROM products")  # holds ACCESS SHARE until rollback
        result = run_cli(*args, env={"SHOPDB_DDL_LOCK_TIMEOUT": "0.5"})
        assert result.returncode == 2
        assert "applying migration 0099 (add_sku) failed" in result.stderr
        assert "lock timeout" in result.stderr
        reader.rollback()
    assert _version(empty_db) == HEAD
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert _version(empty_db) == "0099"
