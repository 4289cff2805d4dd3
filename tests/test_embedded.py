"""The embedded default: `shopdb setup` with no URL, persistence across restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .helpers import PACKAGED, run_cli

INSERT = """
from shopdb import establish_connection_pool
from sqlalchemy import text
with establish_connection_pool() as pool, pool.begin() as conn:
    conn.execute(text(
        "INSERT INTO products (name, price, inventory_count) VALUES ('Kettle', 24.90, 5)"
    ))
"""
READ = """
from shopdb import establish_connection_pool
from sqlalchemy import text
with establish_connection_pool() as pool, pool.connect() as conn:
    print(conn.execute(text("SELECT name, price FROM products")).one())
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_setup_without_a_url_runs_the_embedded_server_and_keeps_its_data(tmp_path: Path) -> None:
    first = run_cli("setup", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    pgdata = tmp_path / ".shopdb" / "pgdata"
    assert (pgdata / "PG_VERSION").exists()
    assert first.stderr.count("\n") == 1
    assert "embedded PostgreSQL" in first.stderr
    assert first.stdout.count("applied  ") == len(PACKAGED)
    # The server stops with the last process that used it.
    assert not (pgdata / "postmaster.pid").exists()

    second = run_cli("setup", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stdout

    inserted = _python(INSERT, tmp_path)
    assert inserted.returncode == 0, inserted.stderr
    assert not (pgdata / "postmaster.pid").exists()
    read = _python(READ, tmp_path)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "('Kettle', Decimal('24.90'))"

    status = run_cli("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "embedded PostgreSQL" in status.stdout
    assert "pending   none" in status.stdout

    # From a subfolder, the project's .shopdb/ is found upward (as git finds .git).
    deep = tmp_path / "src" / "deep"
    deep.mkdir(parents=True)
    below = run_cli("status", cwd=deep)
    assert below.returncode == 0, below.stderr
    assert f"in {tmp_path.resolve() / '.shopdb'}" in below.stdout
    assert "pending   none" in below.stdout
    assert not (deep / ".shopdb").exists()
    assert not (tmp_path / "src" / ".shopdb").exists()


def test_embedded_dir_can_be_moved(tmp_path: Path) -> None:
    result = run_cli(
        "setup", cwd=tmp_path, env={"SHOPDB_EMBEDDED_DIR": str(tmp_path / "elsewhere")}
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "pgdata" / "PG_VERSION").exists()
    assert not (tmp_path / ".shopdb").exists()
