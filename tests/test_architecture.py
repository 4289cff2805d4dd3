"""The package tree keeps its shape: one direction of imports, no cycles, few top-level modules.

The layers are declared once, in pyproject.toml's ``[tool.importlinter]``
(docs/architecture.md draws them); these tests fail when an import runs
upward, when modules import each other in a circle, or when the top level
grows back into a heap.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shopdb"

#: Modules directly under src/shopdb: the vocabulary and the public entry points.
TOP_LEVEL = {
    "__init__",
    "__main__",
    "config",
    "limits",
    "names",
    "online_ddl",
    "passwords",
    "schema",
    "schemas",
    "models",
    "seeding",
    "testing",
}


def test_every_import_runs_down_the_layers() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = grimp.build_graph("shopdb", exclude_type_checking_imports=True, cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if module.startswith(f"{imported}.") or imported.startswith(f"{module}."):
                continue  # a package and its own modules (lazy re-exports)
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.append(" -> ".join((module, *back)))
    assert cycles == []


def test_the_top_level_holds_only_the_vocabulary_and_the_entry_points() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == TOP_LEVEL
    assert len(modules) <= 12


def _public_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_the_one_hand_written_pair_offers_the_same_names() -> None:
    # Everything else sync is generated (tests/test_generated.py); these two are the
    # flavour-specific lines, so each must offer what the other does.
    db = PACKAGE / "db"
    assert _public_names(db / "concurrency.py") == _public_names(db / "concurrency_async.py")


def test_every_import_the_docs_show_works() -> None:
    # The tree moved under the README's feet once; every path it or docs/ show stays.
    import importlib
    import re

    shown: set[tuple[str, str]] = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for module, names in re.findall(r"from (shopdb[\w.]*) import ([\w, ]+)", text):
            shown.update((module, n.strip()) for n in names.split(",") if n.strip())
        shown.update((m, "") for m in re.findall(r"`(shopdb(?:\.\w+)+)\.\w+\(", text))
    assert len(shown) > 20
    missing = []
    for module, name in sorted(shown):
        try:
            imported = importlib.import_module(module)
            if name and not hasattr(imported, name):
                importlib.import_module(f"{module}.{name}")
        except ImportError:
            missing.append(f"{module} {name}".strip())
    assert missing == []
