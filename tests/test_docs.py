"""The documentation says what shopdb does: its samples against real runs.

The Python blocks themselves run as tests of their own (see conftest.py at the
root); these tests hold the rest: a block left out says why, an excerpt is the
code it quotes, the ``shopdb`` transcripts are what the commands print on a
fresh database, and the migration example migrates.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from markdown_it import MarkdownIt

from shopdb.testing import DatabaseFactory

from .helpers import HEAD, PACKAGED, extra_migration, run_cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = (README, *sorted((ROOT / "docs").glob("*.md")))

#: What changes from run to run in a sample: when, how long, which server and where.
_VOLATILE = (
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"), "<when>"),
    (re.compile(r"\b\d+ ms\b"), "<ms>"),
)


@dataclass(frozen=True)
class Fence:
    """A fenced block of a Markdown file: its info string, text and first line (1-based)."""

    path: Path
    info: str
    text: str
    line: int

    @property
    def language(self) -> str:
        return (self.info.split() or [""])[0]


def fences(path: Path) -> list[Fence]:
    """Every fenced block of ``path``, in order (parsed as the block runner parses them)."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    return [
        Fence(path, token.info, token.content, token.map[0] + 1)
        for token in tokens
        if token.type == "fence" and token.map is not None
    ]


def _normalized(text: str) -> str:
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


def _python(path: Path) -> list[Fence]:
    return [fence for fence in fences(path) if fence.language in {"python", "py", "python3"}]


def test_the_documents_have_python_blocks_and_every_one_left_out_says_why() -> None:
    lines = {path: path.read_text(encoding="utf-8").splitlines() for path in DOCUMENTS}
    left_out = []
    for path in DOCUMENTS:
        for fence in _python(path):
            if "notest" not in fence.info.split()[1:]:
                continue
            above = lines[path][fence.line - 2].strip()
            assert re.fullmatch(r"<!-- illustration: .+ -->", above), (
                f"{path.name}:{fence.line}: a block that does not run needs "
                "`<!-- illustration: why -->` on the line above it"
            )
            left_out.append(fence)
    every = [fence for path in DOCUMENTS for fence in _python(path)]
    assert len(every) >= 10
    assert len(left_out) <= 2, "blocks are meant to run; only an excerpt may not"


def _definitions(code: str) -> dict[str, str]:
    """Each top-level function of ``code`` -> its syntax tree without docstring (or comments)."""
    found = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                node.body = body[1:]
            found[node.name] = ast.dump(node)
    return found


def test_an_excerpt_is_the_code_it_quotes() -> None:
    quoted = 0
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8").splitlines()
        for fence in _python(path):
            match = re.search(r"an excerpt of (\S+)", text[fence.line - 2])
            if match is None:
                continue
            shown = _definitions(fence.text)
            source = _definitions((ROOT / match.group(1)).read_text(encoding="utf-8"))
            assert shown, f"{path.name}:{fence.line}: the excerpt defines no function"
            for name, tree in shown.items():
                assert source.get(name) == tree, (
                    f"{path.name}:{fence.line}: {name} is not the one in {match.group(1)}"
                )
            quoted += 1
    assert quoted >= 1


def _status_sample() -> Fence:
    (sample,) = [
        fence
        for fence in fences(README)
        if fence.language == "" and re.search(r"^applied +\d+ of \d+ migrations", fence.text, re.M)
    ]
    return sample


def test_the_status_sample_is_what_status_prints(shopdb_server: DatabaseFactory) -> None:
    target = shopdb_server.create("shopdb_docs_status", migrated=True)
    result = run_cli("--database-url", shopdb_server.url(target.database), "status")
    assert result.returncode == 0, result.stderr
    shown = _normalized(_status_sample().text).splitlines()
    printed = _normalized(result.stdout).splitlines()
    # Which server, database and URL depend on where it runs; the rest must be the same.
    assert [line.split()[0] for line in shown] == [line.split()[0] for line in printed]
    keep = ("applied", "pending")
    assert [line for line in shown if line.startswith(keep)] == [
        line for line in printed if line.startswith(keep)
    ]
    assert f"latest {HEAD} " in _status_sample().text
    assert f"applied   {len(PACKAGED)} of {len(PACKAGED)} migrations" in _status_sample().text


