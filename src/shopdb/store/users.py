"""Users: registration and login. SQL and row mapping; the Store calls these."""

from __future__ import annotations

from typing import Any

from shopdb.schemas import UserRead, trusted
from shopdb.store.runner import Conn, returned

_PUBLIC = "id, username, email, created_at"
INSERT = (
    f"INSERT INTO users (username, email, password_hash) VALUES (%s, %s, %s) RETURNING {_PUBLIC}"
)
GET = f"SELECT {_PUBLIC} FROM users WHERE id = %s"
# Both use the unique indexes on lower(...), so a login is one index probe.
BY_EMAIL = f"SELECT {_PUBLIC}, password_hash FROM users WHERE lower(email) = lower(%s)"
BY_USERNAME = f"SELECT {_PUBLIC}, password_hash FROM users WHERE lower(username) = lower(%s)"
# Only replaces the hash that was verified, so a concurrent password change wins.
REHASH = "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s"


def user(row: tuple[Any, ...]) -> UserRead:
    """A row of ``id, username, email, created_at`` as the public shape."""
    return trusted(
        UserRead, {"id": row[0], "username": row[1], "email": row[2], "created_at": row[3]}
    )


def insert(conn: Conn, prepare: bool, username: str, email: str, password_hash: str) -> UserRead:
    """Insert a user; unique violations surface as the driver's errors."""
    row = conn.execute(INSERT, (username, email, password_hash), prepare=prepare).fetchone()
    return user(returned(row))


def get(conn: Conn, prepare: bool, user_id: int) -> UserRead | None:
    """The user with ``user_id``, or None."""
    row = conn.execute(GET, (user_id,), prepare=prepare).fetchone()
    return None if row is None else user(row)


def for_login(conn: Conn, prepare: bool, login: str) -> tuple[UserRead, str] | None:
    """The user whose email (if ``login`` has an '@') or username matches, and its hash."""
    query = BY_EMAIL if "@" in login else BY_USERNAME
    row = conn.execute(query, (login,), prepare=prepare).fetchone()
    return None if row is None else (user(row), str(row[4]))


def rehash(conn: Conn, prepare: bool, user_id: int, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` if the user still has ``old``."""
    conn.execute(REHASH, (new, user_id, old), prepare=prepare)
