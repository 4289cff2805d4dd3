"""What every command needs: settings, target database and migrator, built once.

Every command reaches the database through :meth:`State.database`, which
connects once (retrying what time can fix) and names what is wrong in the
words ``shopdb status`` uses: one voice for connection problems.

With no ``DATABASE_URL``, the embedded server's directory (``.shopdb/``) is
looked for upward from the working folder, as git finds ``.git``; only
``shopdb setup`` may create one (:meth:`State.target` with ``create``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from shopdb.config import Settings
    from shopdb.connect import Target
    from shopdb.migrate.runner import Migrator

#: The embedded server's directory, found upward from the working folder.
EMBEDDED_DIR = Path(".shopdb")


@dataclass
class State:
    """The global options, and what is built from them on first use."""

    database_url: str | None
    migrations_dir: str | None
    app_migrations_dir: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _target: Target | None = field(default=None, repr=False)
    _reached: bool = field(default=False, repr=False)

    def settings(self) -> Settings:
        """Settings from the environment and .env, with the global options applied."""
        if self._settings is None:
            from shopdb.config import load_settings

            overrides: dict[str, object] = {}
            if self.migrations_dir is not None:
                overrides["migrations_dir"] = Path(self.migrations_dir)
            if self.app_migrations_dir is not None:
                overrides["app_migrations_dir"] = Path(self.app_migrations_dir)
            self._settings = load_settings(**overrides)
        return self._settings

    def target(self, *, create: bool = False) -> Target:
        """The database to use (starting the embedded server if it is the one).

        Without ``create``, an embedded server's directory must exist already
        (here or in a parent folder): no command but ``setup`` makes one.
        """
        if self._target is None:
            from shopdb.connect import resolve_target

            settings = self.settings()
            if self.database_url is None and settings.database_url is None:
                settings = settings.model_copy(
                    update={"embedded_dir": embedded_dir(settings, create=create)}
                )
            self._target = resolve_target(self.database_url, settings)
        return self._target

    def database(self) -> Target:
        """:meth:`target`, connected to once: a problem raises the
        :class:`~shopdb.errors.ConnectionFailed` that ``status`` prints."""
        target = self.target()
        if not self._reached:
            from shopdb.connect import wait_for_database

            wait_for_database(target, self.settings())
            self._reached = True
        return target

    def migrator(self, *, database: bool = True) -> Migrator:
        """A migrator for the target database (reached first, see :meth:`database`);
        without ``database``, one that only reads and writes migration files (no server
        is started, no database touched)."""
        from shopdb.migrate.runner import Migrator

        return Migrator(self.database() if database else None, self.settings())


def embedded_dir(settings: Settings, *, create: bool) -> Path:
    """Where the embedded server lives: ``SHOPDB_EMBEDDED_DIR`` if set, else the nearest
    ``.shopdb/`` in the working folder or above it, else (only with ``create``) a new
    one in the working folder."""
    from shopdb.errors import ConfigurationError

    if "embedded_dir" in settings.model_fields_set:
        chosen: Path | None = settings.embedded_dir
        if not create and not settings.embedded_dir.is_dir():
            chosen = None
    else:
        chosen = find_upward(EMBEDDED_DIR)
        if chosen is None and create:
            chosen = Path.cwd() / EMBEDDED_DIR
    if chosen is None:
        raise ConfigurationError(
            "there is no database yet: DATABASE_URL is not set and no .shopdb/ "
            "(the embedded server) was found here or above; run `shopdb setup`"
        )
    return chosen


def find_upward(name: Path, start: Path | None = None) -> Path | None:
    """The directory ``name`` in ``start`` (default: the working folder) or its nearest
    parent holding one, as git finds ``.git``; None when there is none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / name).is_dir():
            return folder / name
    return None


def state() -> State:
    """The current command's :class:`State`."""
    obj = click.get_current_context().find_object(State)
    if obj is None:  # a subcommand invoked without the root group (only in tests)
        raise click.UsageError("run this command through `shopdb`")
    return obj
