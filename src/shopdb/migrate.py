"""Versioned, reversible migrations: the seed's ``migrations/`` and ``diesel migration``.

Alembic does the work. shopdb adds what Alembic, diesel and Django leave to
their users:

* **One process at a time.** A PostgreSQL advisory lock, held on a connection
  of its own, serializes every run; a second process waits (at most
  ``migration_lock_wait`` seconds), then finds nothing pending.
* **One transaction per migration.** A failure rolls back only the migration
  that failed; the ones before it stay applied and the next run starts clean.
* **DDL under ``lock_timeout``.** A migration waiting on a busy table fails
  after ``ddl_lock_timeout`` seconds instead of queueing the application
  behind it.
* **A history with checksums** (table ``shopdb_migrations``, beside Alembic's
  ``alembic_version``), so an applied migration edited afterwards is noticed.

Applications call :func:`run_pending` at start-up (the seed stack's
``embed_migrations!``).
"""

from __future__ import annotations

import hashlib
import io
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shopdb.config import Settings, load_settings
from shopdb.connect import Target, libpq_url, resolve_target, wait_for_database
from shopdb.errors import MigrationError, MigrationLockTimeout, ShopError, translate

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy.engine import Connection, Engine

#: Where the packaged migrations live.
PACKAGE_MIGRATIONS = Path(__file__).parent / "migrations"
HISTORY_TABLE = "shopdb_migrations"
VERSION_TABLE = "alembic_version"
#: Advisory lock key: "shopdb" in ASCII, then 1 for migrations.
LOCK_KEY = 0x73686F7064620001

_HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    revision VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    checksum VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file, and whether and when it was applied."""

    revision: str
    name: str
    path: Path
    checksum: str
    applied: bool = False
    applied_at: datetime | None = None
    applied_checksum: str | None = None

    @property
    def edited(self) -> bool:
        """Applied, and its file changed since (by checksum)."""
        return (
            self.applied
            and self.applied_checksum is not None
            and self.applied_checksum != self.checksum
        )


@dataclass(frozen=True)
class Step:
    """A migration applied (``up``) or reverted (``down``), and how long it took."""

    migration: Migration
    direction: Literal["up", "down"]
    seconds: float


OnStep = Callable[[Step], None]


def file_checksum(path: Path) -> str:
    """SHA-256 of a migration file, line endings normalized (a CRLF checkout is not an edit)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


