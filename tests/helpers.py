"""Helpers for shopdb's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shopdb.errors import ShopError


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``shopdb ARGS`` in a real subprocess, as a user would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "shopdb", *args],
        cwd=cwd,
        env=base,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


T = TypeVar("T")

PACKAGE_VERSIONS = (
    Path(__file__).resolve().parents[1] / "src" / "shopdb" / "migrations" / "versions"
)
#: The packaged migrations as (revision, name), oldest first.
PACKAGED = [
    (p.stem.split("_", 1)[0], p.stem.split("_", 1)[1])
    for p in sorted(PACKAGE_VERSIONS.glob("[0-9]*.py"))
]
#: The newest packaged revision, which test migrations build on.
HEAD = PACKAGED[-1][0]


def copy_migrations(into: Path, *extra: tuple[str, str]) -> Path:
    """The packaged migrations copied into ``into``, plus ``(file name, source)`` extras."""
    import shutil

    into.mkdir(parents=True, exist_ok=True)
    for path in PACKAGE_VERSIONS.glob("*.py"):
        shutil.copy(path, into / path.name)
    for name, source in extra:
        (into / name).write_text(source)
    return into


def extra_migration(revision: str, down: str, upgrade: str, downgrade: str = "pass") -> str:
    """Source of a migration file for tests."""
    return f'''"""test migration {revision}"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    {downgrade}
'''


def together(calls: list[Callable[[], T]], hang_guard: float = 120.0) -> list[T | Exception]:
    """Run every call on its own thread, released at the same instant; results or errors."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    gate = threading.Barrier(len(calls), timeout=hang_guard)

    def run(call: Callable[[], T]) -> T | Exception:
        gate.wait()
        try:
            return call()
        except Exception as exc:  # collected and judged by the test
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as executor:
        return list(executor.map(run, calls))


def is_deadlock(error: BaseException) -> bool:
    """Whether ``error`` is the Store's ``ConcurrencyConflict`` for a deadlock the server
    detected (SQLSTATE 40P01), not for a serialization failure (40001)."""
    import psycopg

    from shopdb.errors import ConcurrencyConflict

    return isinstance(error, ConcurrencyConflict) and isinstance(
        error.__cause__, psycopg.errors.DeadlockDetected
    )


def refusals(results: Sequence[object], *allowed: type[Exception]) -> list[Exception]:
    """The errors among a race's ``results`` (from :func:`together`), once each is known
    to be one of the ``allowed`` refusals.

    Anything else fails the race: a deadlock above all (which a Store with ``retries=0``
    lets through as a ``ConcurrencyConflict``; the lock order must make it impossible),
    named with the server's account of who waited for whom.
    """
    import psycopg

    errors = [r for r in results if isinstance(r, Exception)]
    deadlocks = [
        f"{e.__cause__.diag.message_primary}: {e.__cause__.diag.message_detail}"
        for e in errors
        if is_deadlock(e) and isinstance(e.__cause__, psycopg.Error)
    ]
    assert deadlocks == [], deadlocks
    unexpected = [e for e in errors if not isinstance(e, allowed)]
    assert unexpected == [], unexpected
    return errors


def refused(conn: Connection, sql: str, **params: object) -> ShopError:
    """Run ``sql`` in a savepoint, expect the database to refuse it; return the translation."""
    import pytest
    from sqlalchemy import exc, text

    from shopdb.errors import translate

    savepoint = conn.begin_nested()
    with pytest.raises(exc.DBAPIError) as caught:
        conn.execute(text(sql), params)
    savepoint.rollback()
    return translate(caught.value)
