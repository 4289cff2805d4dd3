"""squawk, the PostgreSQL migration linter, over the SQL of shopdb's migrations from 0005 on.

Each migration is rendered as ``--sql`` prints it (session settings,
transactions, the statements outside them), upgrade and downgrade, and
squawk must find nothing but the rules ``.squawk.toml`` allows, each with its
reason.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from alembic import command

from shopdb.config import Settings
from shopdb.migrate.sources import alembic_config

from .helpers import PACKAGED

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".squawk.toml"
#: The first migration that changes tables a live shop already uses.
FIRST_CHECKED = "0005"
CHECKED = [(revision, name) for revision, name in PACKAGED if revision >= FIRST_CHECKED]


def _squawk() -> str:
    beside_python = Path(sys.executable).parent / "squawk"
    found = str(beside_python) if beside_python.exists() else shutil.which("squawk")
    assert found, "squawk is not installed: `make install` installs squawk-cli"
    return found


def _render(directory: Path) -> list[Path]:
    """Each checked migration's upgrade and downgrade SQL, one file each."""
    settings = Settings(_env_file=None)
    files = []
    parents = {revision: PACKAGED[i - 1][0] for i, (revision, _) in enumerate(PACKAGED) if i}
    for revision, name in CHECKED:
        for direction in ("upgrade", "downgrade"):
            buffer = io.StringIO()
            config = alembic_config(
                settings, url="postgresql+psycopg://squawk@localhost/squawk", output_buffer=buffer
            )
            if direction == "upgrade":
                command.upgrade(config, f"{parents[revision]}:{revision}", sql=True)
            else:
                command.downgrade(config, f"{revision}:{revision}@-1", sql=True)
            path = directory / f"{revision}_{name}.{direction}.sql"
            path.write_text(buffer.getvalue())
            files.append(path)
    return files


def _findings(files: list[Path], config: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [_squawk(), "--reporter", "json", "--config", str(config), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    found: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _render(tmp_path_factory.mktemp("squawk"))


def test_squawk_finds_nothing_the_config_does_not_allow(rendered: list[Path]) -> None:
    assert len(rendered) == 2 * len(CHECKED)
    findings = _findings(rendered, CONFIG)
    shown = [f"{Path(str(f['file'])).name}:{f['line']} {f['rule_name']}" for f in findings]
    assert shown == []


def test_every_rule_the_config_allows_is_still_needed(rendered: list[Path], tmp_path: Path) -> None:
    allowed = tomllib.loads(CONFIG.read_text())["excluded_rules"]
    bare = tmp_path / "squawk.toml"
    bare.write_text('pg_version = "15.0"\n')
    occurring = {str(f["rule_name"]) for f in _findings(rendered, bare)}
    assert occurring == set(allowed)


def test_the_rendered_sql_sets_its_timeouts_and_builds_indexes_concurrently(
    rendered: list[Path],
) -> None:
    for path in rendered:
        sql = path.read_text()
        assert sql.startswith("SET lock_timeout = '"), path.name
        assert "SET statement_timeout = 0;" in sql
        assert re.findall(r"(?:CREATE (?:UNIQUE )?|DROP )INDEX (?!CONCURRENTLY)\w+", sql) == []
