"""What every command needs: settings, target database and migrator, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from shopdb.config import Settings
    from shopdb.connect import Target
    from shopdb.migrate import Migrator


@dataclass
class State:
    """The global options, and what is built from them on first use."""

    database_url: str | None
    migrations_dir: str | None
    app_migrations_dir: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _target: Target | None = field(default=None, repr=False)

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

    def target(self) -> Target:
        """The database to use (starting the embedded server if it is the one)."""
        if self._target is None:
            from shopdb.connect import resolve_target

            self._target = resolve_target(self.database_url, self.settings())
        return self._target

    def migrator(self, *, database: bool = True) -> Migrator:
        """A migrator for the target database; without ``database``, one that only reads
        and writes migration files (no server is started, no database touched)."""
        from shopdb.migrate import Migrator

        return Migrator(self.target() if database else None, self.settings())


def state() -> State:
    """The current command's :class:`State`."""
    obj = click.get_current_context().find_object(State)
    if obj is None:  # a subcommand invoked without the root group (only in tests)
        raise click.UsageError("run this command through `shopdb`")
    return obj
