"""Settings from the environment and ``.env`` (the seed's ``dotenv`` role).

``DATABASE_URL`` is read as users write it (``postgres://`` or ``postgresql://``);
every other knob is ``SHOPDB_<NAME>``. Environment variables win over ``.env``,
as with dotenv. Nothing is read at import: call :func:`load_settings` or build
:class:`Settings` yourself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopdb.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: The SQLAlchemy driver every URL is rewritten to: psycopg 3.
DRIVER = "postgresql+psycopg"
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg"})


class Settings(BaseSettings):
    """Every knob shopdb has, with its default. Times are in seconds."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPDB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SHOPDB_DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server.",
    )
    pool_size: int = Field(10, ge=1, le=1000, description="Connections the pool may keep open.")
    pool_min_size: int = Field(
        1, ge=0, le=1000, description="Connections opened at start and always kept open."
    )
    max_overflow: int = Field(
        0, ge=0, le=1000, description="Extra connections opened under load, closed when returned."
    )
    pool_timeout: float = Field(
        30.0, gt=0, description="How long a caller waits for a free connection."
    )
    connect_timeout: float = Field(10.0, ge=2, description="Per connection attempt.")
    connect_retry: float = Field(
        10.0, ge=0, description="How long start-up keeps retrying an unreachable server."
    )
    pool_pre_ping: bool = Field(
        default=False,
        description="Test each connection at checkout (one extra round trip per checkout).",
    )
    pool_recycle: float = Field(
        1800.0, description="Replace connections older than this; -1 never replaces."
    )
    statement_timeout: float = Field(30.0, ge=0, description="Per statement; 0 disables.")
    idle_in_transaction_timeout: float = Field(
        60.0, ge=0, description="Server ends sessions idle inside a transaction; 0 disables."
    )
    prepared_statements: bool = Field(
        default=True,
        description="Server-side prepared statements; turn off behind PgBouncer < 1.21.",
    )
    startup_options: bool = Field(
        default=True,
        description="Send the timeouts and TimeZone as connection options; turn off behind "
        "PgBouncer (it refuses them) and set them on the role instead.",
    )
    embedded_durable: bool = Field(
        default=True,
        description="Embedded server syncs every commit to disk (fsync, synchronous_commit); "
        "false trades crash safety for speed.",
    )
    embedded_dir: Path = Field(
        Path(".shopdb"), description="Where the embedded server keeps its data."
    )
    check_schema: bool = Field(
        default=True,
        description="Opening a pool checks that every shopdb migration is applied and "
        "raises SchemaOutdated naming the missing ones; false skips the check.",
    )
    migrations_dir: Path | None = Field(
        None,
        description="A directory that replaces shopdb's packaged migrations (a patched copy); "
        "an application's own migrations go in app_migrations_dir instead.",
    )
    app_migrations_dir: Path | None = Field(
        None,
        description="The application's own migrations, applied on top of shopdb's "
        "(their own Alembic branch).",
    )
    app_metadata: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="module:attribute of the application's SQLAlchemy MetaData, for "
        "`migration generate --autogenerate` and `check`.",
    )
    ddl_lock_timeout: float = Field(
        5.0,
        gt=0,
        description="How long, in all, a migration statement keeps trying to get its lock "
        "before the migration fails.",
    )
    ddl_lock_attempt: float = Field(
        0.1,
        gt=0,
        description="One try's wait for a lock that blocks the application; then the "
        "statement steps out of the queue, lets the traffic behind it through, and tries again.",
    )
    migration_lock_wait: float = Field(
        60.0, ge=0, description="How long a migration run waits for another one to finish."
    )
    replica_urls: SecretStr | None = Field(
        None,
        description="Streaming replicas of DATABASE_URL that catalog reads may go to: URLs "
        "separated by commas; unset means every read on DATABASE_URL.",
    )
    replica_pool_size: int | None = Field(
        None, ge=1, le=1000, description="Connections kept open to each replica; unset: POOL_SIZE."
    )
    replica_max_lag: float = Field(
        5.0,
        gt=0,
        description="A replica that may be further behind the primary than this is left out "
        "until it catches up.",
    )
    replica_probe_interval: float = Field(
        1.0, gt=0, description="How often each replica's health and replay position are checked."
    )

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _no_replicas(cls, value: object) -> object:
        """An empty SHOPDB_REPLICA_URLS= means no replicas, as if unset."""
        return None if isinstance(value, str) and not value.strip(" ,\t\n") else value


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and ``.env``; overrides win.

    Raises :class:`~shopdb.errors.ConfigurationError` naming every bad knob.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{_setting_name(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(problems) from None


def _setting_name(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "settings"
    return "DATABASE_URL" if name == "database_url" else f"SHOPDB_{name.upper()}"


#: A URL's parts, in SQLAlchemy's grammar (``name://user:password@host:port/database?query``).
_URL = re.compile(
    r"""
    (?P<name>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.X,
)


@dataclass(frozen=True, repr=False)
class DatabaseURL:
    """A parsed PostgreSQL URL: what :func:`parse_database_url` returns and every
    connection shopdb opens is made from (``Target.url``).

    Shaped like SQLAlchemy's ``URL`` (the same attributes, :meth:`set`,
    :meth:`update_query_dict`, :meth:`render_as_string`) without importing
    SQLAlchemy, so a command that only talks libpq (``shopdb status``) starts
    fast; :meth:`sqlalchemy` builds SQLAlchemy's where an engine is made.
    Several hosts are repeated ``host`` query values (``host=h1:5432``), as
    SQLAlchemy's psycopg dialect takes them. Printed, the password is ``***``.
    """

    drivername: str
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    #: Query parameters; a repeated one holds a tuple of its values.
    query: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    def set(self, **changes: Any) -> DatabaseURL:
        """A copy with ``changes`` (``database=``, ``username=``, ...); None removes a part."""
        if "query" in changes:
            changes["query"] = dict(changes["query"])
        return replace(self, **changes)

    def update_query_dict(self, values: Mapping[str, str | tuple[str, ...]]) -> DatabaseURL:
        """A copy whose query parameters ``values`` are replaced (or added)."""
        return replace(self, query={**self.query, **values})

    def render_as_string(self, hide_password: bool = True) -> str:
        """The URL as text (as SQLAlchemy renders it); ``***`` for a password unless told."""
        from urllib.parse import quote, quote_plus

        text = self.drivername + "://"
        if self.username is not None:
            text += quote(self.username, safe=" +")
            if self.password is not None:
                text += ":" + ("***" if hide_password else quote(self.password, safe=" +"))
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += "/" + quote(self.database, safe=" +/")
        if self.query:
            text += "?" + "&".join(
                f"{quote_plus(key)}={quote_plus(value)}"
                for key in sorted(self.query)
                for value in _values(self.query[key])
            )
        return text

    def sqlalchemy(self) -> URL:
        """The same URL as SQLAlchemy's ``URL``, for ``create_engine`` (imports SQLAlchemy)."""
        from sqlalchemy.engine import URL

        return URL.create(
            self.drivername,
            username=self.username,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=self.query,
        )

    def __hash__(self) -> int:
        parts = (self.drivername, self.username, self.password, self.host, self.port)
        return hash((*parts, self.database, tuple(sorted(self.query.items()))))

    def __repr__(self) -> str:
        return self.render_as_string(hide_password=True)

    __str__ = __repr__


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def parse_database_url(raw: str, name: str = "DATABASE_URL") -> DatabaseURL:
    """Parse a PostgreSQL URL as users write it and point it at psycopg 3.

    Accepts ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://``,
    and libpq's multi-host form (``postgresql://h1:5432,h2:5432/db``), which
    becomes SQLAlchemy's (``?host=h1:5432&host=h2:5432``). The error names
    the setting (``name``) and never repeats the URL, since it may hold a password.
    """
    from urllib.parse import parse_qsl, unquote

    text = raw.strip()
    if not text:
        raise ConfigurationError(f"{name} is empty")
    not_a_url = ConfigurationError(
        f"{name} is not a URL; expected postgresql://user:password@host:port/database"
    )
    try:
        found = _URL.match(_hosts_in_query(text))
        if found is None:
            raise not_a_url
        parts = found.groupdict()
        port = int(parts["port"]) if parts["port"] else None
    except ValueError:
        raise not_a_url from None
    query: dict[str, str | tuple[str, ...]] = {}
    for key, value in parse_qsl(parts["query"] or ""):
        query[key] = (*_values(query[key]), value) if key in query else value
    username, password, database = (
        None if parts[part] is None else unquote(parts[part])
        for part in ("username", "password", "database")
    )
    if parts["name"] not in _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"{name} has scheme {parts['name']!r}; expected postgres:// or postgresql://"
        )
    if not database:
        raise ConfigurationError(f"{name} names no database (add /database_name at the end)")
    return DatabaseURL(
        DRIVER,
        username=username,
        password=password,
        host=parts["ipv4host"] or parts["ipv6host"],
        port=port,
        database=database,
        query=query,
    )


def _hosts_in_query(text: str) -> str:
    """libpq's ``//user@h1:p1,h2:p2/db`` as ``//user@/db?host=h1:p1&host=h2:p2``.

    SQLAlchemy's URL parser takes one host; its psycopg dialect takes several
    as repeated ``host`` query parameters. A URL with one host is left as is.
    """
    from urllib.parse import quote, urlsplit

    parts = urlsplit(text)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if "," not in hostlist:
        return text
    hosts = "&".join(f"host={quote(host, safe=':[]')}" for host in hostlist.split(","))
    query = f"{hosts}&{parts.query}" if parts.query else hosts
    return f"{parts.scheme}://{userinfo}{at}{parts.path}?{query}"


def replica_urls(settings: Settings) -> list[DatabaseURL]:
    """The replicas ``SHOPDB_REPLICA_URLS`` lists, parsed (none when it is unset).

    URLs are separated by commas (and any spaces); a comma inside one URL
    (libpq's multi-host form) does not separate: only one followed by a
    ``scheme://`` does.
    """
    if settings.replica_urls is None:
        return []
    text = settings.replica_urls.get_secret_value()
    pieces = re.split(r"[\s,]+(?=[A-Za-z][\w+.-]*://)", text.strip(" ,\t\n"))
    return [
        parse_database_url(piece.strip(" ,\t\n"), f"SHOPDB_REPLICA_URLS (URL {number})")
        for number, piece in enumerate(pieces, 1)
        if piece.strip(" ,\t\n")
    ]


def mask_url(url: DatabaseURL | str) -> str:
    """The URL as text with the password replaced by ``***``, for people to read."""
    from urllib.parse import unquote

    if isinstance(url, str):
        url = parse_database_url(url)
    text = url.set(drivername="postgresql").render_as_string(hide_password=True)
    # Socket paths in the query string are easier to read unescaped.
    return text if "?" not in text else text.split("?", 1)[0] + "?" + unquote(text.split("?", 1)[1])


def login_url(url: DatabaseURL, username: str, *, has_password: bool) -> str:
    """``url`` for another role, fit for any output: ``***`` if it has a password, else none."""
    return mask_url(url.set(username=username, password="***" if has_password else None))
