"""How migrations wait for table locks without stopping the shop.

A statement that needs a lock the application's queries conflict with (an
``ALTER TABLE`` taking ACCESS EXCLUSIVE, say) waits in PostgreSQL's lock
queue, and every query that arrives after it waits behind it, even a plain
``SELECT``. So such a statement waits at most :attr:`LockPolicy.attempt`
(``SHOPDB_DDL_LOCK_ATTEMPT``, 100 ms) at a time: when that runs out it leaves
the queue, the traffic behind it goes through, and after a short pause it
tries again, for :attr:`LockPolicy.budget` (``SHOPDB_DDL_LOCK_TIMEOUT``) in
all. Once it has the lock, it holds it only as long as the statement takes,
which the online DDL operations (:mod:`shopdb.online_ddl`) keep to catalog
changes, never a table scan.

Statements whose lock no query conflicts with (``VALIDATE CONSTRAINT``,
``CREATE INDEX CONCURRENTLY``) may wait the whole budget in one go: waiting
blocks nobody.

The session settings are SQL statements, printed by ``--sql`` exactly as they
run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from shopdb.config import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class LockPolicy:
    """One try's lock wait, and how long a statement keeps trying in all (seconds)."""

    attempt: float = 0.1
    budget: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LockPolicy:
        """``SHOPDB_DDL_LOCK_ATTEMPT`` and ``SHOPDB_DDL_LOCK_TIMEOUT``."""
        return cls(
            attempt=min(settings.ddl_lock_attempt, settings.ddl_lock_timeout),
            budget=settings.ddl_lock_timeout,
        )

    def session_statements(self) -> list[str]:
        """What a migration session sets before any migration runs."""
        return [
            set_lock_timeout(self.attempt),
            # A migration may scan a large table (VALIDATE, CREATE INDEX
            # CONCURRENTLY); that blocks nobody and must not be cut short.
            "SET statement_timeout = 0",
            "SET TimeZone = 'UTC'",
        ]

    def retry(self, action: Callable[[], T], *, unless: Callable[[], bool] | None = None) -> T:
        """Run ``action`` (one whole transaction) again while it fails only for want of a lock.

        Gives up, raising the last error, once :attr:`budget` seconds have
        passed since the first failure, or at once when ``unless()`` says so.
        """
        deadline: float | None = None
        pause = 0.02
        while True:
            try:
                return action()
            except Exception as exc:
                if not is_lock_timeout(exc) or (unless is not None and unless()):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.budget
                if now >= deadline:
                    raise
                # Jitter, so that two migrations (or a migration and a cron
                # job) retrying on the same table do not collide in step.
                time.sleep(min(pause, deadline - now) * random.uniform(0.5, 1.5))  # noqa: S311
                pause = min(pause * 2, 1.0)


def set_lock_timeout(seconds: float) -> str:
    """``SET lock_timeout = '...ms'``."""
    return f"SET lock_timeout = '{max(1, round(seconds * 1000))}ms'"


def is_lock_timeout(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is PostgreSQL's ``lock_not_available`` (55P03)."""
    from psycopg import errors

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, errors.LockNotAvailable):
            return True
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
