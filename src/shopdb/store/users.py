"""Users: registration and login, as Store operations (see :mod:`shopdb.store.core`)."""

from __future__ import annotations

import unicodedata
from typing import Any

from shopdb import passwords
from shopdb.errors import InvalidInput, NotFound, TooManyAttempts
from shopdb.schemas import NewUser, UserRead
from shopdb.store.arguments import ident
from shopdb.store.core import (
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
# The app role cannot read password_hash: a login goes through two SECURITY DEFINER
# functions (migration 0009). BEGIN counts the attempt and answers with the
# stored hash's settings (or made-up ones for an unknown login), or only with
# the seconds to wait; FINISH compares the candidate digest in the database and
# returns the user, storing a stronger hash in the same statement if given one.
LOGIN_BEGIN = "SELECT hash_settings, digest_length, retry_after FROM shopdb_login_begin(%s, %s)"
LOGIN_FINISH = "SELECT * FROM shopdb_login_finish(%s, %s, %s)"


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


@operation()  # not read-only: it counts the attempt, so it is never run twice for one call
def authenticate(login: str, password: str) -> Steps[UserRead | None]:
    """The user whose username or email (any case) is ``login``, if ``password`` is theirs.

    :class:`TooManyAttempts` after :data:`~shopdb.limits.LOGIN_ATTEMPTS` tries of one
    login within :data:`~shopdb.limits.LOGIN_WINDOW` seconds, for known and unknown
    logins alike, without running argon2.
    """
    if type(login) is not str:
        raise InvalidInput("login", "must be a string")
    if type(password) is not str:
        raise InvalidInput("password", "must be a string")
    if not storable(login):
        return None  # no account can have this login (NUL, a lone surrogate): no work to hide
    # Names are stored in NFKC form: look them up the same way.
    login = unicodedata.normalize("NFKC", login)
    # An unknown login's made-up settings show the parameters new hashes get.
    begin = (login, passwords.current_settings())
    settings, length, wait = returned((yield Query(LOGIN_BEGIN, begin, ONE)))
    if wait is not None:
        raise TooManyAttempts(int(wait))
    # Known or not, the same argon2 work (the settings of an unknown login are made up).
    digest = yield Offload(passwords.derive, (settings, length, password))
    fresh = None
    if digest is not None and passwords.settings_need_rehash(settings, length):
        # Hashed with weaker parameters: the stronger hash is stored if the password is right.
        fresh = yield Offload(passwords.hash_password, (password,))
    row = yield Query(LOGIN_FINISH, (login, digest or "", fresh), ONE)
    return None if row is None else user(row)


@operation(read_only=True)
def get(user_id: int) -> Steps[UserRead]:
    """The user with ``user_id``; :class:`NotFound` if there is none."""
    ident(user_id, "user_id")
    row = yield Query(GET, (user_id,), ONE)
    if row is None:
        raise NotFound("user", user_id)
    return user(row)
