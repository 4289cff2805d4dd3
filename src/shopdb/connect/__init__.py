"""Finding the database: which URL, is it there, and what is wrong when it is not.

libpq reports a failed connection without a SQLSTATE, so instead of reading
its text we ask the server: ``PQping`` says whether anything answers and
whether it is accepting connections; a connection to the maintenance database
with the same credentials, and its catalog, say whether ours exists.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shopdb.config import mask_url, parse_database_url
from shopdb.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    DatabaseMissing,
    DatabaseUnavailable,
)

if TYPE_CHECKING:
    import psycopg

    from shopdb.config import DatabaseURL, Settings
    from shopdb.connect.embedded import EmbeddedServer


@dataclass(frozen=True)
class Target:
    """The database shopdb will use, and the embedded server behind it if any."""

    url: DatabaseURL
    embedded: EmbeddedServer | None = None

    @property
    def masked(self) -> str:
        """The URL with its password hidden, fit for any output."""
        return mask_url(self.url)

    @property
    def database(self) -> str:
        """The database name."""
        return str(self.url.database)


def resolve_target(url: str | None, settings: Settings, *, announce: bool = True) -> Target:
    """The URL to use: ``url``, else ``DATABASE_URL``, else the embedded server."""
    if url is None and settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    if url is not None:
        return Target(primary_url(parse_database_url(url)))
    from shopdb.connect.embedded import start_embedded

    server = start_embedded(
        settings.embedded_dir, announce=announce, durable=settings.embedded_durable
    )
    return Target(parse_database_url(server.url()), server)


def primary_url(url: DatabaseURL) -> DatabaseURL:
    """``url``, asking for the read-write server when it lists several hosts.

    After a failover the old primary may come back as a replica: with
    ``target_session_attrs=read-write`` libpq skips it (and every other
    read-only server), so the pool's connections always reach the primary.
    A URL that says otherwise is left as it is.
    """
    hosts = url.query.get("host")
    if isinstance(hosts, tuple) and len(hosts) > 1 and "target_session_attrs" not in url.query:
        return url.update_query_dict({"target_session_attrs": "read-write"})
    return url


def libpq_url(url: DatabaseURL, database: str | None = None) -> str:
    """``url`` as a libpq URI (password included: never print it).

    Several hosts (SQLAlchemy's repeated ``host=h:p`` parameters) become
    libpq's lists, ``host=h1,h2&port=p1,p2``.
    """
    if database is not None:
        url = url.set(database=database)
    hosts = url.query.get("host")
    if isinstance(hosts, tuple):
        names, ports = zip(*(_host_port(host) for host in hosts), strict=True)
        url = url.update_query_dict({"host": ",".join(names), "port": ",".join(ports)})
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _host_port(host: str) -> tuple[str, str]:
    """``h:5432`` -> (``h``, ``5432``); ``[::1]:5432`` -> (``::1``, ``5432``); no port: ``""``."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = host.partition(":")
    return name, port


def wait_for_database(target: Target, settings: Settings) -> None:
    """Connect once, retrying with backoff while the server is unreachable.

    Retries only what time can fix (nothing answers, or the server is
    starting or shutting down) for at most ``settings.connect_retry`` seconds.
    Raises the :class:`~shopdb.errors.ConnectionFailed` subclass that names
    the problem.
    """
    import psycopg

    deadline = time.monotonic() + settings.connect_retry
    delay = 0.05
    warned = False
    while True:
        try:
            psycopg.connect(
                libpq_url(target.url), connect_timeout=int(settings.connect_timeout)
            ).close()
        except psycopg.Error as exc:
            problem = diagnose(target, exc, settings)
        else:
            return
        remaining = deadline - time.monotonic()
        if not problem.retryable or remaining <= 0:
            raise problem from None
        if not warned:
            logging.getLogger("shopdb").warning(
                "%s; retrying for up to %.0f s", problem, settings.connect_retry
            )
            warned = True
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0) * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not crypto)


def diagnose(target: Target, exc: psycopg.Error, settings: Settings) -> ConnectionFailed:
    """Name what stopped a connection to ``target``; never includes the password."""
    from psycopg import pq

    where = _where(target)
    ping = pq.PGconn.ping(libpq_url(target.url).encode())
    if ping == pq.Ping.NO_RESPONSE:
        return DatabaseUnavailable(f"cannot reach PostgreSQL at {where}: {_libpq_reason(exc)}")
    # A server that connects now finished starting between the failure and the ping.
    if ping == pq.Ping.REJECT or _connects(target, settings):
        return DatabaseUnavailable(
            f"PostgreSQL at {where} is not accepting connections yet (starting or shutting down)"
        )
    if ping == pq.Ping.NO_ATTEMPT:
        return ConnectionFailed(f"DATABASE_URL is not usable: {_libpq_reason(exc)}")
    exists = _database_exists(target, settings)
    if exists is False:
        return DatabaseMissing(target.database)
    if exists is None:
        return _refused(target, exc, settings)
    return ConnectionFailed(f"PostgreSQL at {where} refused the connection: {_libpq_reason(exc)}")


def _connects(target: Target, settings: Settings) -> bool:
    """Whether a connection to ``target`` succeeds now."""
    import psycopg

    try:
        timeout = int(settings.connect_timeout)
        psycopg.connect(libpq_url(target.url), connect_timeout=timeout).close()
    except psycopg.Error:
        return False
    return True


def _database_exists(target: Target, settings: Settings) -> bool | None:
    """True/False from pg_database, or None when even the maintenance database refuses us."""
    import psycopg

    for maintenance in ("postgres", "template1"):
        try:
            with psycopg.connect(
                libpq_url(target.url, maintenance),
                connect_timeout=int(settings.connect_timeout),
                autocommit=True,
            ) as conn:
                row = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
                ).fetchone()
                return row is not None
        except psycopg.Error:
            continue
    return None


def _refused(target: Target, exc: psycopg.Error, settings: Settings) -> ConnectionFailed:
    """Why even the maintenance database refused us: our login, or no server of the kind
    ``target_session_attrs`` asks for (a failover in progress: the servers are up, none of
    them the primary yet), which time will fix."""
    import psycopg

    where = _where(target)
    wanted = target.url.query.get("target_session_attrs", "any")
    if wanted != "any":
        try:
            psycopg.connect(
                libpq_url(target.url),
                connect_timeout=int(settings.connect_timeout),
                target_session_attrs="any",
            ).close()
        except psycopg.Error:
            pass
        else:
            return DatabaseUnavailable(
                f"PostgreSQL at {where} is up, but no server there is {wanted} "
                "(target_session_attrs); a failover may be in progress"
            )
    return AuthenticationFailed(
        f"PostgreSQL at {where} refused user {target.url.username!r}: {_libpq_reason(exc)}"
    )


def _where(target: Target) -> str:
    url = target.url
    if url.host:
        return f"{url.host}:{url.port or 5432}"
    socket = url.query.get("host")
    if isinstance(socket, tuple):
        return ", ".join(socket)
    if target.embedded is not None:
        return "the embedded server"
    return f"socket {socket}" if socket else "the local socket"


def _libpq_reason(exc: BaseException) -> str:
    # libpq's text ends in the cause ('Connection refused', 'FATAL:  role "x" does
    # not exist'); it never contains the password. Shown only, never parsed.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for marker in ("FATAL:  ", "failed: "):
        if marker in first:
            first = first.rsplit(marker, 1)[1]
    return first.strip()
