"""`shopdb` migration commands: behaviour and exit codes, through real processes."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shopdb.testing import DatabaseFactory

from .helpers import HEAD, PACKAGED, copy_migrations, extra_migration, run_cli

SECRET = "pw-7d1e3a"
ALL = [revision for revision, _ in PACKAGED]
N = len(ALL)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _cli(url: str, *args: str, **kwargs: object) -> tuple[int, str, str]:
    result = run_cli("--database-url", url, *args, **kwargs)  # type: ignore[arg-type]
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def missing_db(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """The URL of a database that does not exist yet (dropped after the test if created)."""
    name = f"shopdb_cli_{secrets.token_hex(4)}"
    yield shopdb_server.url(name)
    shopdb_server.drop(name)


def test_setup_creates_the_database_then_applies_and_later_runs_apply_new_ones(
    missing_db: str, tmp_path: Path
) -> None:
    code, out, err = _cli(missing_db, "setup")
    assert code == 0, err
    assert out.splitlines()[0].startswith("created database shopdb_cli_")
    assert re.search(rf"^\[1/{N}\] \s*applied  0001 create_users\s+\d+ ms$", out, re.M)
    assert out.strip().endswith(f"applied {N} migrations; up to date")

    code, out, _ = _cli(missing_db, "setup")
    assert (code, out.strip()) == (0, f"nothing to apply: all {N} migrations are applied")

    # A later migration is applied by a later setup (diesel setup skips it).
    versions = copy_migrations(
        tmp_path / "versions",
        ("0099_later.py", _later_migration()),
    )
    code, out, err = _cli(missing_db, "--migrations-dir", str(versions), "setup")
    assert code == 0, err
    assert "created database" not in out
    assert "applied  0099 later" in out


def _later_migration() -> str:
    return extra_migration(
        "0099",
        HEAD,
        'op.create_table("later_marker", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("later_marker")',
    )


def test_setup_reports_an_unreachable_server_as_itself(tmp_path: Path) -> None:
    code, _, err = _cli(
        f"postgres://u:{SECRET}@127.0.0.1:1/shop", "setup", env={"SHOPDB_CONNECT_RETRY": "0"}
    )
    assert code == 2
    assert err.startswith("Error: cannot reach PostgreSQL at 127.0.0.1:1")
    assert "does not exist" not in err
    assert SECRET not in err


def test_list_pending_and_json(empty_db: str) -> None:
    code, out, _ = _cli(empty_db, "migration", "pending")
    assert code == 1
    assert out.startswith(f"{N} pending: 0001 create_users")

    code, out, _ = _cli(empty_db, "migration", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["revision", "name", "applied"]
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["pending"] * N

    assert _cli(empty_db, "migration", "run")[0] == 0
    code, out, _ = _cli(empty_db, "migration", "pending")
    assert (code, out.strip()) == (0, "no pending migrations")
    code, out, _ = _cli(empty_db, "migration", "list", "--json")
    listed = json.loads(out)
    assert [m["revision"] for m in listed] == ALL
    assert all(m["applied"] and m["applied_at"] and not m["edited"] for m in listed)


def test_revert_redo_and_their_counts(empty_db: str) -> None:
    assert _cli(empty_db, "migration", "run")[0] == 0
    code, out, _ = _cli(empty_db, "migration", "revert")
    assert code == 0
    assert f"reverted {ALL[-1]} {PACKAGED[-1][1]}" in out

    code, out, _ = _cli(empty_db, "migration", "revert", "-n", "2")
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()[:2]] == [ALL[-2], ALL[-3]]

    assert _cli(empty_db, "migration", "run")[0] == 0
    code, out, _ = _cli(empty_db, "migration", "redo", "-n", "2")
    assert code == 0
    assert [line.split()[1:3] for line in out.splitlines()[:4]] == [
        ["reverted", ALL[-1]],
        ["reverted", ALL[-2]],
        ["applied", ALL[-2]],
        ["applied", ALL[-1]],
    ]
    assert {"users", "products", "carts", "cart_items"} <= _tables(empty_db)

    code, _, err = _cli(empty_db, "migration", "revert", "-n", "1", "--all")
    assert code == 2
    assert "either" in err

    code, out, _ = _cli(empty_db, "migration", "revert", "--all")
    assert code == 0
    assert out.strip().endswith(f"reverted {N} migrations")
    assert not {"users", "products", "carts", "cart_items"} & _tables(empty_db)
    code, out, _ = _cli(empty_db, "migration", "revert")
    assert (code, out.strip()) == (0, "nothing to revert: no migration is applied")


def test_sql_prints_and_runs_nothing(empty_db: str) -> None:
    code, out, _ = _cli(empty_db, "migration", "run", "--sql")
    assert code == 0
    # What a run sends first: its history table, then each migration's session settings.
    assert out.startswith("CREATE TABLE IF NOT EXISTS shopdb_migrations (")
    assert "\n\nSET lock_timeout = '100ms';\n\nSET statement_timeout = 0;\n\n" in out
    assert "CREATE TABLE users" in out
    assert "CREATE TABLE cart_items" in out
    assert _tables(empty_db) == set()

    assert _cli(empty_db, "migration", "run")[0] == 0
    before = _tables(empty_db)
    code, out, _ = _cli(empty_db, "migration", "revert", "--all", "--sql")
    assert code == 0
    assert out.index("DROP TABLE cart_items") < out.index("DROP TABLE users")
    assert _tables(empty_db) == before
    assert _cli(empty_db, "migration", "pending")[0] == 0


def test_generate_writes_a_numbered_file_and_autogenerate_fills_it(
    empty_db: str, tmp_path: Path
) -> None:
    versions = copy_migrations(tmp_path / "versions")
    code, out, err = _cli(
        empty_db, "--migrations-dir", str(versions), "migration", "generate", "add sku"
    )
    assert code == 0, err
    nxt = f"{int(HEAD) + 1:04d}"
    created = versions / f"{nxt}_add_sku.py"
    assert out.strip() == f"created {created}"
    source = created.read_text()
    assert f'revision = "{nxt}"' in source
    assert f'down_revision = "{HEAD}"' in source
    assert "def downgrade() -> None:" in source
    created.unlink()

    assert _cli(empty_db, "--migrations-dir", str(versions), "migration", "run")[0] == 0
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # CASCADE: the search trigger (0011) depends on the column.
        conn.execute("ALTER TABLE products DROP COLUMN description CASCADE")
    code, out, err = _cli(
        empty_db,
        "--migrations-dir",
        str(versions),
        "migration",
        "generate",
        "restore_description",
        "--autogenerate",
    )
    assert code == 0, err
    source = (versions / f"{nxt}_restore_description.py").read_text()
    assert "op.add_column('products', sa.Column('description', sa.Text()" in source
    assert "op.drop_column('products', 'description')" in source

    code, _, err = _cli(empty_db, "--migrations-dir", str(versions), "migration", "generate", "9x")
    assert code == 2
    assert "letters, digits and underscores" in err


def test_database_url_masks_the_password(shopdb_server: DatabaseFactory) -> None:
    url = shopdb_server.server_url.set(password=SECRET).render_as_string(hide_password=False)
    code, out, _ = _cli(url, "database", "url")
    assert code == 0
    assert SECRET not in out
    assert ":***@" in out


def test_reset_and_drop_refuse_without_yes_when_there_is_no_terminal(empty_db: str) -> None:
    assert _cli(empty_db, "migration", "run")[0] == 0
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO products (name, price, inventory_count) VALUES ('Tea', 1, 1)")
    for command in (["database", "reset"], ["database", "drop"]):
        code, _, err = _cli(empty_db, *command, input="y\n")
        assert code == 2
        assert "without --yes" in err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (1,)

    code, out, err = _cli(empty_db, "database", "reset", "--yes")
    assert code == 0, err
    assert f"applied {N} migrations" in out
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (0,)

    code, out, _ = _cli(empty_db, "database", "drop", "--yes")
    assert code == 0
    code, _, err = _cli(empty_db, "status", env={"SHOPDB_CONNECT_RETRY": "0"})
    assert code == 2
    assert "does not exist" in err


def test_print_schema_shows_the_live_tables(empty_db: str) -> None:
    code, out, _ = _cli(empty_db, "print-schema")
    assert code == 0
    assert "none of shopdb's tables exist yet" in out
    assert _cli(empty_db, "migration", "run")[0] == 0
    code, out, _ = _cli(empty_db, "print-schema")
    assert code == 0
    assert "CREATE TABLE users (\n    id integer NOT NULL DEFAULT nextval(" in out
    assert "CONSTRAINT uq_users_email UNIQUE (email)" in out
    assert "REFERENCES users(id)" in out
    assert "numeric NOT NULL" in out


def test_check_catches_a_column_added_by_hand_and_an_edited_migration(
    empty_db: str, tmp_path: Path
) -> None:
    versions = copy_migrations(tmp_path / "versions")
    assert _cli(empty_db, "--migrations-dir", str(versions), "migration", "run")[0] == 0
    code, out, _ = _cli(empty_db, "--migrations-dir", str(versions), "check")
    assert (code, out.strip()) == (0, "ok: models, database and migration files agree")

    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE products ADD COLUMN sku varchar")
    code, out, _ = _cli(empty_db, "--migrations-dir", str(versions), "check")
    assert code == 1
    assert "column products.sku (VARCHAR): in the database but not in the models" in out

    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE products DROP COLUMN sku")
    edited = versions / "0002_create_products.py"
    edited.write_text(edited.read_text() + "\n# a quiet edit after the fact\n")
    code, out, _ = _cli(empty_db, "--migrations-dir", str(versions), "check")
    assert code == 1
    assert "edited   migration 0002 create_products: its file changed after it was applied" in out
    assert "drift" not in out


COMMANDS = [
    [],
    ["setup"],
    ["status"],
    ["check"],
    ["print-schema"],
    ["migration"],
    ["migration", "run"],
    ["migration", "revert"],
    ["migration", "redo"],
    ["migration", "list"],
    ["migration", "pending"],
    ["migration", "generate"],
    ["database"],
    ["database", "reset"],
    ["database", "drop"],
    ["database", "url"],
    ["import"],
    ["import", "products"],
    ["seed"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "shopdb")
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout


def test_usage_errors_exit_2() -> None:
    result = run_cli("migration", "frobnicate")
    assert result.returncode == 2
    result = run_cli("migration", "revert", "-n", "0")
    assert result.returncode == 2


def test_commands_that_need_no_database_load_neither_sqlalchemy_nor_psycopg() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from shopdb.cli import cli\n"
        "for args in (['--help'], ['migration', 'run', '--help'], ['import', 'products', '--help'],"
        " ['seed', '--help'], ['database', 'reset', '--help']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'psycopg', 'pydantic', 'alembic') "
        "if m in sys.modules)\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
