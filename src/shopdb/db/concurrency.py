"""What threads do here that asyncio does otherwise: the sync twin of
:mod:`shopdb.db.concurrency_async`, the one pair written twice by hand
(``tests/test_architecture.py`` holds their names to each other).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: A lock for code that blocks while holding it.
Lock = threading.Lock


def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, here: a blocking caller has no loop to keep free."""
    return fn(*args, **kwargs)


def sleep(seconds: float) -> None:
    """Wait ``seconds``."""
    time.sleep(seconds)


class Background:
    """Work started from a sync hook (SQLAlchemy's ``handle_error``): done at once."""

    def spawn(self, job: Callable[[], Any]) -> None:
        """Run ``job()`` now."""
        job()


class Repeating:
    """Call ``job()`` every ``interval`` seconds, in a daemon thread, until :meth:`stop`."""

    def __init__(self, interval: float, job: Callable[[], Any], name: str) -> None:
        self._interval, self._job, self._name = interval, job, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start repeating (the first call is ``interval`` seconds from now)."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._job()

    def stop(self) -> None:
        """Stop, and wait until a call under way has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
