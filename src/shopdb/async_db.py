"""The async connection pool: :mod:`shopdb.db` for ``async def`` code.

:func:`establish_async_pool` is :func:`~shopdb.db.establish_connection_pool`
awaited: the same settings, ``.env``, embedded server when no URL, retry at
start and one-line errors. The pool is psycopg_pool's ``AsyncConnectionPool``;
SQLAlchemy's async engine (``create_async_engine`` on psycopg) borrows the
same connections through ``NullPool`` with the pool's ``getconn`` as
``async_creator``. A sync :class:`~shopdb.db.Pool` and an :class:`AsyncPool`
can live in one process, on one database.

::

    pool = await establish_async_pool()
    async with pool.transaction() as session:  # an AsyncSession, committed on success
        session.add(User(...))
    await pool.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

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
    from psycopg_pool import AsyncConnectionPool
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

    from shopdb.async_replicas import AsyncReplicas
    from shopdb.embedded import EmbeddedServer

#: The psycopg connection the AsyncStore and :meth:`AsyncPool.raw` use.
AsyncDriverConnection: TypeAlias = "psycopg.AsyncConnection[TupleRow]"

TRANSACTIONAL = "READ COMMITTED"

__all__ = ["AsyncPool", "establish_async_pool"]


class AsyncPool:
    """A pool of async PostgreSQL connections, for ``async def`` code.

    Build it with :func:`establish_async_pool` (or ``await AsyncPool.open(...)``)
    inside the event loop that will use it; close it with ``await
    pool.close()`` or ``async with``. Errors from the database inside any of
    its ``async with`` blocks come out as :mod:`shopdb.errors` exceptions.
    """

    def __init__(self, target: Target, settings: Settings) -> None:
        """Prepare a pool on ``target``; :meth:`open` opens it (in the running loop)."""
        from psycopg_pool import AsyncConnectionPool
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
        from sqlalchemy.pool import NullPool

        self.settings = settings
        self.target = target
        #: Translates database errors, with this pool's numbers in a pool timeout.
        self.errors = Translating(pool_limits(settings))
        self._healer = Healer()
        self._background: set[asyncio.Task[None]] = set()
        self.driver: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            libpq_url(target.url),
            kwargs=connection_kwargs(settings),
            configure=self._born,
            check=AsyncConnectionPool.check_connection if settings.pool_pre_ping else None,
            **pool_kwargs(settings),
        )
        self.engine: AsyncEngine = create_async_engine(
            f"{DRIVER}://",
            poolclass=NullPool,
            async_creator=self.driver.getconn,
            isolation_level=TRANSACTIONAL,
        )
        event.listen(self.engine.sync_engine, "handle_error", self._sqlalchemy_error)
        self._sessions = async_sessionmaker(bind=self.engine, expire_on_commit=False)
        #: The streaming replicas the AsyncStore's catalog reads may go to (None: none
        #: configured); probed from :meth:`open` on.
        self.replicas: AsyncReplicas | None = None
        if settings.replica_urls is not None:
            from shopdb.async_replicas import AsyncReplicas

            self.replicas = AsyncReplicas(self, settings)

    @classmethod
    async def open(cls, target: Target, settings: Settings) -> AsyncPool:
        """A pool on ``target``, open; connections are made in the background."""
        pool = cls(target, settings)
        await pool.driver.open(wait=False)
        if pool.replicas is not None:
            try:
                await pool.replicas.start()
            except BaseException:
                await pool.close()
                raise
        return pool

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
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled async Core connection; the caller commits (``await conn.commit()``)."""
        with self.errors:
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A pooled async Core connection inside a transaction committed on success."""
        with self.errors:
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An async ORM session; the caller frames it (``async with session.begin():``)."""
        with self.errors:
            async with self._sessions() as session:
                yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """An async ORM session in a transaction committed on success, rolled back on error."""
        with self.errors:
            async with self._sessions.begin() as session:
                yield session

    @asynccontextmanager
    async def raw(self) -> AsyncIterator[AsyncDriverConnection]:
        """The pooled psycopg ``AsyncConnection`` itself, in autocommit mode.

        Errors inside the block are the driver's own (wrap the block in
        ``with pool.errors:`` to get :mod:`shopdb.errors` exceptions).
        """
        conn = await self.checkout()
        try:
            yield conn
        finally:
            await self.checkin(conn)

    async def checkout(self) -> AsyncDriverConnection:
        """Take a psycopg connection (autocommit); give it back with :meth:`checkin`."""
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
        """A connection died: replace every connection opened before now (once per burst)."""
        if self._healer.should_drain(conn):
            await self.driver.drain()

    def _sqlalchemy_error(self, context: ExceptionContext) -> None:
        if context.is_disconnect and self._healer.should_drain(None):
            # handle_error is a sync hook: schedule the drain on the running loop
            # (and keep a reference, or the task may be collected before it runs).
            task = asyncio.get_running_loop().create_task(self.driver.drain())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def status(self) -> PoolStatus:
        """How many connections are open, idle and in use right now."""
        return status_from_stats(self.driver.get_stats())

    async def close(self) -> None:
        """Close every connection."""
        if self.replicas is not None:
            await self.replicas.close()
        await self.engine.dispose()
        await self.driver.close()

    async def __aenter__(self) -> AsyncPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def establish_async_pool(
    url: str | None = None,
    *,
    settings: Settings | None = None,
    verify: bool = True,
    announce: bool = True,
) -> AsyncPool:
    """Build the async pool, as :func:`~shopdb.db.establish_connection_pool` builds the sync one.

    ``url`` wins over ``DATABASE_URL`` (environment or ``.env``); with neither,
    the embedded server is started. With ``verify`` one connection is made
    first, retrying for ``settings.connect_retry`` seconds. Finding the
    server and waiting for it block, so they run in a worker thread and the
    event loop keeps serving. Then, unless ``settings.check_schema`` is off, a
    database that lacks some of shopdb's migrations raises
    :class:`~shopdb.errors.SchemaOutdated`.
    """
    settings = settings or load_settings()
    target = await asyncio.to_thread(resolve_target, url, settings, announce=announce)
    if verify:
        await asyncio.to_thread(wait_for_database, target, settings)
    pool = await AsyncPool.open(target, settings)
    if verify and settings.check_schema:
        from shopdb.schema_check import check_async

        try:
            with pool.errors:
                async with pool.raw() as conn:
                    await check_async(conn, settings)
        except BaseException:
            await pool.close()
            raise
    return pool
