"""Schema changes a live shop does not notice: the one place for how shopdb alters tables.

A migration that changes a table the application is using writes its changes
through :func:`outside_transaction`::

    from shopdb import online_ddl


    def upgrade() -> None:
        with online_ddl.outside_transaction() as ddl:
            ddl.add_check("products", "ck_products_price_scale", "scale(price) <= 2")
            ddl.create_index("ix_orders_user_id", "orders", ["user_id"])

Every operation holds a lock that blocks reads or writes only for a catalog
change, never while a table is scanned or an index built:

* a CHECK or FOREIGN KEY is added ``NOT VALID`` (new rows are checked at
  once), then ``VALIDATE CONSTRAINT`` scans the table under a lock that
  blocks no query, in a transaction of its own;
* an index is built ``CONCURRENTLY``; a UNIQUE constraint is built as a
  unique index that way and then attached with ``ADD CONSTRAINT ... USING
  INDEX``;
* a foreign key's ``ON DELETE`` changes by adding a validated twin with the
  new action, dropping the old one and giving the twin its name;
* indexes are dropped ``CONCURRENTLY``.
* existing rows get a new column's values in batches of ids, each batch
  committed on its own (:meth:`OnlineDDL.backfill`), never one long UPDATE.

Statements that must queue for a lock the application conflicts with wait
:attr:`~shopdb.migrate.lock_policy.LockPolicy.attempt` at a time and are retried
(:mod:`shopdb.migrate.lock_policy`); statements whose lock blocks no query may wait
the whole budget.

Each step first looks in the catalog and skips what is already done, so a
migration interrupted halfway (a lost connection, a lock that never came, a
unique index that found duplicates and was left INVALID) is simply run again.
Offline (``--sql``) the steps cannot look, so they print every statement, in
the order a first run executes them.

The block commits the migration's transaction so far when it opens (so open
it first), and the steps inside it are not rolled back when a later step
fails: the next run finishes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shopdb.errors import MigrationError
from shopdb.migrate.lock_policy import LockPolicy, set_lock_timeout
from shopdb.migrate.state import run_state

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

OnDelete = Literal["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]
#: pg_constraint.confdeltype for each ON DELETE action.
_CONFDELTYPE = {
    "NO ACTION": "a",
    "RESTRICT": "r",
    "CASCADE": "c",
    "SET NULL": "n",
    "SET DEFAULT": "d",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")

_CONSTRAINT = """
SELECT contype, convalidated, confdeltype FROM pg_constraint
WHERE conrelid = to_regclass(%(table)s) AND conname = %(name)s
"""
_INDEX = """
SELECT i.indisvalid, EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
FROM pg_index i WHERE i.indexrelid = to_regclass(%(name)s)
"""


@dataclass(frozen=True)
class _Constraint:
    kind: str
    validated: bool
    on_delete: str | None


@contextmanager
def outside_transaction() -> Iterator[OnlineDDL]:
    """Commit the migration's transaction so far, and run online DDL steps outside one."""
    from alembic import op

    context = op.get_context()
    with context.autocommit_block():
        ddl = OnlineDDL(context)
        if not ddl.offline:
            # What ran so far in this migration is committed now, and so is
            # every step below: a failure from here on is finished by a rerun,
            # not rolled back.
            ddl.run.outside_transaction = True
        yield ddl
        # The migration's own transaction (its version row) waits briefly again.
        ddl.wait_briefly()