def _transcript() -> Fence:
    (sample,) = [
        fence
        for fence in fences(README)
        if fence.language == "console" and "$ shopdb migration run\n" in fence.text
    ]
    return sample


def _commands(transcript: str) -> list[tuple[str, str]]:
    """``$ command`` lines of a console sample, each with the output shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for line in transcript.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in steps]


@pytest.mark.skipif(shutil.which("psql") is None, reason="the transcript calls psql")
def test_the_migration_transcript_runs_as_shown(
    shopdb_server: DatabaseFactory, tmp_path: Path
) -> None:
    target = shopdb_server.create("shopdb_docs_transcript")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env["DATABASE_URL"] = shopdb_server.url(target.database)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    steps = _commands(_transcript().text)
    assert len(steps) >= 5
    for command, shown in steps:
        result = subprocess.run(  # noqa: S602 - the README's own commands, as a user types them
            command,
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        printed = result.stdout.rstrip("\n")
        assert _normalized(printed) == _normalized(shown), f"$ {command}\n{result.stderr}"
        # `check` exits 1 for the drift it shows; every other command succeeds.
        assert result.returncode == (1 if command == "shopdb check" else 0), result.stderr
    assert f"[{len(PACKAGED)}/{len(PACKAGED)}] applied  {HEAD} " in _transcript().text


def _own_migrations_example() -> tuple[str, str]:
    """The README's two blocks of "Your own migrations": the models, then a migration."""
    blocks = _python(README)
    (models,) = [fence for fence in blocks if 'Table(\n    "reviews"' in fence.text]
    (migration,) = [fence for fence in blocks if "online_ddl.outside_transaction()" in fence.text]
    return models.text, migration.text


@pytest.mark.slow
def test_the_own_migrations_example_generates_and_migrates(
    shopdb_server: DatabaseFactory, tmp_path: Path
) -> None:
    models, migration = _own_migrations_example()
    (tmp_path / "myshop").mkdir()
    (tmp_path / "myshop" / "__init__.py").write_text("")
    (tmp_path / "myshop" / "models.py").write_text(models)
    target = shopdb_server.create("shopdb_docs_own", migrated=True)
    url = shopdb_server.url(target.database)
    env = {
        "SHOPDB_APP_MIGRATIONS_DIR": "migrations",
        "SHOPDB_APP_METADATA": "myshop.models:metadata",
        "PYTHONPATH": str(tmp_path),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("--database-url", url, *args, cwd=tmp_path, env=env)

    generated = cli("migration", "generate", "create_reviews", "--autogenerate")
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "migrations" / "app_0001_create_reviews.py").exists()
    # The second block is the upgrade() of the next migration, on the table the first made.
    header, _, _ = extra_migration("app_0002", "app_0001", "pass").partition("\n\ndef upgrade")
    (tmp_path / "migrations" / "app_0002_review_checks.py").write_text(
        f"{header}\n\n{migration}\n\ndef downgrade() -> None:\n    pass\n"
    )
    ran = cli("setup")
    assert ran.returncode == 0, ran.stderr
    with psycopg.connect(url) as conn:
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_reviews_created_at'"
        ).fetchone()
        check = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_reviews_body_length'"
        ).fetchone()
    assert index is not None
    assert "(created_at)" in index[0]
    assert check == (True,)


@pytest.mark.slow
def test_the_testing_examples_pass_under_the_plugin(
    shopdb_server: DatabaseFactory, tmp_path: Path
) -> None:
    blocks = [fence.text for fence in _python(README) if "def test_" in fence.text]
    assert len(blocks) == 2  # the sync fixtures, then the async ones
    (tmp_path / "test_readme.py").write_text("\n\n".join(blocks))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    # A database of its own on the test server: the plugin creates it, and drops it after.
    env["SHOPDB_TEST_DATABASE_URL"] = shopdb_server.url(f"shopdb_docs_plugin_{os.getpid()}")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
