"""Write ``src/shopdb/store/async_api.py`` from ``sync_api.py``: AsyncStore from Store.

The two APIs have the same methods, arguments, return models and errors;
each method is one line over the shared core. Rather than keep two copies
by hand, the async one is generated (as psycopg generates its sync code from
its async code): every ``def`` that runs an operation becomes ``async def``
with ``await``, and the sync names become their async twins.

    python tools/make_async_api.py          # write it
    python tools/make_async_api.py --check  # exit 1 if it is out of date (the test suite runs this)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

STORE = Path(__file__).resolve().parents[1] / "src" / "shopdb" / "store"
SOURCE, TARGET = STORE / "sync_api.py", STORE / "async_api.py"

HEADER = '''"""The async data API: :class:`AsyncStore`, and :class:`AsyncShopper`.

GENERATED from ``sync_api.py`` by ``tools/make_async_api.py``: do not edit
(``make async-api`` writes it again). The same methods, arguments, return
models and errors as :class:`~shopdb.store.Store`, each awaitable, over the
same core operations; they run on the async shell, :mod:`shopdb.store.aio`.
"""
'''

# (pattern, replacement), applied in order, on the source after its docstring.
RULES: list[tuple[str, str]] = [
    (r"from collections\.abc import Iterator", "from collections.abc import AsyncIterator"),
    (r"from contextlib import contextmanager", "from contextlib import asynccontextmanager"),
    (
        r"from shopdb\.store\.sync import BoundRunner, PooledRunner,",
        "from shopdb.store.aio import AsyncBoundRunner, AsyncPooledRunner,",
    ),
    (r"from shopdb\.db import Pool", "from shopdb.async_db import AsyncPool"),
    (r"\bPooledRunner\b", "AsyncPooledRunner"),
    (r"\bBoundRunner\b", "AsyncBoundRunner"),
    (r"psycopg\.Connection\b", "psycopg.AsyncConnection"),
    (r"(?<![\w.~])Pool\b", "AsyncPool"),
    (r"~shopdb\.db\.Pool\b", "~shopdb.async_db.AsyncPool"),
    (r"\bStore\b", "AsyncStore"),
    (r"\bShopper\b", "AsyncShopper"),
    (r"@contextmanager", "@asynccontextmanager"),
    (r"\bIterator\[", "AsyncIterator["),
    (
        r"(\n    )def (\w+)\((\s*self[^)]*)\)(.*?):\n((?:        .*\n|\n)*?)"
        r"(        (?:return self\._runner\.run|with transaction))",
        r"\1async def \2(\3)\4:\n\5\6",
    ),
    (r"return self\._runner\.run\(", "return await self._runner.run("),
    (r"        with transaction\(", "        async with transaction("),
]


def generate() -> str:
    """The async API's source, from the sync API's, formatted as ruff formats it."""
    source = SOURCE.read_text()
    body = source[source.index('"""', 3) + 3 :]  # drop the module docstring
    for pattern, replacement in RULES:
        body = re.sub(pattern, replacement, body)
    beside = Path(sys.executable).parent / "ruff"
    ruff = str(beside) if beside.exists() else shutil.which("ruff")
    if ruff is None:
        sys.exit("ruff is needed to format the generated file: run this with the project's venv")
    formatted = subprocess.run(  # noqa: S603 (our own ruff, our own source)
        [ruff, "format", "--stdin-filename", str(TARGET), "-"],
        input=HEADER + body,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> None:
    wanted = generate()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != wanted:
            print(f"{TARGET} is out of date: run `make async-api`", file=sys.stderr)
            sys.exit(1)
        return
    TARGET.write_text(wanted)


if __name__ == "__main__":
    main()
