"""A pool refuses to open on a database whose shopdb migrations are behind (issue 20, item 4)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from shopdb.config import Settings
from shopdb.db import establish_async_pool, establish_connection_pool
from shopdb.errors import SchemaOutdated
from shopdb.migrate import Migrator
from shopdb.testing import DatabaseFactory

#: shopdb's revisions, in the order they apply, read from the packaged files.
REVISIONS = [m.revision for m in Migrator(None, Settings(_env_file=None)).scripts()]


def _name(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def test_a_sync_pool_on_an_empty_database_names_every_missing_revision(
    shopdb_server: DatabaseFactory, empty_db: str
) -> None:
    with pytest.raises(SchemaOutdated) as raised:
        establish_connection_pool(empty_db, settings=shopdb_server.settings(), announce=False)
    assert raised.value.missing == REVISIONS
    assert raised.value.details() == {"missing": REVISIONS}
    text = str(raised.value)
    assert "run `shopdb setup`" in text
    assert all(revision in text for revision in REVISIONS)
    assert raised.value.problem()["code"] == "schema_outdated"


@pytest.mark.anyio
async def test_an_async_pool_on_an_empty_database_names_every_missing_revision(
    shopdb_server: DatabaseFactory, empty_db: str
) -> None:
    with pytest.raises(SchemaOutdated) as raised:
        await establish_async_pool(empty_db, settings=shopdb_server.settings(), announce=False)
    assert raised.value.missing == REVISIONS


@pytest.mark.anyio
async def test_with_the_check_off_both_pools_open_on_an_empty_database(
    shopdb_server: DatabaseFactory, empty_db: str
) -> None:
    settings = shopdb_server.settings(check_schema=False)
    with establish_connection_pool(empty_db, settings=settings, announce=False) as pool:
        assert pool.status().size >= 0
    async with await establish_async_pool(empty_db, settings=settings, announce=False):
        pass


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopdb.config import load_settings

    monkeypatch.setenv("SHOPDB_CHECK_SCHEMA", "false")
    assert load_settings(_env_file=None).check_schema is False
    monkeypatch.delenv("SHOPDB_CHECK_SCHEMA")
    assert load_settings(_env_file=None).check_schema is True


@pytest.mark.anyio
async def test_on_a_migrated_database_both_pools_open(
    shopdb_server: DatabaseFactory, shopdb_target: object
) -> None:
    from shopdb.connect import Target

    assert isinstance(shopdb_target, Target)
    url = shopdb_server.url(shopdb_target.database)
    settings = shopdb_server.settings()
    with establish_connection_pool(url, settings=settings, announce=False):
        pass
    async with await establish_async_pool(url, settings=settings, announce=False):
        pass


def test_a_database_one_migration_behind_names_only_that_one(
    shopdb_server: DatabaseFactory, empty_db: str
) -> None:
    settings = shopdb_server.settings()
    migrator = Migrator(shopdb_server.target(_name(empty_db)), settings)
    migrator.run(upto=REVISIONS[-2])
    with pytest.raises(SchemaOutdated) as raised:
        establish_connection_pool(empty_db, settings=settings, announce=False)
    assert raised.value.missing == REVISIONS[-1:]
    assert f"{len(REVISIONS) - 1} applied" in str(raised.value)
    migrator.run()
    with establish_connection_pool(empty_db, settings=settings, announce=False):
        pass


def test_an_unknown_head_is_placed_by_the_history_table(
    shopdb_server: DatabaseFactory, empty_db: str
) -> None:
    """An application head this process does not know (its directory unset here) stands for
    the shopdb revisions below it: the history table says they are applied."""
    settings = shopdb_server.settings()
    Migrator(shopdb_server.target(_name(empty_db)), settings).run()
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'app_0001'")
    with establish_connection_pool(empty_db, settings=settings, announce=False):
        pass
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("DELETE FROM shopdb_migrations WHERE revision = %s", (REVISIONS[-1],))
    with pytest.raises(SchemaOutdated) as raised:
        establish_connection_pool(empty_db, settings=settings, announce=False)
    assert raised.value.missing == REVISIONS[-1:]


def test_the_reference_service_refuses_to_start_on_an_unmigrated_database(
    empty_db: str, tmp_path: Path
) -> None:
    """It used to start and answer ``GET /products`` with a 500 naming a missing relation."""
    from .shop_api_server import running_service

    with (
        pytest.raises(RuntimeError, match="the service exited") as raised,
        running_service(empty_db, tmp_path),
    ):
        pytest.fail("the service started on a database with no migrations")
    log = str(raised.value)
    assert "SchemaOutdated" in log
    assert "run `shopdb setup`" in log
    assert 'relation "products" does not exist' not in log


def test_a_role_that_may_not_read_the_version_table_skips_the_check_with_a_warning(
    shopdb_server: DatabaseFactory, empty_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An app role made before `setup --app-role` granted SELECT on alembic_version."""
    from psycopg import sql

    settings = shopdb_server.settings()
    name = _name(empty_db)
    Migrator(shopdb_server.target(name), settings).run()
    role = f"shopdb_old_app_{name[-8:]}"
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
        conn.execute(sql.SQL("REVOKE ALL ON alembic_version FROM {}").format(sql.Identifier(role)))
    url = shopdb_server.server_url.set(username=role, database=name)
    try:
        with establish_connection_pool(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            settings=settings,
            announce=False,
        ):
            pass
        assert "the schema check was skipped" in caplog.text
    finally:
        with psycopg.connect(empty_db, autocommit=True) as conn:
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(name), sql.Identifier(role)
                )
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
