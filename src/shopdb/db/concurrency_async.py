"""What asyncio does here that threads do otherwise: every flavour-specific line.

The async modules are the source of the sync ones (``tools/async_to_sync.py``
rewrites them token by token: no ``await``, ``AsyncPool`` → ``Pool``). What
cannot be rewritten by name is here, as one small helper each, and in
:mod:`shopdb.db.concurrency` for threads, the only pair written twice by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: A lock for code that awaits while holding it.
Lock = asyncio.Lock


async def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def sleep(seconds: float) -> None:
    """Wait ``seconds`` without blocking the event loop."""
    await asyncio.sleep(seconds)


class Background:
    """Work started from a sync hook (SQLAlchemy's ``handle_error``): a task on the loop.

    The tasks are kept referenced until they end; else one may be collected first.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, job: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Start ``job()`` on the running loop; its end is not awaited."""
        task = asyncio.get_running_loop().create_task(job())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Repeating:
    """``await job()`` every ``interval`` seconds, in a task, until :meth:`stop`."""

    def __init__(
        self, interval: float, job: Callable[[], Coroutine[Any, Any, Any]], name: str
    ) -> None:
        self._interval, self._job, self._name = interval, job, name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start repeating (the first call is ``interval`` seconds from now)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._job()

    async def stop(self) -> None:
        """Stop, and wait until a call under way has ended."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
