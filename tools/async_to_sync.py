"""Write every sync module from its async source: one way to write sync and async.

shopdb's I/O code (the pools, the replica pools, the Store's runner and its
API) is written once, ``async``, in a ``*_async.py`` module; its sync twin is
*generated* from it, as psycopg generates its sync code (``tools/async_to_sync.py``
there). The rewriting is token by token, by python-trio's ``unasync``: ``async``
and ``await`` go, ``AsyncPool`` becomes ``Pool``, ``__aenter__`` becomes
``__enter__``, and the names in :data:`RENAMES` become their sync twins;
comments and layout are kept. The few lines that cannot be rewritten by name
(a worker thread, a task on the loop) are one-line helpers in
``shopdb/db/concurrency_async.py`` and its hand-written sync twin.

    python tools/async_to_sync.py          # write the sync modules
    python tools/async_to_sync.py --check  # exit 1 if one is out of date (tests run this)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

SRC = Path(__file__).resolve().parents[1] / "src" / "shopdb"

#: (async source, sync module written from it), relative to src/shopdb.
PAIRS = [
    ("db/pool_async.py", "db/pool.py"),
    ("db/replicas_async.py", "db/replicas.py"),
    ("store/runner_async.py", "store/runner.py"),
    ("store/api_async.py", "store/api.py"),
]

#: Names whose sync twin is not the name without ``Async`` (unasync's default
#: turns ``AsyncX`` into ``SyncX``; shopdb's sync names are the bare ones).
RENAMES = {
    # shopdb's own
    "AsyncPool": "Pool",
    "AsyncStore": "Store",
    "AsyncShopper": "Shopper",
    "AsyncReplicas": "Replicas",
    "AsyncPooledRunner": "PooledRunner",
    "AsyncBoundRunner": "BoundRunner",
    "AsyncDriverConnection": "DriverConnection",
    "AsyncDbConnection": "DbConnection",
    "AsyncRawConnection": "RawConnection",
    "establish_async_pool": "establish_connection_pool",
    "pool_async": "pool",
    "replicas_async": "replicas",
    "runner_async": "runner",
    "api_async": "api",
    "concurrency_async": "concurrency",
    "check_schema_async": "check_schema",
    # psycopg and psycopg_pool
    "AsyncConnection": "Connection",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncCursor": "Cursor",
    "AsyncTransaction": "Transaction",
    # SQLAlchemy
    "AsyncEngine": "Engine",
    "AsyncSession": "Session",
    "create_async_engine": "create_engine",
    "async_sessionmaker": "sessionmaker",
    "async_creator": "creator",
    # the standard library
    "AsyncIterator": "Iterator",
    "asynccontextmanager": "contextmanager",
    "aclose": "close",
}

#: Where each name of SQLAlchemy's asyncio extension has its sync twin (after the renames).
SQLALCHEMY = {
    "create_engine": "sqlalchemy",
    "sessionmaker": "sqlalchemy.orm",
    "Session": "sqlalchemy.orm",
    "Connection": "sqlalchemy.engine",
    "Engine": "sqlalchemy.engine",
}
#: Text rewritten after the token pass, where more than a name differs.
TEXT = {
    "self.engine.sync_engine": "self.engine",
    "psycopg.AsyncConnection": "psycopg.Connection",
}
_ASYNCIO_IMPORT = re.compile(r"^( *)from sqlalchemy\.ext\.asyncio import ([\w, ]+)$", re.MULTILINE)

HEADER = "# GENERATED from {source} by tools/async_to_sync.py: edit that, not this.\n"


def generate(source: Path, out: Path) -> str:
    """The sync text of ``source`` (written to ``out`` in a scratch folder first)."""
    with tempfile.TemporaryDirectory() as scratch:
        a = Path(scratch, "_async", source.name)
        a.parent.mkdir()
        shutil.copy(source, a)
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=RENAMES)
        unasync.unasync_files([str(a)], [rule])
        text = Path(scratch, "_sync", source.name).read_text()
    for old, new in TEXT.items():
        text = text.replace(old, new)
    text = _ASYNCIO_IMPORT.sub(_sqlalchemy_imports, text)
    text = HEADER.format(source=source.relative_to(SRC.parent).as_posix()) + text
    return _formatted(text, out)


def _sqlalchemy_imports(match: re.Match[str]) -> str:
    indent, names = match.group(1), [n.strip() for n in match.group(2).split(",")]
    return "\n".join(f"{indent}from {SQLALCHEMY[name]} import {name}" for name in names)


def _formatted(text: str, out: Path) -> str:
    ruff = [sys.executable, "-m", "ruff"]
    fixed = subprocess.run(  # noqa: S603 (this interpreter's ruff, fixed arguments)
        [*ruff, "check", "--fix-only", "--quiet", "--stdin-filename", str(out), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return subprocess.run(  # noqa: S603 (as above)
        [*ruff, "format", "--quiet", "--stdin-filename", str(out), "-"],
        input=fixed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source, target in PAIRS:
        out = SRC / target
        text = generate(SRC / source, out)
        if out.exists() and out.read_text() == text:
            continue
        if check:
            stale.append(target)
        else:
            out.write_text(text)
            print(f"wrote src/shopdb/{target}")
    if stale:
        print("out of date (run python tools/async_to_sync.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
