"""The migrations as one graph: their order, what is applied, what to run or revert next.

Pure functions over :class:`Migration` records; nothing here talks to the
database. A migration's prerequisites are its Alembic ``down_revision`` and
``depends_on``: an application's first revision depends on the shopdb
revision it builds on. Migrations run in an order where every prerequisite
comes first (shopdb's before the application's when either would do), and
are reverted newest first, never before what depends on them.
"""

from __future__ import annotations

import hashlib
import heapq
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shopdb.errors import MigrationError

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

    from shopdb.migrate.sources import Sources


@dataclass(frozen=True)
class Migration:
    """One migration file, and whether and when it was applied."""

    revision: str
    name: str
    path: Path
    checksum: str
    #: ``"shopdb"`` or ``"app"``: whose directory the file is in.
    source: str = "shopdb"
    #: Revisions that must be applied first (``down_revision`` and ``depends_on``).
    requires: tuple[str, ...] = ()
    #: Its ``down_revision`` alone.
    parents: tuple[str, ...] = ()
    #: Checksums of earlier versions of the file that leave the same schema.
    previous_checksums: frozenset[str] = field(default_factory=frozenset)
    applied: bool = False
    applied_at: datetime | None = None
    applied_checksum: str | None = None

    @property
    def edited(self) -> bool:
        """Applied, and its file changed since (a known earlier version does not count)."""
        return (
            self.applied
            and self.applied_checksum is not None
            and self.applied_checksum != self.checksum
            and self.applied_checksum not in self.previous_checksums
        )

    @property
    def applied_earlier_version(self) -> bool:
        """Applied from an earlier version of its file, which leaves the same schema."""
        return self.applied and self.applied_checksum in self.previous_checksums


def file_checksum(path: Path) -> str:
    """SHA-256 of a migration file, line endings normalized (a CRLF checkout is not an edit)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


@dataclass(frozen=True)
class Declared:
    """What one migration file declares, however it was read: by Alembic, which imports
    it (:func:`read_scripts`), or by :mod:`~shopdb.migrate.declared`, which parses it."""

    revision: str
    #: The file, as Alembic names it (resolved).
    path: Path
    #: Its ``down_revision``.
    parents: tuple[str, ...] = ()
    #: Its ``depends_on``, as revision ids.
    depends_on: tuple[str, ...] = ()
    #: Its ``previous_checksums``.
    previous_checksums: frozenset[str] = frozenset()


def read_scripts(script: ScriptDirectory, sources: Sources) -> list[Migration]:
    """Every migration file, in the order they apply, read by Alembic (which imports them)."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        with warnings.catch_warnings():
            # Alembic warns of a missing down_revision, then fails: the error says it.
            warnings.simplefilter("ignore", UserWarning)
            declared = [_declared(s, script) for s in script.walk_revisions()]
    except KeyError as exc:
        raise MigrationError(
            f"a migration refers to revision {exc.args[0]!r}, which is not among the "
            f"migrations in {sources.describe()}"
        ) from None
    except (RevisionError, CommandError) as exc:
        raise MigrationError(f"the migrations in {sources.describe()}: {exc}") from None
    return migrations_from(declared, sources)


def migrations_from(declared: Iterable[Declared], sources: Sources) -> list[Migration]:
    """The migrations these files declare, in the order they apply; each source (shopdb's,
    the application's) must be one line of history."""
    found = {d.revision: _migration(d, sources) for d in declared}
    for source in sorted({m.source for m in found.values()}):
        inside = {r for r, m in found.items() if m.source == source}
        parents = {p for r in inside for p in found[r].parents}
        heads = sorted(inside - parents)
        if len(heads) > 1:
            raise MigrationError(
                f"the {source} migrations have {len(heads)} heads ({', '.join(heads)}); "
                "merge them so there is one line of history"
            )
    return upgrade_order(found.values())


