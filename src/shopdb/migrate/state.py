"""What one migration run shares between the migrator, ``env.py`` and the migration files.

Alembic hands a run's ``config.attributes`` (a plain dict) to ``env.py`` and,
through the migration context, to the migration files. shopdb keeps one typed
object there, :class:`RunState`, under one key, instead of loose string keys:
a misspelt field is an error, not a silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from shopdb.config import Settings
    from shopdb.migrate.lock_policy import LockPolicy

#: The one key of ``config.attributes`` shopdb uses.
KEY = "shopdb.run"


@dataclass
class RunState:
    """A migration run's inputs (set by the migrator) and what its migrations report back."""

    #: The settings the run uses (None: read from the environment and ``.env`` by env.py).
    settings: Settings | None = None
    #: A SQLAlchemy Connection or Engine to migrate with (None: one from the settings).
    connection: Any = None
    #: The URL of an offline (``--sql``) run, and where it writes the SQL.
    url: str | None = None
    output_buffer: TextIO | None = None
    #: The models compared with the database (autogenerate, drift) and which tables count.
    target_metadata: Any = None
    include_name: Callable[..., bool] | None = None
    #: Alembic's ``on_version_apply`` hooks (the history table's writer).
    on_version_apply: Sequence[Callable[..., None]] = ()
    #: How DDL waits for its locks in this run (set by env.py from the settings).
    lock_policy: LockPolicy | None = None
    #: Set by :mod:`shopdb.online_ddl`: the migration left its transaction for online steps,
    #: and an online step has changed the schema (a rerun finishes it).
    outside_transaction: bool = False
    steps_done: bool = False


def run_state(attributes: dict[str, Any]) -> RunState:
    """The run's state in ``attributes`` (a config's), made empty on first use."""
    state = attributes.get(KEY)
    if not isinstance(state, RunState):
        state = attributes[KEY] = RunState()
    return state
