"""The connection pool: the seed's ``config/db.rs``.

:func:`establish_connection_pool` keeps the seed's name and never panics: a
missing ``DATABASE_URL`` means the embedded server, and a bad or unreachable
URL raises one :class:`~shopdb.errors.ConnectionFailed` that names the
problem. The pool is SQLAlchemy's ``QueuePool`` over psycopg 3; nothing
connects at import.

::

    pool = establish_connection_pool()
    with pool.connect() as conn:              # a DbConnection, returned on exit
        conn.execute(select(products))
    with pool.transaction() as session:       # an ORM Session, committed on success
        session.add(User(...))
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from shopdb.config import Settings, load_settings
from shopdb.connect import Target, resolve_target, wait_for_database
from shopdb.errors import PoolTimeout, ShopError, translate

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow
    from sqlalchemy.pool import PoolProxiedConnection

    from shopdb.embedded import EmbeddedServer

#: A pooled connection, returned to the pool when its ``with`` block ends
#: (the seed's ``r2d2::PooledConnection``).
DbConnection: TypeAlias = Connection

_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE, without importing psycopg here
#: The isolation level of ORM and Core transactions: PostgreSQL's default.
TRANSACTIONAL = "READ COMMITTED"
_DB_ERRORS: tuple[type[BaseException], ...] | None = None


def _db_errors() -> tuple[type[BaseException], ...]:
    global _DB_ERRORS  # noqa: PLW0603 (computed once, on first use, to keep imports lazy)
    if _DB_ERRORS is None:
        import psycopg
        from sqlalchemy import exc as sa_exc

        _DB_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, psycopg.Error)
    return _DB_ERRORS


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot of the pool's connections."""

    size: int
    checked_in: int
    checked_out: int
    overflow: int


class Pool:
    """A pool of PostgreSQL connections (the seed's ``Pool``).

    Use it as a context manager, or call :meth:`close`, to close every
    connection. Errors from the database inside any of its ``with`` blocks
    come out as :mod:`shopdb.errors` exceptions.
    """

    def __init__(self, engine: Engine, settings: Settings, target: Target) -> None:
        """Wrap an engine made by :func:`make_engine`."""
        # Connections rest in autocommit mode, so the Store's one-statement
        # operations cost one round trip with nothing to switch per call.
        # `engine` is the transactional view everyone else uses: SQLAlchemy
        # turns autocommit off at checkout and back on at checkin.
        self._base = engine
        self.engine = engine.execution_options(isolation_level=TRANSACTIONAL)
        self.settings = settings
        self.target = target
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        """The database URL with the password hidden."""
        return self.target.masked

    @property
    def embedded(self) -> EmbeddedServer | None:
        """The embedded server behind this pool, or None for an external one."""
        return self.target.embedded

    @contextmanager
    def connect(self) -> Iterator[DbConnection]:
        """A pooled Core connection; the caller commits (``conn.commit()``)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except _db_errors() as exc:
            raise self.translate(exc) from exc

    @contextmanager
    def begin(self) -> Iterator[DbConnection]:
        """A pooled Core connection inside a transaction committed on success."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except _db_errors() as exc:
            raise self.translate(exc) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session; the caller frames it (``with session.begin():``)."""
        try:
            with self._sessions() as session:
                yield session
        except _db_errors() as exc:
            raise self.translate(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """An ORM session inside a transaction committed on success, rolled back on error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except _db_errors() as exc:
            raise self.translate(exc) from exc

    def raw(self) -> RawConnection:
        """The pooled psycopg connection itself, in autocommit mode, as a context manager.

        For code that runs its own SQL at the driver's speed (the Store):
        each statement commits on its own unless wrapped in
        ``conn.transaction()``. Errors inside the block are the driver's own
        (pass them to :func:`shopdb.errors.translate`). A connection found
        broken is discarded along with every idle one, since they most likely
        died together.
        """
        return RawConnection(self)

    def translate(self, exc: BaseException) -> ShopError:
        """:func:`shopdb.errors.translate`, with the pool's own numbers in a pool timeout."""
        from sqlalchemy.exc import TimeoutError as QueuePoolTimeout

        if isinstance(exc, QueuePoolTimeout):
            s = self.settings
            return PoolTimeout(
                f"couldn't get a connection after {s.pool_timeout:.2f} s: all "
                f"{s.pool_size + s.max_overflow} connections are in use "
                "(see SHOPDB_POOL_SIZE, SHOPDB_MAX_OVERFLOW, SHOPDB_POOL_TIMEOUT)"
            )
        return translate(exc)

    def _recover(self, record: Any = None, fairy: PoolProxiedConnection | None = None) -> None:
        # After one dead connection the others in the pool most likely died
        # with it (a restart, a failover): close this one, and mark every
        # connection opened before now to be replaced at its next checkout,
        # instead of handing them out one failure at a time. This is what
        # SQLAlchemy's own Connection does on a disconnect (Pool._invalidate).
        if record is not None:
            record.invalidate()
        self._base.pool._invalidate(fairy)  # type: ignore[arg-type]

    def status(self) -> PoolStatus:
        """How many connections are open, idle and in use right now."""
        pool = self._base.pool
        return PoolStatus(
            size=pool.size(),  # type: ignore[attr-defined]
            checked_in=pool.checkedin(),  # type: ignore[attr-defined]
            checked_out=pool.checkedout(),  # type: ignore[attr-defined]
            overflow=pool.overflow(),  # type: ignore[attr-defined]
        )

    def close(self) -> None:
        """Close every idle connection; connections in use close when returned."""
        self._base.dispose()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RawConnection:
    """``with pool.raw() as conn``: check a psycopg connection out, and back in.

    It takes a connection record straight from SQLAlchemy's ``QueuePool``
    (``_do_get``/``_do_return_conn``, the methods every SQLAlchemy pool
    implements) instead of through a ``_ConnectionFairy``: measured
    interleaved with psycopg_pool, the proxy's bookkeeping cost ~20 us of CPU
    per Store call, which with eight threads behind one GIL is a fifth of the
    throughput. The record still does what matters: it opens, recycles and
    replaces connections as the pool says (``pool_recycle``, invalidation
    after a disconnect). With ``pool_pre_ping`` on, checkouts take the
    regular path, which pings.
    """

    __slots__ = ("_conn", "_fairy", "_pool", "_record")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def __enter__(self) -> psycopg.Connection[TupleRow]:
        pool = self._pool
        queue: Any = pool._base.pool
        self._fairy: PoolProxiedConnection | None = None
        self._record: Any = None
        try:
            if pool.settings.pool_pre_ping:
                self._fairy = pool._base.raw_connection()
                dbapi = self._fairy.driver_connection
            else:
                self._record = record = queue._do_get()
                try:
                    dbapi = record.get_connection()
                except BaseException:
                    queue._do_return_conn(record)  # a failed connect holds no connection
                    raise
        except _db_errors() as exc:
            raise pool.translate(exc) from exc
        conn: psycopg.Connection[TupleRow] = dbapi  # type: ignore[assignment]
        if not conn.autocommit:  # only after a transactional checkout left it so
            conn.autocommit = True
        self._conn = conn
        return conn

    def __exit__(self, *exc_info: object) -> None:
        conn, record, fairy = self._conn, self._record, self._fairy
        if conn.closed or conn.broken:
            self._pool._recover(record, fairy)
        elif conn.info.transaction_status != _IDLE:
            conn.rollback()  # a transaction left open by the caller
        if record is not None:
            self._pool._base.pool._do_return_conn(record)
        elif fairy is not None:
            fairy.close()


