"""Every sync module is generated from its async source: the generated files must be current."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from shopdb import AsyncStore, Store
from shopdb.store import AsyncShopper, Shopper

ROOT = Path(__file__).resolve().parents[1]


def test_every_sync_module_is_generated_from_its_async_source() -> None:
    result = subprocess.run(
        [sys.executable, "tools/async_to_sync.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_both_flavours_have_the_same_methods_and_arguments() -> None:
    for sync, asynchronous in ((Store, AsyncStore), (Shopper, AsyncShopper)):
        ours, theirs = _public(sync), _public(asynchronous)
        assert ours.keys() == theirs.keys()
        for name, signature in ours.items():
            assert list(signature.parameters) == list(theirs[name].parameters), name
