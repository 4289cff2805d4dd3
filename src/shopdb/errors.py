"""One error hierarchy for everything shopdb raises.

Every database error becomes one of these in :func:`translate`, keyed on
SQLSTATE and constraint name, never on message text. Messages name the field
and the problem; they never contain a password.

::

    ShopError
    ├── ConfigurationError          bad setting or URL
    ├── ConnectionFailed            could not talk to PostgreSQL
    │   ├── DatabaseUnavailable     unreachable, restarting, gone: retryable
    │   │   └── PoolTimeout         every connection stayed busy
    │   ├── AuthenticationFailed
    │   ├── DatabaseMissing
    │   └── PermissionDenied
    ├── InvalidInput                a field's value is refused (field, reason)
    │   ├── NotFound                no row with that id
    │   └── ImportFailed            a file to import has bad rows (problems); nothing imported
    ├── AlreadyExists               a unique field is taken (field)
    ├── DatabaseNotEmpty            seeding wants empty tables, and some hold rows
    ├── InsufficientInventory       checkout or add_to_cart wants more than stock
    ├── ConcurrencyConflict         deadlock/serialization failure after retries: retryable
    ├── QueryTimeout                statement_timeout or lock_timeout ran out: retryable
    └── MigrationError              a migration could not be applied or reverted
        └── MigrationLockTimeout    another process kept the migration lock
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class ShopError(Exception):
    """Base of every error shopdb raises on purpose."""

    #: True when the same call may succeed if simply tried again.
    retryable: bool = False


class ConfigurationError(ShopError):
    """A setting or the database URL is unusable."""


class ConnectionFailed(ShopError):
    """PostgreSQL could not be reached or refused us."""


class DatabaseUnavailable(ConnectionFailed):
    """The server is unreachable, starting, shutting down or went away mid-call."""

    retryable = True


class PoolTimeout(DatabaseUnavailable):
    """No pooled connection became free within ``pool_timeout``."""


class AuthenticationFailed(ConnectionFailed):
    """The server rejected the user name or password."""


class DatabaseMissing(ConnectionFailed):
    """The server answered, but the database does not exist."""

    def __init__(self, database: str | None) -> None:
        named = f"database {database!r}" if database else "the database"
        super().__init__(f"{named} does not exist (run `shopdb setup` to create it)")
        self.database = database


class PermissionDenied(ConnectionFailed):
    """The role lacks a privilege the operation needs."""


class InvalidInput(ShopError):
    """A value was refused; ``field`` names it and ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(InvalidInput):
    """No row has the given id. It is bad input too, so it is an :class:`InvalidInput`."""

    def __init__(self, entity: str, key: object = None, *, field: str | None = None) -> None:
        which = "that id" if key is None else f"id {key!r}"
        super().__init__(field or f"{entity}_id", f"no {entity} with {which}")
        self.entity = entity
        self.key = key


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in a file to import: where (1-based line, field if known) and why."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class ImportFailed(InvalidInput):
    """A file to import has bad rows, so nothing from it was imported.

    ``problems`` holds the first problems in file order (at most
    ``shopdb.bulk.MAX_PROBLEMS``); ``count`` is how many there were in all.
    """

    def __init__(self, problems: Sequence[RowProblem], count: int | None = None) -> None:
        self.problems = tuple(problems)
        self.count = len(self.problems) if count is None else count
        first = self.problems[0]
        super().__init__(first.field or "file", first.reason)
        more = self.count - 1
        also = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        self.args = (f"{first}{also}; nothing was imported",)


class AlreadyExists(ShopError):
    """A value that must be unique is taken; ``field`` names it."""

    def __init__(self, field: str, value: object = None) -> None:
        shown = "" if value is None else f" {value!r}"
        super().__init__(f"{field}: the value{shown} is already taken")
        self.field = field
        self.value = value


@dataclass(frozen=True)
class Shortage:
    """One product a cart wants more of than there is."""

    product_id: int
    wanted: int
    available: int


class InsufficientInventory(ShopError):
    """Stock is short for every product in ``shortages``; nothing was changed."""

    def __init__(self, shortages: Sequence[Shortage]) -> None:
        listed = ", ".join(
            f"product {s.product_id} (wanted {s.wanted}, available {s.available})"
            for s in shortages
        )
        super().__init__(f"insufficient inventory: {listed}")
        self.shortages = tuple(shortages)


