"""Migrations a live shop can run: locks, reruns after interruptions, --sql, the earlier 0005."""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.errors import MigrationError
from shopdb.migrate import Migrator
from shopdb.migrate.print_schema import live_ddl
from shopdb.names import username_key
from shopdb.schema import TABLES
from shopdb.testing import DatabaseFactory

from .helpers import PACKAGE_VERSIONS, PACKAGED, copy_migrations, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
EARLIER_0005 = FIXTURES / "0005_harden_integrity.before_issue_10.py.txt"
ALL = [revision for revision, _ in PACKAGED]
#: Generous guard for waits on the database, never a measurement.
HANG_GUARD = 60.0


def _migration_0005() -> ModuleType:
    path = PACKAGE_VERSIONS / "0005_harden_integrity.py"
    spec = importlib.util.spec_from_file_location("harden_integrity", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _migrator(url: str, settings: Settings, **overrides: object) -> Migrator:
    return Migrator(Target(parse_database_url(url)), settings.model_copy(update=overrides))


def _ddl(url: str) -> str:
    with psycopg.connect(url) as conn:
        return live_ddl(conn, [t.name for t in TABLES])


def _bookkeeping(url: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    with psycopg.connect(url) as conn:
        heads = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        rows = conn.execute("SELECT revision, name, checksum FROM shopdb_migrations").fetchall()
    return heads, {(r[0], r[1], r[2]) for r in rows}


@pytest.fixture
def fresh(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A second empty database, for comparing against ``empty_db``."""
    target = shopdb_server.create("shopdb_fresh")
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


# -- the earlier 0005 ---------------------------------------------------------


def test_a_database_that_applied_the_earlier_0005_keeps_working(
    empty_db: str, fresh: str, tmp_path: Path
) -> None:
    earlier = copy_migrations(tmp_path / "earlier")
    shutil.copy(EARLIER_0005, earlier / "0005_harden_integrity.py")
    result = run_cli("--database-url", empty_db, "--migrations-dir", str(earlier), "setup")
    assert result.returncode == 0, result.stderr
    assert run_cli("--database-url", fresh, "setup").returncode == 0
    assert _ddl(empty_db) == _ddl(fresh)

    status = run_cli("--database-url", empty_db, "status")
    assert status.returncode == 0, status.stderr
    assert f"applied   {len(ALL)} of {len(ALL)} migrations" in status.stdout
    assert "pending   none" in status.stdout
    assert "edited" not in status.stdout
    assert "0005 harden_integrity applied from an earlier version of the file" in status.stdout

    check = run_cli("--database-url", empty_db, "check")
    assert (check.returncode, check.stdout.strip()) == (
        0,
        "ok: models, database and migration files agree",
    )
    listed = run_cli("--database-url", empty_db, "migration", "list")
    assert "0005      harden_integrity" in listed.stdout
    assert "(from an earlier version of the file, same schema)" in listed.stdout

    # Reverting it (and what came after it) with the new file, and applying
    # the new file, work as usual.
    since_0005 = str(len([r for r in ALL if r >= "0005"]))
    for command in (["migration", "revert", "-n", since_0005], ["migration", "run"]):
        result = run_cli("--database-url", empty_db, *command)
        assert result.returncode == 0, result.stderr
    assert _ddl(empty_db) == _ddl(fresh)
    assert _bookkeeping(empty_db) == _bookkeeping(fresh)


def test_the_earlier_checksum_is_the_fixtures() -> None:
    from shopdb.migrate import file_checksum

    assert file_checksum(EARLIER_0005) in _migration_0005().previous_checksums


# -- --sql is what runs -------------------------------------------------------


#: What --sql says 0010 computes in Python (a comment), and that step, done by hand.
KEYS_STEP = "-- 0010 writes users.username_key = shopdb.names.username_key(username) here"


def _write_keys(conn: psycopg.Connection[Any]) -> None:
    for user_id, username in conn.execute("SELECT id, username FROM users").fetchall():
        key = username_key(username)
        conn.execute("UPDATE users SET username_key = %s WHERE id = %s", (key, user_id))


def _execute_script(url: str, sql: str) -> None:
    """Run printed SQL statement by statement, as psql -f would, and the Python steps it names
    where it names them (0010's keys) as an operator would."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in sql.split(";\n\n"):
            if statement.strip():
                conn.execute(statement)
            if statement.strip() == KEYS_STEP:
                _write_keys(conn)


def test_sql_run_by_hand_leaves_exactly_what_a_run_leaves(
    empty_db: str, fresh: str, settings: Settings
) -> None:
    by_hand, by_run = _migrator(empty_db, settings), _migrator(fresh, settings)
    by_hand.run(upto="0004")
    by_run.run(upto="0004")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES ('a', 'a@b.c', 'h')"
        )

    upgrade = by_hand.sql("up")
    lines = upgrade.splitlines()
    assert lines[lines.index("SET lock_timeout = '100ms';") + 2] == "SET statement_timeout = 0;"
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_carts_user_id ON carts (user_id);" in lines
    _execute_script(empty_db, upgrade)
    by_run.run()
    assert _ddl(empty_db) == _ddl(fresh)
    assert _bookkeeping(empty_db) == _bookkeeping(fresh)
    assert by_hand.pending() == []

    _execute_script(empty_db, by_hand.sql("down", 2))
    by_run.revert(2)
    assert _ddl(empty_db) == _ddl(fresh)
    assert _bookkeeping(empty_db) == _bookkeeping(fresh)


def test_sql_shows_transactions_and_what_runs_outside_them(
    empty_db: str, settings: Settings
) -> None:
    migrator = _migrator(empty_db, settings)
    migrator.run(upto="0004")
    sql = migrator.sql("up")
    statements = [s.strip() for s in sql.split(";\n\n") if s.strip()]
    inside = False
    outside_statements = []
    for statement in statements:
        last = statement.splitlines()[-1]
        if last == "BEGIN":
            inside = True
        elif last == "COMMIT":
            inside = False
        elif not inside:
            outside_statements.append(last)
    # Every CONCURRENTLY and every VALIDATE runs outside a transaction block.
    assert [s for s in statements if "CONCURRENTLY" in s or "VALIDATE" in s]
    assert all(
        s in outside_statements for s in statements if "CONCURRENTLY" in s or "VALIDATE" in s
    )
    # The version row and the history row commit together, in a transaction.
    version = next(i for i, s in enumerate(statements) if s.startswith("UPDATE alembic_version"))
    assert statements[version - 1] == "BEGIN"
    assert statements[version + 1].startswith("INSERT INTO shopdb_migrations")
    assert statements[version + 2] == "COMMIT"


# -- interrupted halfway ------------------------------------------------------


def test_0005_interrupted_halfway_is_run_again_and_finishes(
    empty_db: str, fresh: str, settings: Settings
) -> None:
    m0005 = _migration_0005()
    checks = {f"ck_{table}_{name}": (table, sql) for name, table, sql in m0005.CHECKS}
    migrator = _migrator(empty_db, settings)
    migrator.run(upto="0004")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES "
            "('a', 'a@b.c', 'h'), ('b', 'A@B.C', 'h')"
        )
        # A validated check, and one added NOT VALID but never validated.
        table, sql = checks["ck_users_username_valid"]
        conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT ck_users_username_valid CHECK ({sql})")
        table, sql = checks["ck_products_name_valid"]
        conn.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ck_products_name_valid CHECK ({sql}) NOT VALID"
        )
        # A unique index build that failed on duplicates and left an INVALID index.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY uq_users_email_lower ON users (lower(email))"
            )
        conn.execute("DELETE FROM users WHERE username = 'b'")
        conn.execute("INSERT INTO carts (user_id) SELECT id FROM users")
        # One index already built.
        conn.execute("CREATE INDEX CONCURRENTLY ix_carts_user_id ON carts (user_id)")
        # A foreign key swap stopped after the old key was dropped.
        conn.execute(
            "ALTER TABLE carts ADD CONSTRAINT fk_carts_user_id_users_swap FOREIGN KEY (user_id) "
            "REFERENCES users (id) ON DELETE CASCADE"
        )
        conn.execute("ALTER TABLE carts DROP CONSTRAINT fk_carts_user_id_users")
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
        assert invalid == (1,)

    assert [s.migration.revision for s in migrator.run(upto="0005")] == ["0005"]
    _migrator(fresh, settings).run(upto="0005")
    assert _ddl(empty_db) == _ddl(fresh)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE NOT convalidated"
        ).fetchone() == (0,)

    # And the downgrade, interrupted after one index drop, finishes too.
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("DROP INDEX CONCURRENTLY ix_cart_items_product_id")
    migrator.revert(1)
    _migrator(fresh, settings).revert(1)
    assert _ddl(empty_db) == _ddl(fresh)


