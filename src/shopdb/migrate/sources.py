"""Where migrations come from: shopdb's own, and the application's on top of them.

shopdb's revisions live in the package (``0001`` to ``0005`` and later ones,
numbered). An application keeps its own revisions in a directory of its own
(``SHOPDB_APP_MIGRATIONS_DIR``): an Alembic branch labelled ``app`` whose
first revision has no parent and ``depends_on`` the shopdb revision it needs,
with ids ``app_0001``, ``app_0002``, ... that no shopdb revision will ever
take. Both directories are one Alembic history: every command applies and
reverts them in dependency order.

:func:`alembic_config` builds the Alembic configuration for both, for tools
that drive Alembic themselves (pytest-alembic, ``alembic`` scripts).
"""

from __future__ import annotations

import io
import os
import sys
from argparse import Namespace
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopdb.errors import ConfigurationError
from shopdb.migrate.state import KEY, RunState

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import MetaData

    from shopdb.config import Settings

#: The Alembic environment (env.py, the template) and shopdb's revisions.
PACKAGE_MIGRATIONS = Path(__file__).parents[1] / "migrations"
PACKAGE_VERSIONS = PACKAGE_MIGRATIONS / "versions"
#: The branch label of an application's revisions, and the prefix of their ids.
APP_BRANCH = "app"

IncludeName = Callable[[str | None, str, Any], bool]


@dataclass(frozen=True)
class Sources:
    """The directories of one migration history."""

    #: shopdb's revisions: the packaged ones, or ``SHOPDB_MIGRATIONS_DIR``.
    shopdb: Path
    #: The application's revisions, if it has any.
    app: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sources:
        """``SHOPDB_MIGRATIONS_DIR`` (else the packaged ones) and ``SHOPDB_APP_MIGRATIONS_DIR``."""
        return cls(
            shopdb=settings.migrations_dir or PACKAGE_VERSIONS,
            app=settings.app_migrations_dir,
        )

    def locations(self) -> list[Path]:
        """The directories Alembic reads (an app directory not created yet is left out)."""
        found = [self.shopdb]
        if self.app is not None and self.app.is_dir():
            found.append(self.app)
        return found

    def source_of(self, path: Path) -> str:
        """``"app"`` for a file in the application's directory, else ``"shopdb"``."""
        if self.app is not None and path.resolve().parent == self.app.resolve():
            return APP_BRANCH
        return "shopdb"

    def describe(self) -> str:
        """The directories, for messages."""
        return " and ".join(str(p) for p in self.locations())


def alembic_config(
    settings: Settings | None = None, *, sources: Sources | None = None, **attributes: Any
) -> Config:
    """An Alembic ``Config`` for shopdb's migrations and the application's.

    ``attributes`` are fields of the run's :class:`~shopdb.migrate.state.RunState`
    (``connection``, ``target_metadata``, ``include_name``, ...), which env.py
    reads. Without ``settings``, they are read from the environment and ``.env``.
    """
    from alembic.config import Config

    from shopdb.config import load_settings

    settings = settings or load_settings()
    sources = sources or Sources.from_settings(settings)
    # Alembic's own chatter ("Generating ...") is silenced; shopdb reports itself.
    config = Config(stdout=io.StringIO(), cmd_opts=Namespace(quiet=True))
    config.set_main_option("script_location", str(PACKAGE_MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in sources.locations())
    )
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes[KEY] = RunState(settings=settings, **attributes)
    return config


def target_metadata(settings: Settings) -> list[MetaData]:
    """shopdb's tables, and the application's when ``SHOPDB_APP_METADATA`` names them."""
    from shopdb.schema import metadata

    found = [metadata]
    if settings.app_metadata:
        found.append(load_app_metadata(settings.app_metadata))
    return found


def load_app_metadata(spec: str) -> MetaData:
    """The ``MetaData`` named ``module:attribute`` (the working directory is importable)."""
    import importlib

    from sqlalchemy import MetaData

    module_name, _, attribute = spec.partition(":")
    # As alembic's prepend_sys_path = . does: the app is where the command runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"SHOPDB_APP_METADATA: cannot load {spec!r}: {exc}") from None
    if not isinstance(found, MetaData):
        raise ConfigurationError(
            f"SHOPDB_APP_METADATA: {spec!r} is a {type(found).__name__}, not a SQLAlchemy MetaData"
        )
    return found


def include_tables(metadatas: Sequence[MetaData]) -> IncludeName:
    """An Alembic ``include_name`` that compares only the tables these metadata define.

    Autogenerate and ``check`` then never propose to drop a table they do not
    know: shopdb's when comparing the application's metadata, the
    application's when comparing shopdb's, the history tables always.
    """
    names = frozenset(name for m in metadatas for name in m.tables)

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in names

    return include_name
