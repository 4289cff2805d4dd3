"""Users: registration and login, as Store operations (see :mod:`shopdb.store.core`)."""

from __future__ import annotations

import unicodedata
from typing import Any

from shopdb import passwords
from shopdb.errors import InvalidInput, NotFound
from shopdb.schemas import NewUser, UserRead
from shopdb.store.arguments import ident
from shopdb.store.core import (
    COUNT,
    ONE,
    Offload,
    Query,
    Steps,
    operation,
    returned,
    storable,
    validated,
)

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
    return UserRead.model_validate(
        {"id": row[0], "username": row[1], "email": row[2], "created_at": row[3]}
    )


@operation()
def create(username: str, email: str, password: str) -> Steps[UserRead]:
    """Register a user; the password is stored only as an argon2id hash."""
    new = validated(NewUser, username=username, email=email, password=password)
    # Hashing takes tens of milliseconds: done before a connection is taken.
    password_hash = yield Offload(passwords.hash_password, (new.password.get_secret_value(),))
    row = yield Query(INSERT, (new.username, new.email, password_hash), ONE)
    return user(returned(row))


@operation(read_only=True)  # the rehash is a compare-and-set: running it twice is harmless
def authenticate(login: str, password: str) -> Steps[UserRead | None]:
    """The user whose username or email (any case) is ``login``, if ``password`` is theirs."""
    if type(login) is not str:
        raise InvalidInput("login", "must be a string")
    if type(password) is not str:
        raise InvalidInput("password", "must be a string")
    row = None
    if storable(login):
        # Names are stored in NFKC form: look them up the same way.
        login = unicodedata.normalize("NFKC", login)
        row = yield Query(BY_EMAIL if "@" in login else BY_USERNAME, (login,), ONE)
    if row is None or not storable(password):
        # The same argon2 work as a real check, so timing reveals nothing.
        yield Offload(passwords.verify_password, (passwords.dummy_hash(), password))
        return None
    found, stored = user(row), str(row[4])
    if not (yield Offload(passwords.verify_password, (stored, password))):
        return None
    if passwords.needs_rehash(stored):
        fresh = yield Offload(passwords.hash_password, (password,))
        yield Query(REHASH, (fresh, found.id, stored), COUNT)
    return found


@operation(read_only=True)
def get(user_id: int) -> Steps[UserRead]:
    """The user with ``user_id``; :class:`NotFound` if there is none."""
    ident(user_id, "user_id")
    row = yield Query(GET, (user_id,), ONE)
    if row is None:
        raise NotFound("user", user_id)
    return user(row)