def upgrade_order(migrations: Iterable[Migration]) -> list[Migration]:
    """Every prerequisite before what requires it; shopdb's first when either would do."""
    by_revision = {m.revision: m for m in migrations}
    waiting = {r: {p for p in m.requires if p in by_revision} for r, m in by_revision.items()}
    ready = [_rank(m) for m in by_revision.values() if not waiting[m.revision]]
    heapq.heapify(ready)
    ordered: list[Migration] = []
    while ready:
        revision = heapq.heappop(ready)[-1]
        ordered.append(by_revision[revision])
        for other, needs in waiting.items():
            if revision in needs:
                needs.discard(revision)
                if not needs:
                    heapq.heappush(ready, _rank(by_revision[other]))
    if len(ordered) != len(by_revision):  # pragma: no cover (Alembic refuses cycles first)
        raise MigrationError("the migrations depend on each other in a cycle")
    return ordered


def applied_revisions(scripts: list[Migration], heads: Iterable[str]) -> set[str]:
    """The revisions applied in a database whose ``alembic_version`` holds ``heads``."""
    by_revision = {m.revision: m for m in scripts}
    applied: set[str] = set()
    todo = list(heads)
    while todo:
        revision = todo.pop()
        if revision in applied or revision not in by_revision:
            continue
        applied.add(revision)
        todo.extend(by_revision[revision].requires)
    return applied


def version_heads(scripts: list[Migration], applied: set[str]) -> list[str]:
    """What ``alembic_version`` holds when ``applied`` are: those nothing applied requires."""
    required = {r for m in scripts if m.revision in applied for r in m.requires}
    return [m.revision for m in scripts if m.revision in applied and m.revision not in required]


def revert_order(state: list[Migration], count: int | None) -> list[Migration]:
    """The last ``count`` applied migrations (``None``: all), newest first.

    Newest by when they were applied (then by position), and never one that
    an applied migration still requires: those go first.
    """
    applied = {m.revision: m for m in state if m.applied}
    position = {m.revision: i for i, m in enumerate(state)}
    chosen: list[Migration] = []
    while applied and (count is None or len(chosen) < count):
        required = {r for m in applied.values() for r in m.requires}
        free = [m for r, m in applied.items() if r not in required]
        latest = max(free, key=lambda m: (m.applied_at or datetime.min, position[m.revision]))
        chosen.append(latest)
        del applied[latest.revision]
    return chosen


def upgrade_plan(state: list[Migration], upto: str | None) -> list[Migration]:
    """Pending migrations in the order they run: all, or those ``upto`` needs and itself."""
    pending = [m for m in state if not m.applied]
    if upto is None:
        return pending
    if upto not in {m.revision for m in state}:
        raise MigrationError(f"there is no migration {upto!r}")
    needed = applied_revisions(state, [upto])
    return [m for m in pending if m.revision in needed]


def _rank(m: Migration) -> tuple[int, str, str]:
    return (0 if m.source == "shopdb" else 1, m.revision, m.revision)


def _migration(declared: Declared, sources: Sources) -> Migration:
    parents = declared.parents
    return Migration(
        revision=declared.revision,
        name=declared.path.stem.removeprefix(f"{declared.revision}_"),
        path=declared.path,
        checksum=file_checksum(declared.path),
        source=sources.source_of(declared.path),
        requires=parents + tuple(d for d in declared.depends_on if d not in parents),
        parents=parents,
        previous_checksums=declared.previous_checksums,
    )


def _declared(script: Script, directory: ScriptDirectory) -> Declared:
    return Declared(
        revision=script.revision,
        path=Path(script.path),
        parents=_revisions(script.down_revision),
        depends_on=tuple(_resolve(directory, d) for d in _revisions(script.dependencies)),
        previous_checksums=frozenset(getattr(script.module, "previous_checksums", ())),
    )


def _resolve(directory: ScriptDirectory, revision: str) -> str:
    """A ``depends_on`` entry (a revision or a branch label) as a revision id."""
    found = directory.get_revision(revision)
    if found is None:
        raise KeyError(revision)
    return found.revision


def _revisions(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
