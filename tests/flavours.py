"""The Store suite runs against both flavours: ``Store`` and ``AsyncStore``.

The tests are written once, as plain functions calling ``store.method(...)``.
For the async flavour, :class:`BlockingAsyncStore` hands each call to a real
``AsyncStore`` on a real event loop running in a thread of its own
(:class:`LoopThread`), and waits for its result. Calls from several threads
become concurrent tasks on that one loop, which is how an async web server
runs them: the 16-way races of the concurrency tests are 16 tasks racing on
one loop over an ``AsyncPool``.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Literal, TypeVar, cast

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from shopdb import AsyncStore, Store
from shopdb.config import Settings
from shopdb.connect import Target, libpq_url
from shopdb.db import AsyncPool, Pool
from shopdb.db.connections import connection_kwargs
from shopdb.store import AsyncShopper

Flavour = Literal["sync", "async"]
FLAVOURS: tuple[Flavour, ...] = ("sync", "async")
T = TypeVar("T")
#: Runs SQL on the connection a bound store uses: ``sql("SELECT ... %s", (1,))`` -> rows.
Sql = Callable[..., list[tuple[Any, ...]]]


class LoopThread:
    """An asyncio event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="shopdb-test-loop")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class BlockingAsyncStore:
    """An :class:`AsyncStore` called like a :class:`Store`: every call runs on the loop."""

    def __init__(self, store: AsyncStore | AsyncShopper, loop: LoopThread) -> None:
        self._store = store
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._store, name)
        loop = self._loop

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.iscoroutine(result):
                return loop.run(result)
            if isinstance(result, AsyncShopper):  # for_user(): its methods are awaitable too
                return BlockingAsyncStore(result, loop)
            return result

        return call

    def after(self, token: str | None) -> Store:
        """``store.after(token)``: no I/O, so called here rather than on the loop."""
        assert isinstance(self._store, AsyncStore)
        return as_store(self._store.after(token), self._loop)

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """``with store.transaction() as tx`` over ``async with``."""
        assert isinstance(self._store, AsyncStore)
        manager: AbstractAsyncContextManager[AsyncStore] = self._store.transaction()
        tx = self._loop.run(_enter(manager))
        try:
            yield as_store(tx, self._loop)
        except BaseException:
            if not self._loop.run(_exit(manager, *sys.exc_info())):
                raise
        else:
            self._loop.run(_exit(manager, None, None, None))


async def _enter(manager: AbstractAsyncContextManager[T]) -> T:
    return await manager.__aenter__()


async def _exit(manager: AbstractAsyncContextManager[Any], *exc_info: Any) -> bool | None:
    return await manager.__aexit__(*exc_info)


def as_store(store: AsyncStore, loop: LoopThread) -> Store:
    """``store`` behind a Store's interface (the same methods, run on ``loop``)."""
    return cast(Store, BlockingAsyncStore(store, loop))


@contextmanager
def pooled_store(
    flavour: Flavour,
    target: Target,
    settings: Settings,
    loop: LoopThread,
    *,
    retries: int = 5,
) -> Iterator[Store]:
    """A Store, or an AsyncStore behind a Store's interface, on a pool of its own;
    ``retries``: as the Store's argument (0: a deadlock surfaces instead of running again)."""
    if flavour == "sync":
        with Pool(target, settings) as pool:
            yield Store(pool, retries=retries)
        return
    async_pool = loop.run(AsyncPool.open(target, settings))
    try:
        yield as_store(AsyncStore(async_pool, retries=retries), loop)
    finally:
        loop.run(async_pool.close())


@contextmanager
def bound_store(
    flavour: Flavour,
    target: Target,
    settings: Settings,
    loop: LoopThread,
    *,
    as_role: str | None = None,
) -> Iterator[tuple[Store, Sql]]:
    """A store bound to a transaction that is rolled back at the end, and ``sql`` on it.

    With ``as_role`` (the app role, ``SHOPDB_TEST_AS_APP_ROLE``) the store's
    statements run as that role (``SET ROLE`` on the connection, whose user
    must be allowed to) and ``sql``'s as the connection's own user: raw SQL
    sets up and inspects what the Store may not touch (a password hash, the
    audit trail), in the same transaction.
    """
    kwargs = {**connection_kwargs(settings), "autocommit": False}
    url = libpq_url(target.url)
    become = [] if as_role is None else ['SET ROLE "' + as_role.replace('"', '""') + '"']
    own = [] if as_role is None else ["RESET ROLE"]
    if flavour == "sync":
        with psycopg.connect(url, **kwargs) as conn:
            conn.execute("SELECT 1")  # the transaction starts now: calls become savepoints
            for statement in become:
                conn.execute(statement)
            try:

                def sync_sql(query: str, params: Any = ()) -> list[tuple[Any, ...]]:
                    # In a failed transaction only a ROLLBACK (TO SAVEPOINT) may run.
                    failed = conn.info.transaction_status == TransactionStatus.INERROR
                    for statement in [] if failed else own:
                        conn.execute(statement)
                    cursor = conn.execute(query, params)
                    rows = cursor.fetchall() if cursor.description is not None else []
                    for statement in become:
                        conn.execute(statement)
                    return rows

                yield Store.bound(conn), sync_sql
            finally:
                conn.rollback()
        return
    aconn = loop.run(_connect_async(url, kwargs, become))
    try:

        def sql(query: str, params: Any = ()) -> list[tuple[Any, ...]]:
            return loop.run(_fetchall(aconn, query, params, own, become))

        yield as_store(AsyncStore.bound(aconn), loop), sql
    finally:
        loop.run(_rollback_and_close(aconn))


async def _connect_async(
    url: str, kwargs: dict[str, Any], become: list[str]
) -> psycopg.AsyncConnection[TupleRow]:
    conn = await psycopg.AsyncConnection.connect(url, **kwargs)
    await conn.execute("SELECT 1")
    for statement in become:
        await conn.execute(statement)
    return conn


async def _fetchall(
    conn: psycopg.AsyncConnection[TupleRow],
    query: str,
    params: Any,
    own: list[str],
    become: list[str],
) -> list[tuple[Any, ...]]:
    failed = conn.info.transaction_status == TransactionStatus.INERROR
    for statement in [] if failed else own:
        await conn.execute(statement)
    cursor = await conn.execute(query, params)
    rows = await cursor.fetchall() if cursor.description is not None else []
    for statement in become:
        await conn.execute(statement)
    return rows


async def _rollback_and_close(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    try:
        await conn.rollback()
    finally:
        await conn.close()


def run_async(loop: LoopThread, awaitable: Callable[[], Awaitable[T]]) -> T:
    """Run ``awaitable()`` on ``loop`` and wait for it."""

    async def main() -> T:
        return await awaitable()

    return loop.run(main())
