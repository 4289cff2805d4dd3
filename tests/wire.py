"""A TCP proxy in front of PostgreSQL that counts the client's round trips.

It reads the frontend side of the wire protocol: after the untyped startup
message every message is a type byte and a length. A client waits for the
server after a simple Query ('Q') or a Sync ('S') of the extended protocol,
so counting those counts round trips, whatever the driver does in between.

A message is counted *before* it is forwarded: counted after, a loaded machine
could deliver the server's answer, let the test reset the counter, and only
then let the counting thread run, booking the previous call's trip to the next.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shopdb.config import DatabaseURL


class CountingProxy:
    """Listens on 127.0.0.1 and forwards to the server in ``upstream``."""

    def __init__(self, upstream: DatabaseURL) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.round_trips = 0
        self._lock = threading.Lock()
        self._closing = False
        self._cut = threading.Event()
        #: Set once a connection was cut by :meth:`cut_after_next_commit`.
        self.was_cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> DatabaseURL:
        """The upstream URL rewritten to go through the proxy, without TLS."""
        return self._upstream.set(
            host="127.0.0.1",
            port=self.port,
            query={"sslmode": "disable", "gssencmode": "disable"},
        )

    def reset(self) -> None:
        with self._lock:
            self.round_trips = 0

    def close(self) -> None:
        self._closing = True
        self._listener.close()

    def cut_after_next_commit(self) -> None:
        """Cut the next connection that receives ReadyForQuery, dropping that answer.

        The server sends ReadyForQuery ('Z') only once the statement's
        transaction is over (committed, in autocommit mode), so the client
        loses the answer to a statement that did commit: the fault a retry
        must survive.
        """
        self.was_cut.clear()
        self._cut.set()

    def _connect_upstream(self) -> socket.socket:
        host = self._upstream.host
        if host:
            return socket.create_connection((host, self._upstream.port or 5432))
        directory = self._upstream.query["host"]
        assert isinstance(directory, str)
        port = self._upstream.port or 5432
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(f"{directory}/.s.PGSQL.{port}")
        return upstream

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = self._connect_upstream()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
            threading.Thread(target=self._frontend, args=(client, server), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Server to client; every message is a type byte and a length."""
        buffer = b""
        try:
            while data := source.recv(65536):
                if not self._cut.is_set():
                    sink.sendall(data)
                    continue
                buffer += data
                kinds = []
                while len(buffer) >= 5:
                    (length,) = struct.unpack("!I", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    kinds.append(buffer[:1])
                    buffer = buffer[1 + length :]
                if b"Z" in kinds and self._cut.is_set():
                    self._cut.clear()
                    self.was_cut.set()  # before the client can notice, not after
                    # shutdown, not just close: the other pump thread is blocked
                    # in recv on these sockets, and close alone sends no FIN.
                    for side in (source, sink):
                        side.shutdown(socket.SHUT_RDWR)
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def _frontend(self, client: socket.socket, server: socket.socket) -> None:
        buffer = b""
        started = False
        try:
            while data := client.recv(65536):
                buffer += data
                while True:
                    if not started:
                        if len(buffer) < 4:
                            break
                        (length,) = struct.unpack("!I", buffer[:4])
                        if len(buffer) < length:
                            break
                        buffer, started = buffer[length:], True
                        continue
                    if len(buffer) < 5:
                        break
                    kind = buffer[:1]
                    (length,) = struct.unpack("!I", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    buffer = buffer[1 + length :]
                    if kind in (b"Q", b"S"):
                        with self._lock:
                            self.round_trips += 1
                # Only now may the server see (and answer) what was counted.
                server.sendall(data)
        except OSError:
            pass
        finally:
            server.close()


@contextmanager
def counting_proxy(upstream: DatabaseURL) -> Iterator[CountingProxy]:
    proxy = CountingProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