class DatabaseNotEmpty(ShopError):
    """Seeding fills an empty database only, and ``tables`` already hold rows."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)
        verb = "holds" if len(self.tables) == 1 else "hold"
        super().__init__(
            f"the database is not empty ({', '.join(self.tables)} already {verb} rows); "
            "seed fills an empty database: run `shopdb database reset --yes` first"
        )


class ConcurrencyConflict(ShopError):
    """A deadlock or serialization failure persisted through every retry."""

    retryable = True


class QueryTimeout(ShopError):
    """``statement_timeout`` or ``lock_timeout`` ran out before the statement finished."""

    retryable = True


class MigrationError(ShopError):
    """A migration could not be applied or reverted."""


class MigrationLockTimeout(MigrationError):
    """Another process held the migration lock for longer than we may wait."""

    retryable = True


# SQLSTATE classes and codes; see https://www.postgresql.org/docs/current/errcodes-appendix.html
_UNAVAILABLE_STATES = frozenset(
    {
        "57P01",  # admin_shutdown: pg_terminate_backend or a fast shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up or shutting down
        "53300",  # too_many_connections
        "25P03",  # idle_in_transaction_session_timeout
        "25006",  # read_only_sql_transaction: a write reached a replica or a fenced primary
    }
)
_INPUT_STATES = {
    "22001": "is too long",
    "22003": "is out of range",
    "22P02": "is not a valid value",
    "22021": "contains a character the database cannot store (NUL)",
    "22P05": "contains a character the database cannot store",
    "2200H": "is out of range",
    "22023": "is not a valid value",
}


@dataclass(frozen=True)
class PoolLimits:
    """What a pool timeout message tells: how long the caller waited, for how many connections."""

    timeout: float
    connections: int


class Translating:
    """``with translating:``: a database error escaping the block leaves as a :class:`ShopError`.

    Every path to the database (the Store, sync and async, the pools' context
    managers, the CLI's commands) goes through one of these, so errors are
    translated in one place, always chained to the driver's error
    (``raise ... from exc``). Errors that are not the database's (and
    :class:`ShopError` itself) pass through untouched. Stateless and
    reentrant: one instance serves every thread and task.
    """

    __slots__ = ("limits",)

    def __init__(self, limits: PoolLimits | None = None) -> None:
        self.limits = limits

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and not isinstance(exc, ShopError) and _is_database_error(exc):
            raise translate(exc, self.limits) from exc


#: The translation without pool numbers, for code that holds no pool.
translating = Translating()

_DATABASE_ERRORS: tuple[type[BaseException], ...] | None = None


def _is_database_error(exc: BaseException) -> bool:
    global _DATABASE_ERRORS  # noqa: PLW0603 (computed once, on first use, to keep imports lazy)
    if _DATABASE_ERRORS is None:
        import psycopg
        from sqlalchemy import exc as sa_exc

        _DATABASE_ERRORS = (psycopg.Error, sa_exc.DBAPIError, sa_exc.TimeoutError)
    return isinstance(exc, _DATABASE_ERRORS)


def translate(exc: BaseException, limits: PoolLimits | None = None) -> ShopError:
    """Turn a driver or SQLAlchemy exception into the matching :class:`ShopError`.

    This is the one place that knows SQLSTATEs and constraint names. An
    exception that is already a :class:`ShopError` is returned unchanged.
    ``limits`` puts the pool's numbers into a :class:`PoolTimeout`'s message.
    """
    if isinstance(exc, ShopError):
        return exc
    import psycopg
    import psycopg_pool
    from sqlalchemy import exc as sa_exc

    inner: BaseException = exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        inner = exc.orig
        if exc.connection_invalidated and not isinstance(inner, psycopg_pool.PoolTimeout):
            return DatabaseUnavailable(f"the database connection was lost: {_first_line(inner)}")
    if isinstance(inner, psycopg_pool.PoolTimeout | sa_exc.TimeoutError):
        return _pool_timeout(inner, limits)
    if not isinstance(inner, psycopg.Error):
        return ShopError(_first_line(inner))
    return _translate_psycopg(inner)


def _pool_timeout(exc: BaseException, limits: PoolLimits | None) -> PoolTimeout:
    if limits is None:
        return PoolTimeout(_first_line(exc).replace(" sec", " s"))
    return PoolTimeout(
        f"couldn't get a connection after {limits.timeout:.2f} s: all "
        f"{limits.connections} connections are in use "
        "(see SHOPDB_POOL_SIZE, SHOPDB_MAX_OVERFLOW, SHOPDB_POOL_TIMEOUT)"
    )


def _translate_psycopg(exc: Any) -> ShopError:
    state: str | None = exc.sqlstate
    if state is None:
        # No SQLSTATE: the client side failed (socket closed, server gone) or
        # psycopg refused a value before sending it.
        import psycopg

        if isinstance(exc, psycopg.DataError):
            return InvalidInput("value", _first_line(exc))
        return DatabaseUnavailable(f"the database connection failed: {_first_line(exc)}")
    if state.startswith("23"):
        return _integrity(state, exc.diag)
    if state in _INPUT_STATES:
        return InvalidInput(exc.diag.column_name or "value", _INPUT_STATES[state])
    for states, error in _BY_STATE:
        if state in states or state[:2] in states:
            return error(_first_line(exc))
    return ShopError(f"database error {state}: {_first_line(exc)}")


def _integrity(state: str, diag: Any) -> ShopError:
    """Class 23: which constraint, hence which field."""
    from shopdb.schema import describe_constraint

    if state == "23502":
        return InvalidInput(diag.column_name or "value", "must not be null")
    known = describe_constraint(diag.constraint_name)
    if state == "23505":
        return AlreadyExists(known.field)
    if state == "23503":
        return NotFound(known.entity or "row", field=known.field)
    return InvalidInput(known.field, known.reason or "violates a check constraint")


def _missing(_: str) -> ShopError:
    return DatabaseMissing(None)


# (SQLSTATEs or two-letter classes, error to raise), tried in order.
_BY_STATE: list[tuple[frozenset[str], Callable[[str], ShopError]]] = [
    (frozenset({"40001", "40P01"}), ConcurrencyConflict),
    (frozenset({"57014", "55P03"}), QueryTimeout),
    (_UNAVAILABLE_STATES | {"08"}, DatabaseUnavailable),
    (frozenset({"28"}), AuthenticationFailed),
    (frozenset({"3D000"}), _missing),
    (frozenset({"42501"}), PermissionDenied),
]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
