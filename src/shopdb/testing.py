"""The pytest plugin shopdb's users get (registered as ``shopdb``; nothing runs at import).

It gives a test session a freshly migrated database, and every test a
connection and session whose work is rolled back when the test ends, even
when the code under test commits or rolls back itself (SQLAlchemy's
"join a session into an external transaction" recipe, with
``join_transaction_mode="create_savepoint"``).

The server is the embedded one (``pip install 'shopdb[embedded,testing]'``),
started in a temporary directory, unless ``SHOPDB_TEST_DATABASE_URL`` names a
server where the test user may create databases (its database part is only
used to connect, and is created first if it does not exist, then dropped at
the end). A server that cannot be used fails each test in one line, without
a traceback. Databases are created
and migrated directly on that server; ``SHOPDB_TEST_POOL_URL``, if set, sends
the pools' connections another way to the same server (through PgBouncer,
say), with the database part replaced by the test database.

With ``SHOPDB_TEST_AS_APP_ROLE=1`` the Store runs as the role ``shopdb setup
--app-role`` makes, which proves its grants suffice: the session creates a
role of its own (``shopdb_test_app_<hex>``, dropped at the end), every
migrated database it creates gets :func:`~shopdb.migrate.admin.grant_app_role`, and
:meth:`DatabaseFactory.store_target` connects as that role. The ``store``
and ``async_store`` fixtures, which share the test's connection, switch it
to the role with ``SET LOCAL ROLE`` for the rest of the test: the other
fixtures on that connection (``db_connection``, ``db_session``) then act as
the role too.

Fixtures:

``shopdb_server``  (session) URL of the server, as a :class:`DatabaseFactory`
``shopdb_target``  (session) the migrated test database
``shopdb_pool``    (session) a :class:`~shopdb.db.Pool` on it
``db_connection``  a Core connection inside a transaction rolled back after the test
``db_session``     an ORM session on ``db_connection``; its commits become savepoints
``store``          a :class:`~shopdb.store.Store` on ``db_connection``, rolled back likewise

And for ``async def`` tests (run by anyio's pytest plugin, which comes with
anyio, installed by the ``testing`` extra: mark them ``@pytest.mark.anyio``):

``async_db_connection``  an async Core connection in a transaction rolled back after the test
``async_db_session``     an ``AsyncSession`` on it; its commits become savepoints
``async_store``          an :class:`~shopdb.store.AsyncStore` on it, rolled back likewise
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
    from sqlalchemy.orm import Session

    from shopdb.config import Settings
    from shopdb.connect import Target
    from shopdb.connect.embedded import EmbeddedServer
    from shopdb.db.pool import Pool
    from shopdb.store import AsyncStore, Store

#: The environment variable naming an external server for tests.
TEST_URL_VARIABLE = "SHOPDB_TEST_DATABASE_URL"
#: The environment variable naming another route to it for the pools (PgBouncer).
POOL_URL_VARIABLE = "SHOPDB_TEST_POOL_URL"
#: The environment variable that makes the Store fixtures run as the app role.
APP_ROLE_VARIABLE = "SHOPDB_TEST_AS_APP_ROLE"


def as_app_role() -> bool:
    """Whether ``SHOPDB_TEST_AS_APP_ROLE`` asks for the app role (``1``, ``true``, ``yes``)."""
    return os.environ.get(APP_ROLE_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


class DatabaseFactory:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, server_url: str, embedded: EmbeddedServer | None) -> None:
        from shopdb.config import parse_database_url

        self.server_url = parse_database_url(server_url)
        self.embedded = embedded
        pool_url = os.environ.get(POOL_URL_VARIABLE)
        self.pool_url = parse_database_url(pool_url) if pool_url else None
        self._created: list[str] = []
        #: The app role the Store fixtures connect as (None: the test server's user).
        self.app_role = f"shopdb_test_app_{secrets.token_hex(4)}" if as_app_role() else None
        self._app_password = secrets.token_urlsafe(16)

    def settings(self, **overrides: object) -> Settings:
        """Settings that ignore the developer's .env and environment for the pool knobs."""
        from shopdb.config import Settings

        values: dict[str, object] = {"connect_retry": 0, "_env_file": None}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def url(self, database: str) -> str:
        """A URL for ``database`` on the test server (password included)."""
        from shopdb.connect import libpq_url

        return libpq_url(self.server_url, database)

    def target(self, database: str) -> Target:
        """The :class:`~shopdb.connect.Target` for ``database`` on the test server."""
        from shopdb.connect import Target

        return Target(self.server_url.set(database=database), self.embedded)

    def pooled_target(self, database: str) -> Target:
        """Where pools reach ``database``: through ``SHOPDB_TEST_POOL_URL`` if set."""
        from shopdb.connect import Target

        if self.pool_url is None:
            return self.target(database)
        return Target(self.pool_url.set(database=database))

    def store_target(self, database: str) -> Target:
        """Where the Store's pools reach ``database``: :meth:`pooled_target`, as the
        app role when ``SHOPDB_TEST_AS_APP_ROLE`` is set."""
        from shopdb.connect import Target

        route = self.pooled_target(database)
        if self.app_role is None:
            return route
        url = route.url.set(username=self.app_role, password=self._app_password)
        return Target(url, route.embedded)

    def grant_app_role(self, database: str) -> None:
        """Give :attr:`app_role` the app role's grants on ``database`` (creating the role),
        and let the test server's user ``SET ROLE`` to it."""
        import psycopg
        from psycopg import sql

        from shopdb.migrate.admin import grant_app_role

        if self.app_role is None:
            raise RuntimeError(f"{APP_ROLE_VARIABLE} is not set: there is no app role")
        grant_app_role(self.target(database), self.settings(), self.app_role, self._app_password)
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if not (row.fetchone() or (False,))[0]:
                conn.execute(
                    sql.SQL("GRANT {} TO current_user").format(sql.Identifier(self.app_role))
                )

    def drop_app_role(self) -> None:
        """Drop :attr:`app_role` (after :meth:`drop_all`: its grants went with the databases)."""
        import psycopg
        from psycopg import sql

        if self.app_role is None:
            return
        with psycopg.connect(self.url(str(self.server_url.database)), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.app_role)))

    def create(self, prefix: str = "shopdb_test", *, migrated: bool = False) -> Target:
        """A new database, empty or with every migration applied; dropped by :meth:`drop_all`.

        A migrated one gets the app role's grants when ``SHOPDB_TEST_AS_APP_ROLE`` is set.
        """
        import psycopg
        from psycopg import sql

        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(self.url(str(self.server_url.database)), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        target = self.target(name)
        if migrated:
            from shopdb.migrate.runner import Migrator

            Migrator(target, self.settings()).run()
            if self.app_role is not None:
                self.grant_app_role(name)
        return target

    def drop(self, database: str) -> None:
        """Drop ``database``, ending any session still on it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(str(self.server_url.database)), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        if database in self._created:
            self._created.remove(database)

    def ensure_server_database(self) -> bool:
        """Create the database the server URL names when the server says it does not
        exist; True when it was created. Any other problem raises what ``shopdb status``
        would say."""
        from shopdb.connect import Target, wait_for_database
        from shopdb.errors import DatabaseMissing
        from shopdb.migrate.admin import create_database

        target, settings = Target(self.server_url), self.settings()
        try:
            wait_for_database(target, settings)
        except DatabaseMissing:
            create_database(target, settings)
            return True
        return False

    def drop_server_database(self) -> None:
        """Drop the server URL's database (one :meth:`ensure_server_database` created)."""
        from shopdb.connect import Target
        from shopdb.migrate.admin import drop_database

        drop_database(Target(self.server_url), self.settings())

    def drop_all(self) -> None:
        """Drop every database this factory created."""
        for name in list(self._created):
            self.drop(name)


@pytest.fixture(scope="session")
def shopdb_server() -> Iterator[DatabaseFactory]:
    """The test server: ``SHOPDB_TEST_DATABASE_URL``, else an embedded one in a temp dir."""
    from shopdb.errors import ShopError

    url = os.environ.get(TEST_URL_VARIABLE)
    if url:
        try:
            factory = DatabaseFactory(url, None)
            created = factory.ensure_server_database()
        except ShopError as exc:
            pytest.fail(f"{TEST_URL_VARIABLE}: {exc}", pytrace=False)
        yield factory
        factory.drop_all()
        factory.drop_app_role()
        if created:
            factory.drop_server_database()
        return
    from shopdb.connect.embedded import start_embedded

    # Not under pytest's basetemp: every pytest session that starts (a second
    # one on the machine, or one a test runs) resets pytest-of-<user> to 0700,
    # which locks out the server's own OS user when tests run as root.
    with tempfile.TemporaryDirectory(
        prefix="shopdb-test-pg-", ignore_cleanup_errors=True
    ) as directory:
        try:
            embedded = start_embedded(Path(directory), announce=False)
        except ShopError as exc:
            pytest.fail(str(exc), pytrace=False)
        factory = DatabaseFactory(embedded.url("postgres"), embedded)
        try:
            yield factory
            factory.drop_all()
            factory.drop_app_role()
        finally:
            embedded.stop()


@pytest.fixture(scope="session")
def shopdb_target(shopdb_server: DatabaseFactory) -> Target:
    """A database with every migration applied, for the whole test session."""

    return shopdb_server.create(migrated=True)


@pytest.fixture(scope="session")
def shopdb_pool(shopdb_server: DatabaseFactory, shopdb_target: Target) -> Iterator[Pool]:
    """A connection pool on the migrated test database."""
    from shopdb.db.pool import Pool

    route = shopdb_server.pooled_target(shopdb_target.database)
    with Pool(route, shopdb_server.settings()) as pool:
        yield pool


@pytest.fixture
def db_connection(shopdb_pool: Pool) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back when the test ends."""
    with shopdb_pool.engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """An ORM session joined to :func:`db_connection`; ``commit()`` only releases a savepoint."""
    from sqlalchemy.orm import Session

    with Session(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        yield session


@pytest.fixture
def store(db_connection: Connection, shopdb_server: DatabaseFactory) -> Store:
    """A Store whose every call runs in the test's transaction (and is rolled back with it)."""
    from shopdb.store import Store

    # Start the transaction on the server now: on an idle connection psycopg
    # would open (and commit) a transaction of its own instead of a savepoint.
    db_connection.exec_driver_sql("SELECT 1")
    if shopdb_server.app_role is not None:
        db_connection.exec_driver_sql(_set_local_role(shopdb_server.app_role))
    driver: psycopg.Connection[TupleRow] = db_connection.connection.driver_connection  # type: ignore[assignment]
    return Store.bound(driver)


@pytest.fixture
async def async_db_connection(
    shopdb_server: DatabaseFactory, shopdb_target: Target
) -> AsyncIterator[AsyncConnection]:
    """An async connection in a transaction rolled back when the (async) test ends."""
    import psycopg
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from shopdb.config import DRIVER
    from shopdb.connect import libpq_url
    from shopdb.db.connections import connection_kwargs

    route = shopdb_server.pooled_target(shopdb_target.database)
    url, kwargs = libpq_url(route.url), connection_kwargs(shopdb_server.settings())

    async def connect() -> psycopg.AsyncConnection[TupleRow]:
        return await psycopg.AsyncConnection.connect(url, **kwargs)

    engine = create_async_engine(
        f"{DRIVER}://", poolclass=NullPool, async_creator=connect, isolation_level="READ COMMITTED"
    )
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            try:
                yield conn
            finally:
                await outer.rollback()
    finally:
        await engine.dispose()


@pytest.fixture
async def async_db_session(async_db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """An ``AsyncSession`` joined to :func:`async_db_connection`; commits become savepoints."""
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(
        bind=async_db_connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
    ) as session:
        yield session


@pytest.fixture
async def async_store(
    async_db_connection: AsyncConnection, shopdb_server: DatabaseFactory
) -> AsyncStore:
    """An AsyncStore whose every call runs in the test's transaction (rolled back with it)."""
    from shopdb.store import AsyncStore

    await async_db_connection.exec_driver_sql("SELECT 1")  # start the transaction now
    if shopdb_server.app_role is not None:
        await async_db_connection.exec_driver_sql(_set_local_role(shopdb_server.app_role))
    raw = await async_db_connection.get_raw_connection()
    driver: psycopg.AsyncConnection[TupleRow] = raw.driver_connection  # type: ignore[assignment]
    return AsyncStore.bound(driver)


def _set_local_role(role: str) -> str:
    """``SET LOCAL ROLE "role"`` (our own generated name, quoted)."""
    return 'SET LOCAL ROLE "' + role.replace('"', '""') + '"'
