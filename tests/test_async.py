"""What only the async API has: native ``async def`` use, as an application writes it.

The Store suite itself runs against AsyncStore too (``tests/flavours.py``);
these tests use the async pool, AsyncStore's transactions, the pytest
plugin's async fixtures and the event loop directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shopdb import AsyncStore, Store, passwords
from shopdb.db import AsyncPool, Pool, establish_async_pool
from shopdb.errors import ConnectionFailed, InsufficientInventory, NotFound, PoolTimeout
from shopdb.models import Product
from shopdb.testing import DatabaseFactory

pytestmark = pytest.mark.anyio

#: A hang guard: how long a test waits for an event before it fails.
HANG_GUARD = 60.0


@pytest.fixture
async def async_pool(committed_pool: Pool) -> AsyncIterator[AsyncPool]:
    """An AsyncPool on :func:`committed_pool`'s database (writes commit)."""
    async with await AsyncPool.open(committed_pool.target, committed_pool.settings) as pool:
        yield pool


async def test_the_plugins_async_store_is_rolled_back_with_the_test(
    async_store: AsyncStore, async_db_connection: AsyncConnection
) -> None:
    tea = await async_store.create_product("Async tea", "4.50", 3)
    # The store and the connection share one transaction.
    found = await async_db_connection.execute(
        text("SELECT name FROM products WHERE id = :id"), {"id": tea.id}
    )
    assert found.scalar_one() == "Async tea"
    with pytest.raises(InsufficientInventory):
        await async_store.adjust_inventory(tea.id, -4)
    assert (await async_store.get_product(tea.id)).inventory_count == 3


async def test_the_plugins_async_session_commits_into_savepoints(
    async_db_session: AsyncSession,
) -> None:
    async_db_session.add(Product(name="Kettle", price=Decimal("24.90"), inventory_count=5))
    await async_db_session.commit()  # a savepoint, rolled back with the test
    kettle = (await async_db_session.scalars(select(Product).where(Product.name == "Kettle"))).one()
    assert kettle.price == Decimal("24.90")


async def test_an_async_transaction_commits_together_or_not_at_all(
    async_pool: AsyncPool,
) -> None:
    store = AsyncStore(async_pool)
    user = await store.create_user("atx", "atx@example.com", "correct horse")
    tea = await store.create_product("Tx tea", "1.00", 10)
    async with store.transaction() as tx:
        cart = await tx.create_cart(user.id)
        await tx.add_to_cart(cart.id, tea.id, 2)
    assert [i.quantity for i in (await store.get_cart(cart.id)).items] == [2]
    other = await store.create_user("atx2", "atx2@example.com", "correct horse")

    class ChangeOfMind(Exception):
        pass

    doomed: list[int] = []

    async def change_of_mind() -> None:
        async with store.transaction() as tx:
            doomed.append((await tx.create_cart(other.id)).id)
            raise ChangeOfMind

    with pytest.raises(ChangeOfMind):
        await change_of_mind()
    with pytest.raises(NotFound):
        await store.get_cart(doomed[0])


async def test_sync_and_async_pools_share_one_database_in_one_process(
    committed_pool: Pool, async_pool: AsyncPool
) -> None:
    made = Store(committed_pool).create_product("Both ways", "2.00", 1)
    assert await AsyncStore(async_pool).get_product(made.id) == made
    async with async_pool.transaction() as session:
        row = await session.get(Product, made.id)
        assert row is not None
        assert row.name == "Both ways"


async def test_argon2_runs_off_the_event_loop(
    async_pool: AsyncPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a password is hashed, other tasks on the loop keep being served.

    The hash waits for an event that only another task on the loop sets: if
    hashing ran on the loop, that task could never run and the hash would
    hang (until the hang guard fails the test).
    """
    store = AsyncStore(async_pool)
    tea = await store.create_product("Served meanwhile", "1.00", 1)
    served = threading.Event()
    real_hash = passwords.hash_password

    def slow_hash(password: str) -> str:
        assert served.wait(HANG_GUARD), "the loop was blocked while hashing"
        return real_hash(password)

    monkeypatch.setattr(passwords, "hash_password", slow_hash)

    async def meanwhile() -> None:
        await store.get_product(tea.id)
        served.set()

    user, _ = await asyncio.gather(
        store.create_user("patient", "patient@example.com", "correct horse"), meanwhile()
    )
    assert user.username == "patient"


async def test_an_async_pool_timeout_names_the_numbers(
    shopdb_server: DatabaseFactory, committed_pool: Pool
) -> None:
    settings = shopdb_server.settings(pool_size=1, pool_timeout=0.2)
    pool = await AsyncPool.open(committed_pool.target, settings)
    try:
        store = AsyncStore(pool)
        async with pool.raw():  # the only connection, held
            with pytest.raises(PoolTimeout) as caught:
                await store.list_products(limit=1)
        assert str(caught.value).startswith("couldn't get a connection after 0.20 s: all 1")
        assert caught.value.retryable
    finally:
        await pool.close()


async def test_establish_async_pool_fails_with_one_clear_line(
    shopdb_server: DatabaseFactory,
) -> None:
    with pytest.raises(ConnectionFailed) as caught:
        await establish_async_pool(
            shopdb_server.url("no_such_database_here"),
            settings=shopdb_server.settings(),
            announce=False,
        )
    assert "no_such_database_here" in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_each_flavour_refuses_the_others_pool(
    committed_pool: Pool, async_pool: AsyncPool
) -> None:
    with pytest.raises(TypeError, match="AsyncStore"):
        Store(async_pool)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="goes with Store"):
        AsyncStore(committed_pool)  # type: ignore[arg-type]
