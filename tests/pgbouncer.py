"""Start a real PgBouncer (Debian's package) in transaction pooling mode for a test."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shopdb.config import DatabaseURL


def pgbouncer_binary() -> str | None:
    """The installed pgbouncer (Debian puts it in /usr/sbin), or None."""
    return shutil.which(
        "pgbouncer", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pgbouncer(upstream: DatabaseURL) -> Iterator[DatabaseURL]:
    """PgBouncer on a free loopback port in front of ``upstream``'s server; yields its URL."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed")
    socket_dir = upstream.query.get("host") if not upstream.host else None
    host = upstream.host or str(socket_dir)
    port = _free_port()
    # PgBouncer refuses to run as root; run it as the user who can reach the server.
    user = None
    if os.geteuid() == 0:
        user = pwd.getpwuid(Path(host).stat().st_uid).pw_name if socket_dir else "postgres"
    with tempfile.TemporaryDirectory(prefix="shopdb-pgbouncer-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o777)
        role = upstream.username or "postgres"
        (directory / "users.txt").write_text(f'"{role}" ""\n')
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={upstream.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            f"admin_users = {role}\n"
            "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 40\n"
            f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
        )
        for path in directory.iterdir():
            path.chmod(0o666)
        command = [binary, *(["-u", user] if user else []), str(directory / "pgbouncer.ini")]
        # PgBouncer logs every login to stderr as well as to its logfile: a pipe
        # nobody reads fills after a couple of hundred connections and blocks it.
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port, process, directory / "pgbouncer.log")
            yield DatabaseURL(
                "postgresql", username=role, host="127.0.0.1", port=port, database="x"
            )
        finally:
            process.terminate()  # SIGTERM: immediate shutdown
            process.wait(timeout=60)


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60  # a hang guard
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited: {error[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError("pgbouncer did not start listening")