class Migrator:
    """Lists, applies, reverts and writes migrations for one database."""

    def __init__(
        self,
        target: Target,
        settings: Settings,
        *,
        versions_dir: Path | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.versions_dir = (
            versions_dir or settings.migrations_dir or PACKAGE_MIGRATIONS / "versions"
        )

    # -- what there is -------------------------------------------------------

    def scripts(self) -> list[Migration]:
        """Every migration file, oldest first, without asking the database."""
        script = self._script_directory()
        heads = script.get_heads()
        if len(heads) > 1:
            raise MigrationError(
                f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
                "merge them so there is one line of history"
            )
        found = list(script.walk_revisions())
        found.reverse()
        return [_migration(s) for s in found]

    def migrations(self) -> list[Migration]:
        """Every migration, oldest first, with whether and when it was applied."""
        engine = self._engine()
        try:
            with engine.connect() as conn:
                return self._state(conn)
        except ShopError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        finally:
            engine.dispose()

    def pending(self) -> list[Migration]:
        """Migrations not yet applied, in the order they would run."""
        return [m for m in self.migrations() if not m.applied]

    # -- changing the database ----------------------------------------------

    def run(self, on_step: OnStep | None = None, *, upto: str = "head") -> list[Step]:
        """Apply pending migrations (all, or up to revision ``upto``), each in its own
        transaction, under the lock."""
        return self._change("up", None, on_step, upto=upto)

    def revert(self, count: int | None = 1, on_step: OnStep | None = None) -> list[Step]:
        """Revert the last ``count`` applied migrations (``None``: all), newest first."""
        return self._change("down", count, on_step)

    def redo(self, count: int | None = 1, on_step: OnStep | None = None) -> list[Step]:
        """Revert the last ``count`` applied migrations (``None``: all), then apply them again."""
        with self._locked():
            steps = self._change("down", count, on_step, locked=True)
            if not steps:
                return []
            target = steps[0].migration.revision
            return steps + self._change("up", None, on_step, locked=True, upto=target)

    def sql(self, direction: Literal["up", "down"], count: int | None = 1) -> str:
        """The SQL that ``run`` (``up``) or ``revert`` (``down``) would execute; runs nothing."""
        from alembic import command

        state = self.migrations()
        applied = [m for m in state if m.applied]
        current = applied[-1].revision if applied else "base"
        buffer = io.StringIO()
        config = self._config(url=libpq_url(self.target.url), output_buffer=buffer)
        if direction == "up":
            if len(applied) == len(state):
                return ""
            command.upgrade(config, f"{current}:head", sql=True)
        else:
            if not applied:
                return ""
            chosen = applied if count is None else applied[-count:]
            before = state[state.index(chosen[0]) - 1].revision if chosen[0] != state[0] else "base"
            command.downgrade(config, f"{current}:{before}", sql=True)
        return buffer.getvalue()

    def generate(self, name: str, *, autogenerate: bool = False) -> Path:
        """Write a new migration file named ``NNNN_<name>.py``; with ``autogenerate``,
        fill it from the difference between the models and the database."""
        from alembic import command

        slug = name.strip().lower().replace("-", "_").replace(" ", "_")
        if not slug.replace("_", "").isalnum() or not slug[0].isalpha():
            raise MigrationError(
                f"migration name {name!r} must be letters, digits and underscores, "
                "starting with a letter"
            )
        existing = self.scripts()
        numbers = [int(m.revision) for m in existing if m.revision.isdigit()]
        rev_id = f"{(max(numbers) if numbers else 0) + 1:04d}"
        if autogenerate:
            engine = self._engine()
            try:
                with engine.connect() as conn:
                    config = self._config(connection=conn)
                    script = command.revision(
                        config, message=slug, autogenerate=True, rev_id=rev_id
                    )
            finally:
                engine.dispose()
        else:
            script = command.revision(self._config(), message=slug, rev_id=rev_id)
        if script is None or isinstance(script, list):
            raise MigrationError("Alembic wrote no single migration file")
        return Path(script.path)

    # -- internals -----------------------------------------------------------

    def _change(
        self,
        direction: Literal["up", "down"],
        count: int | None,
        on_step: OnStep | None,
        *,
        locked: bool = False,
        upto: str = "head",
    ) -> list[Step]:
        from alembic import command

        with nullcontext() if locked else self._locked(), self.connection() as conn:
            conn.exec_driver_sql(_HISTORY_DDL)
            conn.commit()
            state = self._state(conn)
            conn.commit()
            todo, destination = _plan(state, direction, count, upto)
            if not todo:
                return []
            steps: list[Step] = []
            clock = [time.perf_counter()]
            by_revision = {m.revision: m for m in state}

            def record(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
                # Runs inside the migration's own transaction, so the history
                # row commits or rolls back with the migration itself.
                migration = by_revision[step.up_revision_id]
                _record_history(ctx.connection, migration, applied=step.is_upgrade)
                now = time.perf_counter()
                done = Step(migration, "up" if step.is_upgrade else "down", now - clock[0])
                clock[0] = now
                steps.append(done)
                if on_step is not None:
                    on_step(done)

            config = self._config(connection=conn, on_version_apply=[record])
            try:
                if direction == "up":
                    command.upgrade(config, destination)
                else:
                    command.downgrade(config, destination)
            except Exception as exc:
                raise _failure(exc, direction, todo, steps) from exc
            return steps

    def _state(self, conn: Connection) -> list[Migration]:
        from alembic.runtime.migration import MigrationContext

        scripts = self.scripts()
        heads = MigrationContext.configure(conn).get_current_heads()
        known = {m.revision for m in scripts}
        for head in heads:
            if head not in known:
                raise MigrationError(
                    f"the database is at revision {head}, which is not among the migrations "
                    f"in {self.versions_dir} (is this shopdb older than the database?)"
                )
        history: dict[str, tuple[datetime, str]] = {}
        if conn.dialect.has_table(conn, HISTORY_TABLE):
            rows = conn.exec_driver_sql(
                f"SELECT revision, applied_at, checksum FROM {HISTORY_TABLE}"
            )
            history = {row[0]: (row[1], row[2]) for row in rows}
        applied_upto = max((i for i, m in enumerate(scripts) if m.revision in heads), default=-1)
        state = []
        for i, script in enumerate(scripts):
            if i > applied_upto:
                state.append(script)
                continue
            at, checksum = history.get(script.revision, (None, None))
            state.append(replace(script, applied=True, applied_at=at, applied_checksum=checksum))
        return state

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the migration advisory lock on a connection of its own."""
        import psycopg

        wait_for_database(self.target, self.settings)
        deadline = time.monotonic() + self.settings.migration_lock_wait
        with psycopg.connect(libpq_url(self.target.url), autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
                if row and row[0]:
                    break
                if time.monotonic() >= deadline:
                    raise MigrationLockTimeout(
                        "another process kept the migration lock for more than "
                        f"{self.settings.migration_lock_wait:g} s "
                        "(raise SHOPDB_MIGRATION_LOCK_WAIT to wait longer)"
                    )
                time.sleep(0.1)
            try:
                yield
            finally:
                # Closing the connection would release it too; say so explicitly.
                with suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for migrating: no statement timeout, DDL under ``lock_timeout``."""
        engine = self._engine()
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def _engine(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        options = (
            f"-c lock_timeout={int(self.settings.ddl_lock_timeout * 1000)} "
            "-c statement_timeout=0 -c TimeZone=UTC"
        )
        return create_engine(
            self.target.url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": int(self.settings.connect_timeout),
                "application_name": "shopdb-migrate",
                "options": options,
            },
        )

    def _script_directory(self) -> ScriptDirectory:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._config())

    def _config(self, **attributes: Any) -> Config:
        from alembic.config import Config

        # Alembic's own chatter ("Generating ...") is silenced; we report ourselves.
        config = Config(stdout=io.StringIO(), cmd_opts=Namespace(quiet=True))
        config.set_main_option("script_location", str(PACKAGE_MIGRATIONS))
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", str(self.versions_dir))
        config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        config.attributes["include_name"] = include_name
        config.attributes.update(attributes)
        return config


def _plan(
    state: list[Migration], direction: Literal["up", "down"], count: int | None, upto: str
) -> tuple[list[Migration], str]:
    """The migrations to run, in order, and the Alembic revision to stop at."""
    if direction == "up":
        todo = [m for m in state if not m.applied]
        if upto == "head":
            return todo, "head"
        if upto not in {m.revision for m in state}:
            raise MigrationError(f"there is no migration {upto!r}")
        pending = [m.revision for m in todo]
        return (todo[: pending.index(upto) + 1] if upto in pending else []), upto
    applied = [m for m in state if m.applied]
    todo = list(reversed(applied if count is None else applied[-count:]))
    if not todo:
        return [], "base"
    oldest = state.index(todo[-1])
    return todo, (state[oldest - 1].revision if oldest > 0 else "base")


def _record_history(conn: Connection, migration: Migration, *, applied: bool) -> None:
    if applied:
        conn.exec_driver_sql(
            f"INSERT INTO {HISTORY_TABLE} (revision, name, checksum) "
            "VALUES (%(r)s, %(n)s, %(c)s) ON CONFLICT (revision) DO UPDATE "
            "SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, applied_at = now()",
            {"r": migration.revision, "n": migration.name, "c": migration.checksum},
        )
    else:
        conn.exec_driver_sql(
            f"DELETE FROM {HISTORY_TABLE} WHERE revision = %(r)s", {"r": migration.revision}
        )


def _failure(
    exc: Exception, direction: str, todo: list[Migration], steps: list[Step]
) -> MigrationError:
    """Which migration failed, why, and what stays done."""
    failed = todo[min(len(steps), len(todo) - 1)]
    verb, done = ("applying", "applied") if direction == "up" else ("reverting", "reverted")
    cause = exc if isinstance(exc, ShopError) else translate(exc)
    kept = f"; the {len(steps)} before it stay {done}" if steps else ""
    return MigrationError(
        f"{verb} migration {failed.revision} ({failed.name}) failed and was rolled back: "
        f"{cause}{kept}"
    )


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Autogenerate and drift checks look only at our own tables."""
    if type_ == "table":
        from shopdb.schema import metadata

        return name in metadata.tables
    return True


def _migration(script: Script) -> Migration:
    path = Path(script.path)
    stem = path.stem
    name = stem.split("_", 1)[1] if "_" in stem else stem
    return Migration(revision=script.revision, name=name, path=path, checksum=file_checksum(path))


def migrator(url: str | None = None, *, settings: Settings | None = None) -> Migrator:
    """A :class:`Migrator` for ``url`` (else ``DATABASE_URL``, else the embedded server)."""
    settings = settings or load_settings()
    return Migrator(resolve_target(url, settings), settings)


def run_pending(url: str | None = None, *, settings: Settings | None = None) -> list[Step]:
    """Apply pending migrations from application start-up code.

    Safe to call from every process of a deployment at once: one applies,
    the others wait on the lock and find nothing left to do.
    """
    return migrator(url, settings=settings).run()