UNIQUE_NAMES = '''"""test migration app_0001: a unique index through online_ddl"""
from shopdb import online_ddl

revision = "app_0001"
down_revision = None
branch_labels = ("app",)
depends_on = "0004"


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.create_index("uq_products_name", "products", ["name"], unique=True)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.drop_index("uq_products_name")
'''


def test_a_failed_unique_index_build_leaves_nothing_and_the_rerun_finishes(
    empty_db: str, settings: Settings, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app_0001_unique_names.py").write_text(UNIQUE_NAMES)
    migrator = _migrator(empty_db, settings, app_migrations_dir=app)
    migrator.run(upto="0004")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (name, price, inventory_count) "
            "VALUES ('Tea', 1, 1), ('Tea', 2, 2)"
        )
    with pytest.raises(MigrationError) as caught:
        migrator.run()
    before = len([r for r in ALL if r > "0004"])  # shopdb's, applied in the same run
    assert str(caught.value) == (
        "applying migration app_0001 (unique_names) failed and was rolled back: "
        f"uq_products_name: is already taken; the {before} before it stay applied"
    )
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # No half-built unique index is left to refuse the shop's writes.
        assert conn.execute("SELECT to_regclass('uq_products_name')").fetchone() == (None,)
        conn.execute("INSERT INTO products (name, price, inventory_count) VALUES ('Tea', 3, 3)")
        conn.execute("DELETE FROM products WHERE price > 1")
    assert [s.migration.revision for s in migrator.run()] == ["app_0001"]


