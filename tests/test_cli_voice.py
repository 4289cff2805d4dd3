"""One CLI voice (issue 20, item 5): every command, one exit-code table, one wording.

Exit status: 0 done, 1 "no" (pending migrations, drift), 2 error (no database,
cannot connect, bad input). Each command is run against a database that does
not exist, a port nothing listens on, and a database whose migrations are all
pending; an error is one ``Error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopdb.testing import DatabaseFactory

from .helpers import run_cli

#: Every command that talks to the database, with the arguments it needs.
#: ``{csv}`` is a file of products.
COMMANDS: list[tuple[str, ...]] = [
    ("status",),
    ("migration", "list"),
    ("migration", "list", "--json"),
    ("migration", "pending"),
    ("migration", "run", "--sql"),
    ("migration", "revert"),
    ("migration", "redo"),
    ("check",),
    ("print-schema",),
    ("seed", "--products", "1", "--users", "1", "--carts", "1"),
    ("import", "products", "{csv}"),
    ("user", "show", "alice"),
    ("user", "staff", "alice"),
]
#: Commands that only print or change something when the database is there.
NOT_CONNECTING = [("database", "url")]

#: Exit status on a database whose migrations are all pending (0: it answers).
ON_PENDING = {
    ("migration", "pending"): 1,
    ("check",): 1,
    # Seeding and importing need the tables: an error naming them, one line.
    ("seed", "--products", "1", "--users", "1", "--carts", "1"): 2,
    ("import", "products", "{csv}"): 2,
    ("user", "show", "alice"): 2,
    ("user", "staff", "alice"): 2,
}

NO_RETRY = {"SHOPDB_CONNECT_RETRY": "0"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _args(command: tuple[str, ...], folder: Path) -> list[str]:
    csv = folder / "products.csv"
    if not csv.exists():
        csv.write_text("name,price,inventory_count\nTea,1.00,3\n")
    return [part.replace("{csv}", str(csv)) for part in command]


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def missing_db(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A URL naming a database that does not exist."""
    name = f"shopdb_voice_{secrets.token_hex(4)}"
    yield shopdb_server.url(name)
    shopdb_server.drop(name)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_database_is_exit_2_in_statuss_words(
    command: tuple[str, ...], missing_db: str, tmp_path: Path
) -> None:
    name = missing_db.split("?", maxsplit=1)[0].rsplit("/", 1)[1]
    result = run_cli("--database-url", missing_db, *_args(command, tmp_path), env=NO_RETRY)
    assert result.returncode == 2, result.stderr
    assert _one_error_line(result.stderr) == (
        f"Error: database '{name}' does not exist (run `shopdb setup` to create it)"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_port_nobody_listens_on_is_exit_2_in_statuss_words(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    port = _closed_port()
    url = f"postgresql://shop:secret@127.0.0.1:{port}/shop"
    result = run_cli("--database-url", url, *_args(command, tmp_path), env=NO_RETRY)
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result.stderr)
    assert line.startswith(f"Error: cannot reach PostgreSQL at 127.0.0.1:{port}: "), line
    assert "secret" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_pending_migrations_are_exit_1_only_where_that_is_the_answer(
    command: tuple[str, ...], empty_db: str, tmp_path: Path
) -> None:
    result = run_cli("--database-url", empty_db, *_args(command, tmp_path), env=NO_RETRY)
    expected = ON_PENDING.get(command, 0)
    assert result.returncode == expected, (result.stdout, result.stderr)
    if expected == 2:
        _one_error_line(result.stderr)
    else:
        assert "Error" not in result.stderr


def test_database_url_needs_no_connection(missing_db: str) -> None:
    result = run_cli("--database-url", missing_db, "database", "url")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("postgresql://")


def test_drop_and_reset_of_a_missing_database_say_so(missing_db: str) -> None:
    name = missing_db.split("?", maxsplit=1)[0].rsplit("/", 1)[1]
    dropped = run_cli("--database-url", missing_db, "database", "drop", "--yes", env=NO_RETRY)
    assert (dropped.returncode, dropped.stderr) == (0, "")
    assert dropped.stdout.strip() == f"database {name} does not exist; nothing to drop"

    reset = run_cli("--database-url", missing_db, "database", "reset", "--yes", env=NO_RETRY)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.startswith(f"database {name} did not exist; created it\n")
    assert "up to date" in reset.stdout

    dropped = run_cli("--database-url", missing_db, "database", "drop", "--yes")
    assert (dropped.returncode, dropped.stdout.strip()) == (0, f"dropped database {name}")


@pytest.mark.parametrize(
    "command",
    [*COMMANDS, *NOT_CONNECTING, ("database", "drop", "--yes"), ("database", "reset", "--yes")],
    ids=" ".join,
)
def test_in_an_empty_folder_no_command_but_setup_creates_a_database(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    args = _args(command, tmp_path)
    result = run_cli(*args, cwd=folder)
    assert result.returncode == 2, result.stderr
    assert _one_error_line(result.stderr) == (
        "Error: there is no database yet: DATABASE_URL is not set and no .shopdb/ "
        "(the embedded server) was found here or above; run `shopdb setup`"
    )
    assert list(folder.iterdir()) == []
