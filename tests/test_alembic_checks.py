"""pytest-alembic's built-in migration checks, on shopdb's history and on shopdb's plus an app's.

pytest-alembic 0.13's own collection fails under pytest 9 (``'TestCollector'
object has no attribute '_nodeid'``), so its plugin is turned off in
pyproject.toml and its test functions are imported here, where pytest
collects them like ours. They get the fixtures they need from this module: a
fresh database per test (``alembic_engine``) and the Alembic configuration
shopdb itself uses (``alembic_config``), once for shopdb's migrations alone
and once with the sample app's (examples/reviews_app) on top.

Neither experimental check applies. ``test_downgrade_leaves_no_trace`` runs
every migration inside a savepoint it rolls back, and 0005 builds its indexes
``CONCURRENTLY``, which PostgreSQL refuses inside a transaction (that 0005's
downgrade restores the seed's schema exactly is tests/test_integrity.py's).
``test_all_models_register_on_metadata`` reads an ``alembic.ini`` and looks for
declarative models: shopdb has neither (its tables are Core ``Table`` objects
that env.py imports itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_alembic.tests as builtin
from alembic.config import Config
from pytest_alembic import Config as CheckConfig
from pytest_alembic import MigrationContext, runner
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from shopdb.migrate.sources import APP_BRANCH
from shopdb.migrate.sources import alembic_config as shopdb_alembic_config
from shopdb.testing import DatabaseFactory

ROOT = Path(__file__).resolve().parents[1]
HISTORIES: dict[str, dict[str, object]] = {
    "shopdb": {"app_migrations_dir": None, "app_metadata": None},
    "shopdb+app": {
        "app_migrations_dir": ROOT / "examples" / "reviews_app" / "migrations",
        "app_metadata": "examples.reviews_app.models:metadata",
    },
}

__all__ = [
    "test_model_definitions_match_ddl",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture(params=sorted(HISTORIES))
def history(request: pytest.FixtureRequest) -> str:
    """Which history the checks run on."""
    return str(request.param)


@pytest.fixture
def alembic_config(history: str, shopdb_server: DatabaseFactory) -> Config:
    """The Alembic configuration shopdb uses, for one of the histories."""
    settings = shopdb_server.settings(**HISTORIES[history])
    return shopdb_alembic_config(settings)


@pytest.fixture
def alembic_engine(shopdb_server: DatabaseFactory) -> Iterator[Engine]:
    """An engine on a new empty database; env.py takes it from ``config.attributes``."""
    target = shopdb_server.create("shopdb_alembic")
    engine = create_engine(target.url.sqlalchemy(), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        shopdb_server.drop(target.database)


@pytest.fixture
def alembic_runner(alembic_config: Config, alembic_engine: Engine) -> Iterator[MigrationContext]:
    """What pytest-alembic's plugin would provide, from the two fixtures above."""
    with runner(config=CheckConfig.from_raw_config(alembic_config), engine=alembic_engine) as ctx:
        yield ctx


def test_single_head_per_branch(alembic_runner: MigrationContext, history: str) -> None:
    """pytest-alembic's single-head check, per branch: shopdb's history alone has one
    head; with an app, there is one more, the app's own."""
    if history == "shopdb":
        builtin.test_single_head_revision(alembic_runner)
        return
    heads = alembic_runner.heads
    assert len(heads) == 1 or len(heads) == 2, heads
    assert sum(1 for head in heads if head.startswith(f"{APP_BRANCH}_")) == 1
