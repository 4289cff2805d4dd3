"""The Store's whole test suite, through a real PgBouncer in transaction pooling mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from shopdb.testing import POOL_URL_VARIABLE, TEST_URL_VARIABLE, DatabaseFactory

from .pgbouncer import pgbouncer, pgbouncer_binary

STORE_SUITE = [
    "tests/test_store.py",
    "tests/test_store_input.py",
    "tests/test_store_concurrency.py",
    "tests/test_store_stateful.py",
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    pgbouncer_binary() is None, reason="pgbouncer is not installed (.ci/run installs it)"
)
def test_the_store_suite_passes_through_pgbouncer_in_transaction_mode(
    shopdb_server: DatabaseFactory, tmp_path: Path
) -> None:
    with pgbouncer(shopdb_server.server_url) as bouncer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
        env[TEST_URL_VARIABLE] = shopdb_server.url(str(shopdb_server.server_url.database))
        env[POOL_URL_VARIABLE] = bouncer.render_as_string(hide_password=False)
        # PgBouncer 1.18 keeps no prepared statements across transactions and
        # refuses connection options: the settings the README gives for it.
        env["SHOPDB_PREPARED_STATEMENTS"] = "false"
        env["SHOPDB_STARTUP_OPTIONS"] = "false"
        # A basetemp of its own, so the inner session leaves the outer one's alone.
        inner = [f"--basetemp={tmp_path / 'inner'}", "-p", "no:cacheprovider", *STORE_SUITE]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *inner],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert " passed" in result.stdout
        admin = bouncer.set(database="pgbouncer").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as console:
            cursor = console.execute("SHOW STATS")
            columns = [c.name for c in cursor.description or []]
            served = sum(row[columns.index("total_query_count")] for row in cursor.fetchall())
    assert served > 1000, "the suite did not go through PgBouncer"
