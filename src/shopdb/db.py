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

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from shopdb.config import Settings, load_settings
from shopdb.connect import Target, resolve_target, wait_for_database
from shopdb.errors import PoolTimeout, ShopError, translate

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

    from shopdb.embedded import EmbeddedServer

#: A pooled connection, returned to the pool when its ``with`` block ends
#: (the seed's ``r2d2::PooledConnection``).
DbConnection: TypeAlias = Connection

_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE, without importing psycopg here
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
        self.engine = engine
        self.settings = settings
        self.target = target
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._recover_lock = threading.Lock()

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

    @contextmanager
    def raw(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """The pooled psycopg connection itself, in autocommit mode.

        For code that runs its own SQL at the driver's speed (the Store):
        each statement commits on its own unless wrapped in
        ``conn.transaction()``. Errors inside the block are the driver's own
        (pass them to :func:`shopdb.errors.translate`). A connection found
        broken is discarded along with every idle one, since they most likely
        died together.
        """
        pool = self.engine.pool
        try:
            fairy = self.engine.raw_connection()
        except _db_errors() as exc:
            raise self.translate(exc) from exc
        conn: psycopg.Connection[TupleRow] = fairy.driver_connection  # type: ignore[assignment]
        try:
            conn.autocommit = True
            yield conn
        finally:
            if conn.closed or conn.broken:
                fairy.invalidate()
                self._recover(pool)
            else:
                if conn.info.transaction_status != _IDLE:
                    conn.rollback()
                conn.autocommit = False
            fairy.close()

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

    def _recover(self, broken_pool: object) -> None:
        # After one dead connection the others idle in the pool died with it
        # (a restart, a failover): start a fresh pool instead of handing them
        # out one failure at a time. Only the first thread to notice does it.
        with self._recover_lock:
            if self.engine.pool is broken_pool:
                self.engine.dispose(close=True)

    def status(self) -> PoolStatus:
        """How many connections are open, idle and in use right now."""
        pool = self.engine.pool
        return PoolStatus(
            size=pool.size(),  # type: ignore[attr-defined]
            checked_in=pool.checkedin(),  # type: ignore[attr-defined]
            checked_out=pool.checkedout(),  # type: ignore[attr-defined]
            overflow=pool.overflow(),  # type: ignore[attr-defined]
        )

    def close(self) -> None:
        """Close every idle connection; connections in use close when returned."""
        self.engine.dispose()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_pre_ping=settings.pool_pre_ping,
        pool_recycle=int(settings.pool_recycle),
        connect_args={
            "connect_timeout": int(settings.connect_timeout),
            "application_name": "shopdb",
            "options": " ".join(options),
            # None disables server-side prepared statements (PgBouncer < 1.21).
            "prepare_threshold": 5 if settings.prepared_statements else None,
        },
    )
