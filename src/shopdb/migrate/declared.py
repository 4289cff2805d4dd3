"""Reading what migration files declare without importing them (nor Alembic).

Alembic learns a file's ``revision``, ``down_revision``, ``depends_on`` and
``branch_labels`` by importing it, which imports Alembic, SQLAlchemy and
whatever the file imports: most of a second for ``shopdb status``. The
files declare them as plain literals, so parsing each file (``ast``) and
reading those assignments gives the same records (:class:`Declared`) for
:func:`~shopdb.migrate.graph.migrations_from`, finding the files as
Alembic's ``ScriptDirectory`` does.

Anything this cannot read exactly as Alembic would (a value that is not a
literal, a file that does not parse, a ``depends_on`` naming a branch label
or a revision prefix, a reference to a revision that is not there, a
revision id or branch label used twice) gives ``None``: the caller then asks
Alembic, whose answer (or error) is the reference. A test holds the two
readers to the same answer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

from shopdb.migrate.graph import Declared

if TYPE_CHECKING:
    from shopdb.migrate.sources import Sources

#: Which file names Alembic reads as migrations (its ``_only_source_rev_file``).
MIGRATION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
#: The module attributes read (Alembic reads the first four).
NAMES = ("revision", "down_revision", "branch_labels", "depends_on", "previous_checksums")


def read_declared(sources: Sources) -> list[Declared] | None:
    """What every migration file in ``sources`` declares; None when one cannot be read
    exactly as Alembic reads it (then ask Alembic)."""
    files = _files(sources)
    if files is None:
        return None
    labels: list[str] = []
    declared = []
    for path, values in files.items():
        revision = str(values["revision"])
        parents = _strings(values.get("down_revision"))
        depends = _strings(values.get("depends_on"))
        found = _strings(values.get("branch_labels"))
        previous = _strings(values.get("previous_checksums", ()), checksums=True)
        if parents is None or depends is None or found is None or previous is None:
            return None
        labels.extend(found)
        declared.append(Declared(revision, path, parents, depends, frozenset(previous)))
    revisions = {d.revision for d in declared}
    references = {r for d in declared for r in (*d.parents, *d.depends_on)}
    unique = len(revisions) == len(declared) and len(set(labels)) == len(labels)
    if not unique or revisions & set(labels) or not references <= revisions:
        return None
    return declared


def _files(sources: Sources) -> dict[Path, dict[str, object]] | None:
    """The assignments of every migration file, found as Alembic finds them: the files of
    each directory (not its subdirectories), by name, each real path once."""
    files: dict[Path, dict[str, object]] = {}
    for location in sources.locations():
        folder = location.absolute()
        if not folder.exists():
            continue
        for path in sorted(p for p in folder.iterdir() if not p.is_dir()):
            real = path.resolve()
            if real in files or not MIGRATION_FILE.match(path.name):
                continue
            values = _assignments(real)
            if values is None or not isinstance(values.get("revision"), str):
                return None
            files[real] = values
    return files


def _assignments(path: Path) -> dict[str, object] | None:
    """The module-level literal assignments of :data:`NAMES` in ``path``; None when one is
    bound any other way (not a literal, inside a block, imported, unpacked)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return None
    values: dict[str, object] = {}
    simple = 0
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in NAMES:
                try:
                    values[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return None
                simple += 1
    return values if simple == _bindings(tree) else None


def _bindings(tree: ast.Module) -> int:
    """How many times anything in the module binds one of :data:`NAMES`."""
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            count += node.id in NAMES
        elif isinstance(node, ast.alias):
            count += (node.asname or node.name).split(".")[0] in NAMES or node.name == "*"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            count += node.name in NAMES
        elif isinstance(node, ast.Global | ast.Nonlocal):
            count += any(name in NAMES for name in node.names)
    return count


def _strings(value: object, *, checksums: bool = False) -> tuple[str, ...] | None:
    """A revision reference (None, one id, a tuple or list of ids) or ``previous_checksums``
    (a tuple, list or set of strings) as a tuple; None for anything else."""
    if value is None:
        return None if checksums else ()
    if isinstance(value, str):
        return None if checksums else (value,)
    kinds = (tuple, list, set) if checksums else (tuple, list)
    if isinstance(value, kinds) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None