def establish_connection_pool(
    url: str | None = None,
    *,
    settings: Settings | None = None,
    verify: bool = True,
    announce: bool = True,
) -> Pool:
    """Build the connection pool (the seed's ``establish_connection_pool``).

    ``url`` wins over ``DATABASE_URL`` (environment or ``.env``); with
    neither, the embedded server is started and announced on stderr. With
    ``verify`` (the default) one connection is made first, retrying for
    ``settings.connect_retry`` seconds while the server is unreachable, so a
    wrong URL fails here with a clear error instead of at first use.
    """
    settings = settings or load_settings()
    target = resolve_target(url, settings, announce=announce)
    if verify:
        wait_for_database(target, settings)
    return Pool(make_engine(target, settings), settings, target)


def make_engine(target: Target, settings: Settings) -> Engine:
    """The SQLAlchemy engine behind a :class:`Pool`, configured from ``settings``."""
    options = [
        f"-c statement_timeout={int(settings.statement_timeout * 1000)}",
        "-c idle_in_transaction_session_timeout="
        f"{int(settings.idle_in_transaction_timeout * 1000)}",
        # created_at is TIMESTAMP WITHOUT TIME ZONE filled by CURRENT_TIMESTAMP:
        # pin the session to UTC so every stored time means the same instant.
        "-c TimeZone=UTC",
    ]
    return create_engine(
        target.url,
        # Connections rest in autocommit mode; see Pool.__init__.
        isolation_level="AUTOCOMMIT",
        # No rollback at every checkin: a resting connection has no transaction
        # (SQLAlchemy's Connection ends its own, RawConnection rolls back one
        # left open), and that call cost ~13 us of CPU per Store operation.
        pool_reset_on_return=None,
        # The most recently used connection first: it is warm on both ends, and
        # surplus connections stay idle long enough for pool_recycle to retire.
        pool_use_lifo=True,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_pre_ping=settings.pool_pre_ping,
        pool_recycle=int(settings.pool_recycle),
        connect_args={
            "connect_timeout": int(settings.connect_timeout),
            "application_name": "shopdb",
            **({"options": " ".join(options)} if settings.startup_options else {}),
            # None disables server-side prepared statements (PgBouncer < 1.21).
            "prepare_threshold": 5 if settings.prepared_statements else None,
        },
    )
