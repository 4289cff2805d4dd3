"""A COPY writer that overlaps reading the file with the server's inserting."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import TYPE_CHECKING, Any

from psycopg.copy import LibpqWriter

if TYPE_CHECKING:
    import psycopg
    from psycopg.abc import Buffer

_QUEUED_CHUNKS = 4


class BackgroundWriter(LibpqWriter):
    """A COPY writer that sends from a thread of its own, holding a few chunks at most.

    ``cur.copy(statement, writer=BackgroundWriter(cur))``: the caller prepares
    the next chunk while the server inserts the ones before. With psycopg's
    default writer, preparing and sending take turns, and the server sits idle
    whenever the socket's buffers run dry meanwhile; its ``QueuedLibpqWriter``
    overlaps them too but may queue 128 MiB.
    """

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        super().__init__(cursor)
        self._queue: queue.Queue[Buffer | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, data: Buffer) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shopdb-copy", daemon=True)
            self._thread.start()
        self._queue.put(data)

    def _run(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                super().write(data)
        except BaseException as exc:
            self._error = exc  # raised in the caller's thread by write() or finish()
            while self._queue.get() is not None:
                pass

    def finish(self, exc: BaseException | None = None) -> None:
        if self._thread is not None:
            if exc is not None:  # aborting: what is still queued need not go
                with contextlib.suppress(queue.Empty):
                    while True:
                        self._queue.get_nowait()
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None and exc is None:
            raise self._error
        super().finish(exc)
