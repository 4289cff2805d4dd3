"""The Python blocks of README.md and docs/*.md run as tests (pytest-markdown-docs).

Each ```python block is one test, in file order. A block whose info string says
``continuation`` runs after the blocks before it (the plugin runs their code
again, then its own), so every test starts from nothing:

- **A fresh database.** Each block gets a new database with every migration
  applied (a copy of one migrated once per session), named by ``DATABASE_URL``,
  and dropped afterwards; the working folder is an empty temporary one (no
  ``.env``, and files a block writes go there). Ids start at 1, as the
  samples show.
- **Samples are checked.** A ``print(...)`` line followed by comment lines shows
  what it prints: the comments (without ``#`` and surrounding spaces, joined)
  must equal what that line printed (its lines stripped and joined), so a
  sample wrapped over two comment lines still matches.
- **No top-level await.** A block is a script a user could run: async code goes
  in ``async def main(): ...`` with ``asyncio.run(main())``.
- **Not run** only with ``notest`` in the info string, and an HTML comment just
  above the block saying why (``<!-- illustration: ... -->``); tests/test_docs.py
  checks both.

Only Markdown files are collected this way (not the docstrings of every module,
which the plugin's own ``--markdown-docs`` switch would add).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_markdown_docs.plugin import MarkdownInlinePythonItem, MarkdownTextFile

from shopdb.testing import DatabaseFactory

ROOT = Path(__file__).resolve().parent
#: The Markdown files whose Python blocks run.
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

_SAMPLE_START = re.compile(r"^(\s*)print\(")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect the Python blocks of :data:`DOCUMENTS` (the plugin's ``--markdown-docs``
    switch, when given, collects them itself)."""
    if file_path in DOCUMENTS and not parent.config.option.markdowndocs:
        collector: pytest.Collector = MarkdownTextFile.from_parent(parent, path=file_path)
        return collector
    return None


def samples(code: str) -> dict[int, str]:
    """Line number of each ``print(...)`` in ``code`` that is followed by comment lines
    -> the sample those comments show (a block's code keeps its Markdown line numbers)."""
    lines = code.split("\n")
    found: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        match = _SAMPLE_START.match(line)
        if match is None:
            continue
        comment_prefix = match.group(1) + "#"
        shown: list[str] = []
        for following in lines[number:]:
            if not following.startswith(comment_prefix):
                break
            shown.append(following[len(comment_prefix) :].strip())
        if shown:
            found[number] = "".join(shown)
    return found


class _Printed:
    """``print`` for the blocks: records what each line of a block printed (and prints
    nothing: the plugin runs blocks with pytest's capture off)."""

    def __init__(self, source: Path) -> None:
        self.source = str(source)
        self.by_line: dict[int, list[str]] = defaultdict(list)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        text = io.StringIO()
        builtins.print(*args, **{**kwargs, "file": text})
        caller = inspect.currentframe()
        caller = caller.f_back if caller is not None else None
        if caller is not None and caller.f_code.co_filename == self.source:
            self.by_line[caller.f_lineno].extend(text.getvalue().splitlines())


_current: _Printed | None = None


def pytest_markdown_docs_globals() -> dict[str, Callable[..., None]]:
    """The globals every block starts with: the recording ``print`` of the running test."""
    return {} if _current is None else {"print": _current}


def _has_top_level_await(code: str) -> bool:
    compiled = compile(code, "<block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return bool(compiled.co_flags & inspect.CO_COROUTINE)


@pytest.fixture(scope="session")
def markdown_template(shopdb_server: DatabaseFactory) -> str:
    """A migrated database the blocks' databases are copied from."""
    return shopdb_server.create("shopdb_docs_template", migrated=True).database


@pytest.fixture(autouse=True)
def markdown_block_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a Markdown block: a fresh migrated database in ``DATABASE_URL``, an empty
    working folder, and its samples checked. Other tests: nothing."""
    item = request.node
    if not isinstance(item, MarkdownInlinePythonItem):
        yield
        return
    if _has_top_level_await(item.code):
        pytest.fail(
            "a block may not await at the top level: put the code in `async def main()` "
            "and end with `asyncio.run(main())`, as a script would",
            pytrace=False,
        )
    import psycopg
    from psycopg import sql

    # Asked for here, not as arguments: other tests (Hypothesis' among them) get no
    # function-scoped fixtures from this one.
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    server: DatabaseFactory = request.getfixturevalue("shopdb_server")
    template: str = request.getfixturevalue("markdown_template")
    name = f"shopdb_docs_{item.path.stem.lower()}_{item.start_line}_{secrets.token_hex(4)}"
    with psycopg.connect(server.url(str(server.server_url.database)), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    monkeypatch.setenv("DATABASE_URL", server.url(name))
    monkeypatch.chdir(tmp_path)
    try:
        yield
    finally:
        server.drop(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run a Markdown block with the recording ``print``, then check its samples."""
    global _current  # noqa: PLW0603 - the plugin's globals hook takes no arguments
    if not isinstance(item, MarkdownInlinePythonItem):
        return (yield)
    _current = printed = _Printed(item.path)
    try:
        result = yield
    finally:
        _current = None
    shown = samples(item.code)
    for line in sorted(shown):
        output = "".join(part.strip() for part in printed.by_line.get(line, []))
        if output != shown[line]:
            pytest.fail(
                f"{item.path.name}:{line}: the sample shows\n  {shown[line]}\n"
                f"but the line printed\n  {output or '(nothing)'}"
            )
    return result
