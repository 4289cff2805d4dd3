"""Helpers for shopdb's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


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