# -- waiting for locks --------------------------------------------------------


def _wait_until_migration_waits_for_a_lock(
    observer: psycopg.Connection[tuple[object, ...]],
) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        row = observer.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'shopdb-migrate' AND wait_event_type = 'Lock'"
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.005)
    raise AssertionError("the migration never waited for a lock")


def test_a_migration_waiting_for_a_lock_does_not_hold_up_the_queries_behind_it(
    empty_db: str, settings: Settings
) -> None:
    """A long transaction holds users; 0005 needs a brief exclusive lock on users. Reads
    behind the waiting migration still complete while the migration keeps trying."""
    migrator = _migrator(empty_db, settings, ddl_lock_timeout=600.0)
    migrator.run(upto="0004")
    with (
        psycopg.connect(empty_db) as holder,
        psycopg.connect(empty_db, autocommit=True) as observer,
        psycopg.connect(empty_db, autocommit=True) as reader,
        ThreadPoolExecutor(1) as pool,
    ):
        holder.execute("SELECT count(*) FROM users")  # ACCESS SHARE until the transaction ends
        running = pool.submit(migrator.run, upto="0005")
        try:
            _wait_until_migration_waits_for_a_lock(observer)
            reader.execute(f"SET lock_timeout = '{int(HANG_GUARD)}s'")
            for _ in range(3):
                assert reader.execute("SELECT count(*) FROM users").fetchone() == (0,)
            assert not running.done(), "the migration should still be waiting for its lock"
        finally:
            holder.rollback()
        steps = running.result(timeout=HANG_GUARD)
    assert [s.migration.revision for s in steps] == ["0005"]


def test_a_lock_that_never_comes_fails_the_migration_after_the_budget(
    empty_db: str, fresh: str, settings: Settings
) -> None:
    """0005 changes users, then waits on products, which a transaction holds: after the
    budget it fails, keeping what it did, and the next run finishes."""
    migrator = _migrator(empty_db, settings, ddl_lock_timeout=0.5)
    migrator.run(upto="0004")
    with psycopg.connect(empty_db) as holder:
        holder.execute("SELECT count(*) FROM products")
        with pytest.raises(MigrationError) as caught:
            migrator.run(upto="0005")
        holder.rollback()
    message = str(caught.value)
    assert message.startswith("applying migration 0005 (harden_integrity) failed: ")
    assert "lock timeout" in message
    assert message.endswith(
        "the steps it finished outside a transaction stay done, and running it again completes it"
    )
    with psycopg.connect(empty_db) as conn:
        done = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = ANY("
            "ARRAY['users', 'products', 'carts', 'cart_items']::regclass[])"
        ).fetchall()
    assert sorted(r[0] for r in done) == ["ck_users_email_valid", "ck_users_username_valid"]
    assert [s.migration.revision for s in migrator.run(upto="0005")] == ["0005"]
    _migrator(fresh, settings).run(upto="0005")
    assert _ddl(empty_db) == _ddl(fresh)
