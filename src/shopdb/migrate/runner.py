"""Versioned, reversible migrations: the seed's ``migrations/`` and ``diesel migration``.

Alembic does the work. shopdb adds what Alembic, diesel and Django leave to
their users:

* **One process at a time.** A PostgreSQL advisory lock, held on a connection
  of its own, serializes every run; a second process waits (at most
  ``migration_lock_wait`` seconds), then finds nothing pending.
* **One migration at a time, each in its own transaction.** A failure stops
  at the migration that failed; the ones before it stay applied and the next
  run starts from it.
* **Lock waits that do not queue the shop.** Statements wait for a lock at
  most ``ddl_lock_attempt`` at a time and are retried, for
  ``ddl_lock_timeout`` in all (:mod:`shopdb.migrate.lock_policy`); shopdb's own
  migrations hold such locks only for catalog changes
  (:mod:`shopdb.online_ddl`).
* **The application's migrations on top of shopdb's**, in their own
  directory and Alembic branch (:mod:`shopdb.migrate.sources`), applied and
  reverted in dependency order (:mod:`shopdb.migrate.graph`).
* **A history with checksums** (:mod:`shopdb.migrate.history`), so an
  applied migration edited afterwards is noticed.

Applications call :func:`run_pending` at start-up (the seed stack's
``embed_migrations!``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shopdb.config import Settings, load_settings
from shopdb.connect import Target, libpq_url, resolve_target
from shopdb.errors import MigrationError, ShopError, translate
from shopdb.migrate import history as migration_history
from shopdb.migrate.declared import read_declared
from shopdb.migrate.graph import (
    Migration,
    file_checksum,
    migrations_from,
    read_scripts,
    revert_order,
    upgrade_plan,
    version_heads,
)
from shopdb.migrate.lock import LOCK_KEY
from shopdb.migrate.lock_policy import LockPolicy
from shopdb.migrate.sources import Sources, alembic_config

if TYPE_CHECKING:
    import psycopg
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "HISTORY_TABLE",
    "LOCK_KEY",
    "Migration",
    "Migrator",
    "Step",
    "file_checksum",
    "migrator",
    "run_pending",
]

HISTORY_TABLE = migration_history.HISTORY_TABLE
VERSION_TABLE = migration_history.VERSION_TABLE
Direction = Literal["up", "down"]


@dataclass
class _Attempt:
    """One migration being applied or reverted, and what it did outside its transaction."""

    migration: Migration
    direction: Direction
    #: It left its transaction for online steps (shopdb.online_ddl), which retry themselves.
    outside: bool = False
    #: Some of those steps changed the schema, and stay changed.
    steps_done: bool = False

    def ran_outside(self) -> bool:
        """True once the migration left its transaction: it is not retried whole."""
        return self.outside


@dataclass(frozen=True)
class Step:
    """A migration applied (``up``) or reverted (``down``), and how long it took."""

    migration: Migration
    direction: Direction
    seconds: float


OnStep = Callable[[Step], None]


class Migrator:
    """Lists, applies, reverts and writes migrations for one database.

    ``target`` may be ``None`` for what needs no database: :meth:`scripts`
    and :meth:`generate` without autogenerate.
    """

    def __init__(
        self, target: Target | None, settings: Settings, *, sources: Sources | None = None
    ) -> None:
        self._target = target
        self.settings = settings
        self.sources = sources or Sources.from_settings(settings)
        self.policy = LockPolicy.from_settings(settings)

    @property
    def target(self) -> Target:
        """The database; raises :class:`MigrationError` when there is none."""
        if self._target is None:
            raise MigrationError("this needs a database, and none was given")
        return self._target

    # -- what there is -------------------------------------------------------

    def scripts(self) -> list[Migration]:
        """Every migration file, shopdb's and the application's, in the order they apply.

        The files are parsed, not imported (:mod:`~shopdb.migrate.declared`): no
        Alembic is loaded. Files that cannot be read so, or that do not make one
        history, are read by Alembic, whose answer or error is the reference.
        """
        declared = read_declared(self.sources)
        if declared is not None:
            try:
                return migrations_from(declared, self.sources)
            except MigrationError:
                pass  # Alembic reads them again and says what is wrong in its words
        return self.alembic_scripts()

    def alembic_scripts(self) -> list[Migration]:
        """:meth:`scripts` as Alembic reads them (importing every file)."""
        return read_scripts(self._script_directory(), self.sources)

    def migrations(self) -> list[Migration]:
        """Every migration, in order, with whether and when it was applied.

        Read with psycopg alone (``alembic_version`` and the history table): no
        SQLAlchemy or Alembic is loaded, so ``shopdb status`` starts fast.
        """
        with self._session() as conn:
            return self._state(conn)

    def pending(self) -> list[Migration]:
        """Migrations not yet applied, in the order they would run."""
        return [m for m in self.migrations() if not m.applied]

    # -- changing the database ----------------------------------------------

    def run(self, on_step: OnStep | None = None, *, upto: str | None = None) -> list[Step]:
        """Apply pending migrations (all, or those revision ``upto`` needs and itself),
        one at a time, each in its own transaction, under the lock."""
        with self._locked():
            state = self._prepare()
            return self._apply(upgrade_plan(state, _upto(upto)), "up", on_step)

    def revert(self, count: int | None = 1, on_step: OnStep | None = None) -> list[Step]:
        """Revert the last ``count`` applied migrations (``None``: all), newest first."""
        with self._locked():
            state = self._prepare()
            return self._apply(revert_order(state, count), "down", on_step)

    def redo(self, count: int | None = 1, on_step: OnStep | None = None) -> list[Step]:
        """Revert the last ``count`` applied migrations (``None``: all), then apply them again."""
        with self._locked():
            state = self._prepare()
            todo = revert_order(state, count)
            steps = self._apply(todo, "down", on_step)
            again = [m for m in state if m in todo]
            return steps + self._apply(again, "up", on_step)

    def sql(self, direction: Direction, count: int | None = 1) -> str:
        """The SQL that ``run`` (``up``) or ``revert`` (``down``) would execute; runs nothing.

        Everything a run sends is there: the session settings, the history
        table, each migration's transaction (or the statements it runs outside
        one) and its history row.
        """
        from alembic import command

        with self._session() as conn:
            state = self._state(conn)
        todo = upgrade_plan(state, None) if direction == "up" else revert_order(state, count)
        if not todo:
            return ""
        parts = [migration_history.CREATE + ";\n\n"]
        applied = {m.revision for m in state if m.applied}
        for migration in todo:
            heads = version_heads(state, applied)
            buffer = io.StringIO()
            config = self.alembic_config(
                url=libpq_url(self.target.url),
                output_buffer=buffer,
                on_version_apply=[self._recorder([migration], [])],
            )
            if direction == "up":
                start = _offline_start(migration, heads)
                command.upgrade(config, f"{start}:{migration.revision}", sql=True)
                applied.add(migration.revision)
            else:
                command.downgrade(config, f"{migration.revision}:{_below(migration)}", sql=True)
                applied.discard(migration.revision)
            parts.append(buffer.getvalue())
        return "".join(parts)

    def generate(self, name: str, *, autogenerate: bool = False) -> Path:
        """Write a new migration file; with ``autogenerate``, fill it from the difference
        between the models and the database (see :mod:`shopdb.migrate.files`).

        Without ``autogenerate``, no database is touched.
        """
        from shopdb.migrate.files import generate

        return generate(self, name, autogenerate=autogenerate)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection to the target database, for migrating or reading its schema."""
        engine = self._engine()
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    # -- internals -----------------------------------------------------------

    def _prepare(self) -> list[Migration]:
        with self._session() as conn:
            conn.execute(migration_history.CREATE)
            conn.commit()
            return self._state(conn)

    def _apply(
        self, todo: list[Migration], direction: Direction, on_step: OnStep | None
    ) -> list[Step]:
        steps: list[Step] = []
        for migration in todo:
            started = time.perf_counter()
            attempt = _Attempt(migration, direction)
            try:
                # A migration that ran steps outside a transaction retried each of
                # them already (shopdb.online_ddl); one that is a single transaction
                # is retried whole.
                self.policy.retry(partial(self._one, attempt), unless=attempt.ran_outside)
            except Exception as exc:
                raise _failure(exc, attempt, steps) from exc
            step = Step(migration, direction, time.perf_counter() - started)
            steps.append(step)
            if on_step is not None:
                on_step(step)
        return steps

    def _one(self, attempt: _Attempt) -> None:
        """Apply or revert exactly ``attempt.migration``, on a connection of its own."""
        from alembic import command

        from shopdb.migrate.state import run_state

        migration = attempt.migration
        ran: list[str] = []
        with self.connection() as conn:
            config = self.alembic_config(
                connection=conn, on_version_apply=[self._recorder([migration], ran)]
            )
            try:
                if attempt.direction == "up":
                    command.upgrade(config, migration.revision)
                else:
                    command.downgrade(config, _below(migration))
            finally:
                run = run_state(config.attributes)
                attempt.outside |= run.outside_transaction
                attempt.steps_done |= run.steps_done
        if ran != [migration.revision]:  # pragma: no cover (a guard on Alembic's resolution)
            raise MigrationError(f"Alembic ran {ran or 'nothing'} instead of {migration.revision}")

    @staticmethod
    def _recorder(expected: list[Migration], ran: list[str]) -> Callable[..., None]:
        by_revision = {m.revision: m for m in expected}

        def record(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
            # Runs inside the migration's own transaction, so the history row
            # commits or rolls back with the migration itself.
            revision = step.up_revision_id
            ran.append(revision)
            if revision not in by_revision:  # pragma: no cover (see _one)
                raise MigrationError(f"Alembic went on to run {revision}, which was not asked for")
            migration_history.record(ctx, by_revision[revision], applied=step.is_upgrade)

        return record

    def _state(self, conn: psycopg.Connection[Any]) -> list[Migration]:
        from shopdb.migrate.graph import applied_revisions

        scripts = self.scripts()
        heads = migration_history.heads(conn)
        known = {m.revision for m in scripts}
        for head in heads:
            if head not in known:
                raise MigrationError(
                    f"the database is at revision {head}, which is not among the migrations "
                    f"in {self.sources.describe()} (is SHOPDB_APP_MIGRATIONS_DIR set to the "
                    "application's migrations? is this shopdb older than the database?)"
                )
        applied = applied_revisions(scripts, heads)
        history = migration_history.read(conn)
        state = []
        for script in scripts:
            if script.revision not in applied:
                state.append(script)
                continue
            at, checksum = history.get(script.revision, (None, None))
            state.append(replace(script, applied=True, applied_at=at, applied_checksum=checksum))
        return state

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A psycopg connection for reading the migration state (no SQLAlchemy), whose
        errors become :class:`~shopdb.errors.ShopError`."""
        import psycopg

        try:
            with psycopg.connect(
                libpq_url(self.target.url),
                connect_timeout=int(self.settings.connect_timeout),
                application_name="shopdb-migrate",
            ) as conn:
                yield conn
        except ShopError:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reading, whose errors become :class:`~shopdb.errors.ShopError`."""
        try:
            with self.connection() as conn:
                yield conn
        except ShopError:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from shopdb.migrate.lock import hold

        with hold(self.target, self.settings):
            yield

    def _engine(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        # Session settings (lock_timeout, statement_timeout) are SET by env.py,
        # as statements, so that --sql prints them exactly as they run.
        return create_engine(
            self.target.url.sqlalchemy(),
            poolclass=NullPool,
            connect_args={
                "connect_timeout": int(self.settings.connect_timeout),
                "application_name": "shopdb-migrate",
            },
        )

    def _script_directory(self) -> ScriptDirectory:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config())

    def alembic_config(self, **attributes: Any) -> Config:
        """The Alembic ``Config`` for these migrations and settings, with ``attributes``."""
        return alembic_config(self.settings, sources=self.sources, **attributes)


def _upto(upto: str | None) -> str | None:
    return None if upto in (None, "head", "heads") else upto


def _below(migration: Migration) -> str:
    """The Alembic destination that reverts exactly ``migration`` (the applied head of its
    branch): one step down its branch."""
    return f"{migration.revision}@-1"


def _offline_start(migration: Migration, heads: list[str]) -> str:
    """The revision ``--sql`` starts from, so the version table lines are those a run writes."""
    for head in heads:
        if head in migration.requires:
            return head
    return heads[0] if heads else "base"


def _failure(exc: Exception, attempt: _Attempt, steps: list[Step]) -> MigrationError:
    """Which migration failed, why, and what stays done."""
    failed = attempt.migration
    up = attempt.direction == "up"
    verb, done = ("applying", "applied") if up else ("reverting", "reverted")
    cause = exc if isinstance(exc, ShopError) else translate(exc)
    kept = f"; the {len(steps)} before it stay {done}" if steps else ""
    if attempt.steps_done:
        what = (
            f"{verb} migration {failed.revision} ({failed.name}) failed: {cause}; "
            "the steps it finished outside a transaction stay done, and running it again "
            "completes it"
        )
    else:
        what = (
            f"{verb} migration {failed.revision} ({failed.name}) failed and was rolled back: "
            f"{cause}"
        )
    return MigrationError(what + kept)


def migrator(url: str | None = None, *, settings: Settings | None = None) -> Migrator:
    """A :class:`Migrator` for ``url`` (else ``DATABASE_URL``, else the embedded server)."""
    settings = settings or load_settings()
    return Migrator(resolve_target(url, settings), settings)


def run_pending(url: str | None = None, *, settings: Settings | None = None) -> list[Step]:
    """Apply pending migrations, shopdb's and the application's, from start-up code.

    Safe to call from every process of a deployment at once: one applies,
    the others wait on the lock and find nothing left to do.
    """
    return migrator(url, settings=settings).run()
