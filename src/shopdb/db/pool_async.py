"""The connection pool, the seed's ``config/db.rs``: written once, async.

:mod:`shopdb.db.pool` (:class:`Pool`, :func:`establish_connection_pool`) is
generated from this module by ``tools/async_to_sync.py``; a test fails when
the two differ. Both keep the seed's promise and never panic: a missing
``DATABASE_URL`` means the embedded server, and a bad or unreachable URL
raises one :class:`~shopdb.errors.ConnectionFailed` that names the problem.
Nothing connects at import.

One set of connections serves everyone: psycopg_pool's (Async)ConnectionPool
holds them; the Store takes them with ``getconn``/``putconn``, and
SQLAlchemy (Core and ORM) borrows the same ones through a ``NullPool``
engine whose creator is the pool's ``getconn`` (psycopg_pool's documented
SQLAlchemy integration, ``close_returns=True``). A :class:`Pool` and an
:class:`AsyncPool` can live in one process, on one database.

::

    pool = establish_connection_pool()          # or: await establish_async_pool()
    with pool.connect() as conn:                # a DbConnection, returned on exit
        conn.execute(select(products))
    with pool.transaction() as session:         # an ORM Session, committed on success
        session.add(User(...))
    pool.close()
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from shopdb.config import DRIVER, Settings, load_settings
from shopdb.connect import Target, libpq_url, resolve_target, wait_for_database
from shopdb.db.concurrency_async import Background, to_thread
from shopdb.db.connections import (
    Healer,
    PoolStatus,
    connection_kwargs,
    pool_kwargs,
    pool_limits,
    status_from_stats,
)
from shopdb.errors import Translating

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow
    from psycopg_pool import AsyncConnectionPool
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

    from shopdb.connect.embedded import EmbeddedServer
    from shopdb.db.replicas_async import AsyncReplicas

#: A pooled SQLAlchemy connection, returned to the pool when its ``with`` block
#: ends (the seed's ``r2d2::PooledConnection``).
AsyncDbConnection: TypeAlias = "AsyncConnection"
#: The psycopg connection the Store and :meth:`raw` use.
AsyncDriverConnection: TypeAlias = "psycopg.AsyncConnection[TupleRow]"

#: The isolation level of ORM and Core transactions: PostgreSQL's default.
TRANSACTIONAL = "READ COMMITTED"

__all__ = [
    "AsyncDbConnection",
    "AsyncDriverConnection",
    "AsyncPool",
    "PoolStatus",
    "establish_async_pool",
]


class AsyncPool:
    """A pool of PostgreSQL connections (the seed's ``Pool``; ``AsyncPool`` for ``async def``).

    Build it with :func:`~shopdb.db.establish_connection_pool` (async:
    :func:`~shopdb.db.establish_async_pool`), or ``Pool.open(target,
    settings)``, or ``with Pool(target, settings)``, which opens it. A Pool
    serves any thread; an AsyncPool, the event loop it was opened in. Close
    it with :meth:`close` or by leaving the ``with`` block. Errors from the
    database inside any of its ``with`` blocks come out as
    :mod:`shopdb.errors` exceptions.
    """

    def __init__(self, target: Target, settings: Settings) -> None:
        """Prepare a pool on ``target``; :meth:`open` (or ``with``) opens it."""
        from psycopg_pool import AsyncConnectionPool
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
        from sqlalchemy.pool import NullPool

        self.settings = settings
        self.target = target
        #: Translates database errors, with this pool's numbers in a pool timeout.
        self.errors = Translating(pool_limits(settings))
        self._healer = Healer()
        self._background = Background()
        self.driver: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            libpq_url(target.url),
            kwargs=connection_kwargs(settings),
            configure=self._born,
            check=AsyncConnectionPool.check_connection if settings.pool_pre_ping else None,
            **pool_kwargs(settings),
        )
        # SQLAlchemy borrows the same connections: NullPool, creator getconn,
        # and close() returns them (close_returns=True).
        self.engine: AsyncEngine = create_async_engine(
            f"{DRIVER}://",
            poolclass=NullPool,
            async_creator=self.driver.getconn,
            isolation_level=TRANSACTIONAL,
        )
        event.listen(self.engine.sync_engine, "handle_error", self._sqlalchemy_error)
        event.listen(self.engine.sync_engine, "invalidate", self._sqlalchemy_invalidated)
        self._sessions = async_sessionmaker(bind=self.engine, expire_on_commit=False)
        #: The streaming replicas the Store's catalog reads may go to (None: none
        #: configured); probed from :meth:`open` on.
        self.replicas: AsyncReplicas | None = None
        if settings.replica_urls is not None:
            from shopdb.db.replicas_async import AsyncReplicas

            self.replicas = AsyncReplicas(self, settings)

    @classmethod
    async def open(cls, target: Target, settings: Settings) -> AsyncPool:
        """A pool on ``target``, open; connections are made in the background."""
        pool = cls(target, settings)
        await pool.start()
        return pool

    async def start(self) -> None:
        """Open the pool (connections are made in the background) and probe its replicas."""
        await self.driver.open(wait=False)
        if self.replicas is not None:
            try:
                await self.replicas.start()
            except BaseException:
                await self.close()
                raise

    async def _born(self, conn: object) -> None:
        self._healer.born(conn)

    @property
    def url(self) -> str:
        """The database URL with the password hidden."""
        return self.target.masked

    @property
    def embedded(self) -> EmbeddedServer | None:
        """The embedded server behind this pool, or None for an external one."""
        return self.target.embedded

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncDbConnection]:
        """A pooled Core connection; the caller commits (``conn.commit()``)."""
        with self.errors:
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncDbConnection]:
        """A pooled Core connection inside a transaction committed on success."""
        with self.errors:
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session; the caller frames it (``with session.begin():``)."""
        with self.errors:
            async with self._sessions() as session:
                yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """An ORM session inside a transaction committed on success, rolled back on error."""
        with self.errors:
            async with self._sessions.begin() as session:
                yield session

    def raw(self) -> AsyncRawConnection:
        """The pooled psycopg connection itself, in autocommit mode, as a context manager.

        For code that runs its own SQL at the driver's speed: each statement
        commits on its own unless wrapped in ``conn.transaction()``. Errors
        inside the block are the driver's own (wrap the block in
        ``with pool.errors:`` to get :mod:`shopdb.errors` exceptions). A
        connection found broken drains the pool: the others most likely died
        with it.
        """
        return AsyncRawConnection(self)

    async def checkout(self) -> AsyncDriverConnection:
        """Take a psycopg connection (autocommit); give it back with :meth:`checkin`.

        A pool timeout or an unreachable server raises a :mod:`shopdb.errors` exception.
        """
        with self.errors:
            conn = await self.driver.getconn()
            if not conn.autocommit:  # SQLAlchemy returns it transactional
                await conn.set_autocommit(True)
        return conn

    async def checkin(self, conn: AsyncDriverConnection) -> None:
        """Return a connection taken with :meth:`checkout`, healing the pool if it died.

        A transaction left open is rolled back by psycopg_pool (with a warning).
        """
        if conn.broken:
            await self.heal(conn)
        await self.driver.putconn(conn)

    async def heal(self, conn: object | None = None) -> None:
        """A connection died: replace every connection opened before now (once per burst).

        ``conn``: the one found dead (None: unknown), so that a connection born
        after the last drain does not drain the pool again.
        """
        if self._healer.should_drain(conn):
            await self.driver.drain()

    def _sqlalchemy_error(self, context: ExceptionContext) -> None:
        # A sync hook in both flavours: the drain is started from it (async: as a task).
        if context.is_disconnect:
            fairy = context.connection.connection if context.connection is not None else None
            if self._healer.should_drain(fairy.driver_connection if fairy is not None else None):
                self._background.spawn(self.driver.drain)

    def _sqlalchemy_invalidated(self, dbapi_connection: Any, record: object, exc: object) -> None:
        # SQLAlchemy closes a connection it found dead, and close_returns=True makes
        # close() give it back; but psycopg's close() does nothing on a connection that
        # is already closed, so a dead one would never come back and its slot in the
        # pool would be lost for good. Give it back here (the pool replaces it).
        conn = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        if conn is not None and conn.closed:
            self._background.spawn(lambda: self.driver.putconn(conn))

    def status(self) -> PoolStatus:
        """How many connections are open, idle and in use right now."""
        return status_from_stats(self.driver.get_stats())

    async def close(self) -> None:
        """Close every connection (those in use close when they are returned)."""
        if self.replicas is not None:
            await self.replicas.close()
        await self.engine.dispose()
        await self.driver.close()

    async def __aenter__(self) -> AsyncPool:
        if self.driver.closed:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncRawConnection:
    """``with pool.raw() as conn``: a psycopg connection checked out, and back in."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: AsyncPool) -> None:
        self._pool = pool

    async def __aenter__(self) -> AsyncDriverConnection:
        self._conn = await self._pool.checkout()
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pool.checkin(self._conn)


async def establish_async_pool(
    url: str | None = None,
    *,
    settings: Settings | None = None,
    verify: bool = True,
    announce: bool = True,
) -> AsyncPool:
    """Build the connection pool (the seed's ``establish_connection_pool``).

    ``url`` wins over ``DATABASE_URL`` (environment or ``.env``); with
    neither, the embedded server is started and announced on stderr. With
    ``verify`` (the default) one connection is made first, retrying for
    ``settings.connect_retry`` seconds while the server is unreachable, so a
    wrong URL fails here with a clear error instead of at first use (async:
    finding the server and waiting for it run in a worker thread, so the
    event loop keeps serving); then, unless ``settings.check_schema`` is off,
    a database that lacks some of shopdb's migrations raises
    :class:`~shopdb.errors.SchemaOutdated` (:mod:`shopdb.migrate.check`).
    """
    settings = settings or load_settings()
    target = await to_thread(resolve_target, url, settings, announce=announce)
    if verify:
        await to_thread(wait_for_database, target, settings)
    pool = await AsyncPool.open(target, settings)
    if verify and settings.check_schema:
        try:
            with pool.errors:
                async with pool.raw() as conn:
                    await check_schema_async(conn, settings)
        except BaseException:
            await pool.close()
            raise
    return pool


async def check_schema_async(conn: AsyncDriverConnection, settings: Settings) -> None:
    """The start-up check (:mod:`shopdb.migrate.check`) on a pooled connection: one query,
    two for a head this process cannot place; the files are read in a worker thread."""
    import psycopg

    from shopdb.migrate.check import HEADS, RECORDED, scripts, skipped, verdict

    every = await to_thread(scripts, settings)
    try:
        heads = await _column(conn, HEADS)
        if not verdict(every, heads, None):
            verdict(every, heads, set(await _column(conn, RECORDED)))
    except psycopg.errors.InsufficientPrivilege:
        skipped()


async def _column(conn: AsyncDriverConnection, query: str) -> list[str]:
    import psycopg

    try:
        cursor = await conn.execute(query)
        return [str(row[0]) for row in await cursor.fetchall()]
    except psycopg.errors.UndefinedTable:  # never migrated
        return []
