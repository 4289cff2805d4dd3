"""The connection pool: the seed's ``config/db.rs``.

:func:`establish_connection_pool` keeps the seed's name and never panics: a
missing ``DATABASE_URL`` means the embedded server, and a bad or unreachable
URL raises one :class:`~shopdb.errors.ConnectionFailed` that names the
problem. Nothing connects at import.

One set of connections serves everyone: psycopg_pool's ``ConnectionPool``
holds them; the Store takes them with ``getconn``/``putconn``, and
SQLAlchemy (Core and ORM) borrows the same ones through a ``NullPool``
engine whose creator is the pool's ``getconn`` (psycopg_pool's documented
SQLAlchemy integration, ``close_returns=True``). The async twin is
:mod:`shopdb.async_db`.

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
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from shopdb.config import DRIVER, Settings, load_settings
from shopdb.connect import Target, libpq_url, resolve_target, wait_for_database
from shopdb.errors import Translating
from shopdb.pooling import (
    Healer,
    PoolStatus,
    connection_kwargs,
    pool_kwargs,
    pool_limits,
    status_from_stats,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow
    from psycopg_pool import ConnectionPool
    from sqlalchemy.engine import ExceptionContext

    from shopdb.embedded import EmbeddedServer
    from shopdb.replicas import Replicas

#: A pooled connection, returned to the pool when its ``with`` block ends
#: (the seed's ``r2d2::PooledConnection``).
DbConnection: TypeAlias = Connection
#: The psycopg connection the Store and :meth:`Pool.raw` use.
DriverConnection: TypeAlias = "psycopg.Connection[TupleRow]"

#: The isolation level of ORM and Core transactions: PostgreSQL's default.
TRANSACTIONAL = "READ COMMITTED"

__all__ = ["DbConnection", "Pool", "PoolStatus", "establish_connection_pool"]


class Pool:
    """A pool of PostgreSQL connections (the seed's ``Pool``).

    Use it as a context manager, or call :meth:`close`, to close every
    connection. Errors from the database inside any of its ``with`` blocks
    come out as :mod:`shopdb.errors` exceptions. Thread-safe.
    """

    def __init__(self, target: Target, settings: Settings) -> None:
        """Open a pool on ``target``; connections are made in the background."""
        from psycopg_pool import ConnectionPool

        self.settings = settings
        self.target = target
        #: Translates database errors, with this pool's numbers in a pool timeout.
        self.errors = Translating(pool_limits(settings))
        self._healer = Healer()
        self.driver: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            libpq_url(target.url),
            kwargs=connection_kwargs(settings),
            configure=self._healer.born,
            check=ConnectionPool.check_connection if settings.pool_pre_ping else None,
            **pool_kwargs(settings),
        )
        self.driver.open(wait=False)
        # SQLAlchemy borrows the same connections: NullPool, creator getconn,
        # and close() returns them (close_returns=True).
        self.engine: Engine = create_engine(
            f"{DRIVER}://",
            poolclass=NullPool,
            creator=self.driver.getconn,
            isolation_level=TRANSACTIONAL,
        )
        event.listen(self.engine, "handle_error", self._sqlalchemy_error)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        #: The streaming replicas the Store's catalog reads may go to (None: none configured).
        self.replicas: Replicas | None = None
        if settings.replica_urls is not None:
            from shopdb.replicas import Replicas

            try:
                self.replicas = Replicas(self, settings)
            except BaseException:
                self.driver.close()
                raise

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
        with self.errors, self.engine.connect() as conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[DbConnection]:
        """A pooled Core connection inside a transaction committed on success."""
        with self.errors, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session; the caller frames it (``with session.begin():``)."""
        with self.errors, self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """An ORM session inside a transaction committed on success, rolled back on error."""
        with self.errors, self._sessions.begin() as session:
            yield session

    def raw(self) -> RawConnection:
        """The pooled psycopg connection itself, in autocommit mode, as a context manager.

        For code that runs its own SQL at the driver's speed: each statement
        commits on its own unless wrapped in ``conn.transaction()``. Errors
        inside the block are the driver's own (wrap the block in
        ``with pool.errors:`` to get :mod:`shopdb.errors` exceptions). A
        connection found broken drains the pool: the others most likely died
        with it.
        """
        return RawConnection(self)

    def checkout(self) -> DriverConnection:
        """Take a psycopg connection (autocommit); give it back with :meth:`checkin`."""
        conn = self.driver.getconn()
        if not conn.autocommit:  # SQLAlchemy returns it transactional
            conn.autocommit = True
        return conn

    def checkin(self, conn: DriverConnection) -> None:
        """Return a connection taken with :meth:`checkout`, healing the pool if it died.

        A transaction left open is rolled back by psycopg_pool (with a warning).
        """
        if conn.broken:
            self.heal(conn)
        self.driver.putconn(conn)

    def heal(self, conn: object | None = None) -> None:
        """A connection died: replace every connection opened before now (once per burst)."""
        if self._healer.should_drain(conn):
            self.driver.drain()

    def _sqlalchemy_error(self, context: ExceptionContext) -> None:
        if context.is_disconnect:
            fairy = context.connection.connection if context.connection is not None else None
            self.heal(fairy.driver_connection if fairy is not None else None)

    def status(self) -> PoolStatus:
        """How many connections are open, idle and in use right now."""
        return status_from_stats(self.driver.get_stats())

    def close(self) -> None:
        """Close every connection (those in use close when they are returned)."""
        if self.replicas is not None:
            self.replicas.close()
        self.engine.dispose()
        self.driver.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RawConnection:
    """``with pool.raw() as conn``: a psycopg connection checked out, and back in."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def __enter__(self) -> DriverConnection:
        with self._pool.errors:
            self._conn = self._pool.checkout()
        return self._conn

    def __exit__(self, *exc_info: object) -> None:
        self._pool.checkin(self._conn)


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
    wrong URL fails here with a clear error instead of at first use; then,
    unless ``settings.check_schema`` is off, a database that lacks some of
    shopdb's migrations raises :class:`~shopdb.errors.SchemaOutdated`
    (:mod:`shopdb.schema_check`).
    """
    settings = settings or load_settings()
    target = resolve_target(url, settings, announce=announce)
    if verify:
        wait_for_database(target, settings)
    pool = Pool(target, settings)
    if verify and settings.check_schema:
        from shopdb.schema_check import check

        try:
            with pool.errors, pool.raw() as conn:
                check(conn, settings)
        except BaseException:
            pool.close()
            raise
    return pool
