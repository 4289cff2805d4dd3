"""Users: registration, login and roles, as Store operations (see :mod:`shopdb.store.core`)."""

from __future__ import annotations

import unicodedata
from typing import Any

from shopdb import names, passwords
from shopdb.errors import Forbidden, InvalidInput, NotFound, TooManyAttempts
from shopdb.limits import USER_ROLES, role_problem, storable
from shopdb.schemas import NewUser, UserRead
from shopdb.store.arguments import ident
from shopdb.store.core import (
    ONE,
    Offload,
    Query,
    Steps,
    operation,
    returned,
    validated,
)

#: The roles (one list: :data:`shopdb.limits.USER_ROLES`).
CUSTOMER, STAFF = USER_ROLES

_PUBLIC = "id, username, email, created_at, role"
INSERT = (
    "INSERT INTO users (username, username_key, email, password_hash) VALUES (%s, %s, %s, %s) "
    f"RETURNING {_PUBLIC}"
)
GET = f"SELECT {_PUBLIC} FROM users WHERE id = %s"
# The app role cannot read password_hash: a login goes through two SECURITY DEFINER
# functions (migrations 0009, 0010). BEGIN counts the attempt and answers with the
# stored hash's settings (or made-up ones for an unknown login), or only with
# the seconds to wait; FINISH compares the candidate digest in the database and
# returns the user, storing a stronger hash in the same statement if given one.
# Both find a user by lower(email), or by the username's key (shopdb.names.login_key:
# look-alikes and case variants find the one account, and share one throttle count).
LOGIN_BEGIN = "SELECT hash_settings, digest_length, retry_after FROM shopdb_login_begin(%s, %s)"
LOGIN_FINISH = "SELECT * FROM shopdb_login_finish(%s, %s, %s)"
FIND_BY_EMAIL = f"SELECT {_PUBLIC} FROM users WHERE lower(email) = lower(%s)"
FIND_BY_USERNAME = f"SELECT {_PUBLIC} FROM users WHERE username_key = %s"
SET_ROLE = f"UPDATE users SET role = %s WHERE id = %s RETURNING {_PUBLIC}"


def user(row: tuple[Any, ...]) -> UserRead:
    """A row of ``id, username, email, created_at, role`` as the public shape."""
    return UserRead.model_validate(
        {"id": row[0], "username": row[1], "email": row[2], "created_at": row[3], "role": row[4]}
    )


def lookup(login: str) -> tuple[bool, str] | None:
    """How to find ``login``: (by email?, the value to compare), or None if no user can have it.

    An email (it holds '@') is compared without case, after NFKC; a username
    by its key (:func:`shopdb.names.login_key`).
    """
    if not storable(login):
        return None
    if "@" in login:
        return True, unicodedata.normalize("NFKC", login)
    key = names.login_key(login)
    return None if key is None else (False, key)


@operation()
def create(username: str, email: str, password: str) -> Steps[UserRead]:
    """Register a user; the password is stored only as an argon2id hash."""
    new = validated(NewUser, username=username, email=email, password=password)
    # Hashing takes tens of milliseconds: done before a connection is taken.
    password_hash = yield Offload(passwords.hash_password, (new.password.get_secret_value(),))
    key = names.username_key(new.username)
    row = yield Query(INSERT, (new.username, key, new.email, password_hash), ONE)
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
    how = lookup(login)
    if how is None:
        return None  # no account can have this login (NUL, '@'-less junk): no work to hide
    _, key = how
    # An unknown login's made-up settings show the parameters new hashes get.
    begin = (key, passwords.current_settings())
    settings, length, wait = returned((yield Query(LOGIN_BEGIN, begin, ONE)))
    if wait is not None:
        raise TooManyAttempts(int(wait))
    # Known or not, the same argon2 work (the settings of an unknown login are made up).
    digest = yield Offload(passwords.derive, (settings, length, password))
    fresh = None
    if digest is not None and passwords.settings_need_rehash(settings, length):
        # Hashed with weaker parameters: the stronger hash is stored if the password is right.
        fresh = yield Offload(passwords.hash_password, (password,))
    row = yield Query(LOGIN_FINISH, (key, digest or "", fresh), ONE)
    if row is None:
        return None
    # The login functions return the columns 0009 knew; the role comes with the user.
    return user(returned((yield Query(GET, (row[0],), ONE))))


@operation(read_only=True)
def get(user_id: int) -> Steps[UserRead]:
    """The user with ``user_id``; :class:`NotFound` if there is none."""
    ident(user_id, "user_id")
    row = yield Query(GET, (user_id,), ONE)
    if row is None:
        raise NotFound("user", user_id)
    return user(row)


@operation(read_only=True)
def find(login: str) -> Steps[UserRead]:
    """The user whose username or email is ``login``, found as authentication finds it."""
    if type(login) is not str:
        raise InvalidInput("login", "must be a string")
    how = lookup(login)
    row = None
    if how is not None:
        by_email, value = how
        row = yield Query(FIND_BY_EMAIL if by_email else FIND_BY_USERNAME, (value,), ONE)
    if row is None:
        raise NotFound("user", None, "no user has that username or email")
    return user(row)


@operation()
def set_role(user_id: int, role: str) -> Steps[UserRead]:
    """Make the user a customer or staff; :class:`NotFound` if there is none."""
    ident(user_id, "user_id")
    problem = role_problem(role)
    if problem is not None:
        raise InvalidInput("role", problem)
    row = yield Query(SET_ROLE, (role, user_id), ONE)
    if row is None:
        raise NotFound("user", user_id)
    return user(row)


@operation(read_only=True)
def require_staff(user_id: int) -> Steps[UserRead]:
    """The user, if they are staff; :class:`Forbidden` if they are not."""
    ident(user_id, "user_id")
    row = yield Query(GET, (user_id,), ONE)
    if row is None:
        raise NotFound("user", user_id)
    found = user(row)
    if found.role != STAFF:
        raise Forbidden("staff")
    return found