class OnlineDDL:
    """The online operations, bound to one migration's context (see the module docs)."""

    def __init__(self, context: MigrationContext) -> None:
        self._context = context
        #: The run's shared state (a fresh one when there is no config).
        self.run = run_state(context.config.attributes if context.config is not None else {})
        self._policy: LockPolicy = self.run.lock_policy or LockPolicy()
        # The session's lock_timeout, as env.py set it: SET only when it changes.
        self._lock_timeout = self._policy.attempt

    @property
    def offline(self) -> bool:
        """True when printing SQL (``--sql``) rather than running it."""
        return bool(self._context.as_sql)

    # -- checks on existing rows ----------------------------------------------

    def refuse_rows(
        self, queries: Sequence[tuple[str, Sequence[str]]], *, found_already: Sequence[str] = ()
    ) -> None:
        """Stop before changing anything if existing rows break the new rules.

        Each query returns one row of counts, one per problem it names. They
        run outside any transaction and lock nothing a query needs (a SELECT
        takes ACCESS SHARE). Raises :class:`~shopdb.errors.MigrationError`
        naming every problem found and how many rows have it, after the
        problems the migration found itself (``found_already``: rules only
        Python can check, each a phrase such as ``"2 users ... (user 4 ...)"``).
        """
        found = list(found_already)
        for query, problems in queries:
            if self.offline:
                self._emit(query)
                continue
            row = self._fetch(query, {})
            counts = row if row is not None else (0,) * len(problems)
            found += [f"{n} {problem}" for n, problem in zip(counts, problems, strict=True) if n]
        if found:
            raise MigrationError(
                "existing rows break the new rules: "
                + "; ".join(found)
                + " (fix them, then run again)"
            )

    def rows(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of a read, run outside any transaction (it blocks nobody); none offline.

        For a migration that computes in Python what SQL cannot (a key to backfill):
        read a page of rows with this, write them back with :meth:`update_rows`.
        """
        if self.offline:
            return []
        result = self._connection().exec_driver_sql(query, dict(params))
        return [tuple(row) for row in result.all()]

    def update_rows(self, statement: str, params: Mapping[str, Any]) -> int:
        """Change some rows (not the schema) in a transaction of their own; how many.

        Row locks are all it takes, held for this one statement: keep it to a
        page of rows. It may wait the whole budget for a row an application
        transaction holds.
        """
        self._wait_up_to(self._policy.budget)
        if self.offline:
            return 0
        count = int(self._connection().exec_driver_sql(statement, dict(params)).rowcount)
        self.run.steps_done = True
        return count

    def note(self, text: str) -> None:
        """Say in ``--sql`` output what a step does that SQL cannot show (a comment)."""
        if self.offline:
            self._emit("-- " + " ".join(text.split()))

    # -- constraints ----------------------------------------------------------

    def add_check(self, table: str, name: str, condition: str) -> None:
        """``ADD CONSTRAINT name CHECK (condition) NOT VALID``, then ``VALIDATE``."""
        self.add_check_not_valid(table, name, condition)
        self.validate_check(table, name)

    def add_check_not_valid(self, table: str, name: str, condition: str) -> None:
        """``ADD CONSTRAINT name CHECK (condition) NOT VALID`` only: new and changed rows are
        checked from now on, the existing ones once :meth:`validate_check` validates it (for a
        migration that fixes the existing rows in between)."""
        _identifiers(table, name)
        if self._constraint(table, name) is None:
            self.brief(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")

    def validate_check(self, table: str, name: str) -> None:
        """``VALIDATE CONSTRAINT`` a constraint added NOT VALID, unless it is valid already."""
        _identifiers(table, name)
        existing = self._constraint(table, name)
        if existing is None or not existing.validated:
            self._validate(table, name)

    def add_foreign_key(
        self,
        table: str,
        name: str,
        columns: Sequence[str],
        referred: str,
        referred_columns: Sequence[str] = ("id",),
        *,
        on_delete: OnDelete = "NO ACTION",
    ) -> None:
        """``ADD CONSTRAINT name FOREIGN KEY ... NOT VALID``, then ``VALIDATE``."""
        _identifiers(table, name, referred, *columns, *referred_columns)
        existing = self._constraint(table, name)
        if existing is None:
            self.brief(
                _add_fk(
                    table,
                    name,
                    columns=columns,
                    referred=referred,
                    referred_columns=referred_columns,
                    on_delete=on_delete,
                )
            )
        if existing is None or not existing.validated:
            self._validate(table, name)

    def replace_foreign_key(
        self,
        table: str,
        name: str,
        columns: Sequence[str],
        referred: str,
        referred_columns: Sequence[str] = ("id",),
        *,
        on_delete: OnDelete,
    ) -> None:
        """Give foreign key ``name`` a new ``ON DELETE`` without re-validating it under lock.

        PostgreSQL cannot alter a foreign key's action in place, and dropping
        and re-adding it validates every row under a lock that blocks writes
        to both tables. Instead a twin with the new action is added ``NOT
        VALID`` and validated (blocking nobody), then the old key is dropped
        and the twin takes its name: two catalog changes. The key is enforced
        throughout.
        """
        _identifiers(table, name, referred, *columns, *referred_columns)
        twin = _twin(name)
        current = self._constraint(table, name)
        pending = self._constraint(table, twin)
        if current is not None and current.on_delete == _CONFDELTYPE[on_delete]:
            # Done already (a rerun): tidy up a twin left by an odd interruption.
            if pending is not None:
                self.brief(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {twin}")
            if not current.validated:
                self._validate(table, name)
            return
        if pending is None:
            self.brief(
                _add_fk(
                    table,
                    twin,
                    columns=columns,
                    referred=referred,
                    referred_columns=referred_columns,
                    on_delete=on_delete,
                )
            )
        if pending is None or not pending.validated:
            self._validate(table, twin)
        if current is not None or self.offline:
            self.brief(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
        self.brief(f"ALTER TABLE {table} RENAME CONSTRAINT {twin} TO {name}")

    def add_unique(self, table: str, name: str, columns: Sequence[str]) -> None:
        """A UNIQUE constraint: a unique index built concurrently, then ``USING INDEX``."""
        _identifiers(table, name, *columns)
        if self._constraint(table, name) is not None:
            return
        self.create_index(name, table, columns, unique=True)
        self.brief(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")

    def drop_constraint(self, table: str, name: str) -> None:
        """``DROP CONSTRAINT IF EXISTS`` (a catalog change; a UNIQUE one drops its index too)."""
        _identifiers(table, name)
        if self.offline or self._constraint(table, name) is not None:
            self.brief(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")

    # -- indexes --------------------------------------------------------------

    def create_index(
        self,
        name: str,
        table: str,
        columns: Sequence[str],
        *,
        unique: bool = False,
        where: str | None = None,
        using: str | None = None,
    ) -> None:
        """``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS``; ``columns`` may be expressions,
        ``using`` names an access method other than btree (``"gin"``).

        An INVALID index of that name, left by an interrupted or failed build,
        is dropped first. A build that fails (duplicates, for a unique index)
        drops what it left, so no half-built unique index refuses writes.
        """
        _identifiers(name, table, *([using] if using else []))
        if not self.offline:
            found = self._fetch(_INDEX, {"name": name})
            if found is not None and found[0]:
                return
            if found is not None:
                self.drop_index(name)
        statement = (
            f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY IF NOT EXISTS {name} "
            f"ON {table}{f' USING {using}' if using else ''} ({', '.join(columns)})"
            + (f" WHERE {where}" if where else "")
        )
        try:
            self.unblocking(statement)
        except Exception:
            if not self.offline:
                self._tidy_failed_index(name)
            raise

    def drop_index(self, name: str) -> None:
        """``DROP INDEX CONCURRENTLY IF EXISTS``."""
        _identifiers(name)
        self.unblocking(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")

    # -- rows -----------------------------------------------------------------

    def backfill(self, table: str, assignments: str, *, where: str, batch: int = 5_000) -> None:
        """``UPDATE table SET assignments WHERE where``, in batches of ``batch`` ids, each
        committed on its own: a row the shop writes waits at most for one batch.

        One ``DO`` block on the server walks the id range (``id`` must be the
        key) and commits after each batch, so ``--sql`` prints exactly what
        runs, and a psql user runs the same loop. ``where`` must exclude the
        rows already done (a rerun after an interruption skips them, and rows
        that a trigger keeps current meanwhile are not written twice). Waits
        for row locks as a catalog change waits (short attempts, retried).
        """
        _identifiers(table)
        if batch < 1:
            raise MigrationError("a backfill batch must hold at least one row")
        statement = (
            "DO $backfill$\n"
            "DECLARE\n"
            "    low bigint := 0;\n"
            "    top bigint;\n"
            "BEGIN\n"
            f"    SELECT max(id) INTO top FROM {table};\n"
            "    WHILE low < top LOOP\n"
            f"        UPDATE {table} SET {assignments}\n"
            f"        WHERE id > low AND id <= low + {batch} AND ({where});\n"
            "        COMMIT;\n"
            f"        low := low + {batch};\n"
            "    END LOOP;\n"
            "END\n"
            "$backfill$"
        )
        self.brief(statement)

    # -- internals ------------------------------------------------------------

    def _validate(self, table: str, name: str) -> None:
        # SHARE UPDATE EXCLUSIVE: reads and writes go on while it scans.
        self.unblocking(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")

    def brief(self, statement: str) -> None:
        """Run a catalog change whose lock blocks the application, but only for a moment.

        For ``ADD COLUMN`` without a default, ``CREATE TRIGGER``, ``CREATE
        TABLE`` with foreign keys to busy tables: each waits for its lock in
        short attempts (retried), so it never queues the application behind it.
        """
        self.wait_briefly()
        if self.offline:
            self._emit(statement)
            return
        self._policy.retry(lambda: self._run(statement))
        self.run.steps_done = True

    def unblocking(self, statement: str) -> None:
        """Run a statement whose lock blocks no query (it may wait the whole budget at once)."""
        self._wait_up_to(self._policy.budget)
        self._emit(statement)
        if not self.offline:
            self.run.steps_done = True

    def wait_briefly(self) -> None:
        """Set the session's lock_timeout back to one short attempt."""
        self._wait_up_to(self._policy.attempt)

    def _wait_up_to(self, seconds: float) -> None:
        if seconds != self._lock_timeout:
            self._emit(set_lock_timeout(seconds))
            self._lock_timeout = seconds

    def _emit(self, statement: str) -> None:
        if self.offline:
            from alembic import op

            op.execute(statement)
        else:
            self._run(statement)

    def _run(self, statement: str) -> None:
        self._connection().exec_driver_sql(statement)

    def _fetch(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        row = self._connection().exec_driver_sql(query, params).first()
        return None if row is None else tuple(row)

    def _constraint(self, table: str, name: str) -> _Constraint | None:
        if self.offline:
            return None
        row = self._fetch(_CONSTRAINT, {"table": table, "name": name})
        if row is None:
            return None
        return _Constraint(kind=str(row[0]), validated=bool(row[1]), on_delete=str(row[2]))

    def _tidy_failed_index(self, name: str) -> None:
        found = self._fetch(_INDEX, {"name": name})
        if found is not None and not found[0]:
            # Undoing the failed build is not a step done.
            done = self.run.steps_done
            self.drop_index(name)
            self.run.steps_done = done

    def _connection(self) -> Any:
        connection = self._context.connection
        if connection is None:  # pragma: no cover (online mode always has one)
            raise MigrationError("online DDL needs a database connection")
        return connection


def _add_fk(
    table: str,
    name: str,
    *,
    columns: Sequence[str],
    referred: str,
    referred_columns: Sequence[str],
    on_delete: OnDelete,
) -> str:
    action = "" if on_delete == "NO ACTION" else f" ON DELETE {on_delete}"
    return (
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({', '.join(columns)}) "
        f"REFERENCES {referred} ({', '.join(referred_columns)}){action} NOT VALID"
    )


def _twin(name: str) -> str:
    # Within PostgreSQL's 63-byte identifiers, whatever the original's length.
    return f"{name[:58]}_swap"


def _identifiers(*names: str) -> None:
    # Statements are built from these names: allow only plain lower-case identifiers.
    for name in names:
        if not _IDENTIFIER.match(name):
            raise MigrationError(f"{name!r} is not a plain lower-case SQL identifier")
