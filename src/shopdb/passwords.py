"""Password hashing with argon2id (argon2-cffi), at OWASP's recommended minimum.

OWASP's Password Storage Cheat Sheet asks for argon2id with at least 19 MiB of
memory, 2 iterations and 1 lane; :data:`HASHER` uses exactly that, so a login
costs tens of milliseconds, not hundreds. Hashes made with weaker parameters
report :func:`needs_rehash` and are upgraded at the next successful login.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id, 19 MiB, 2 iterations, 1 lane (OWASP minimum).
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` in PHC string format."""
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False for a malformed hash."""
    try:
        # surrogatepass: even a password no database could store costs a full check.
        return HASHER.verify(password_hash, password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether ``password_hash`` was made with weaker parameters than :data:`HASHER`."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def dummy_hash() -> str:
    """A real hash to verify against when no user matched, so timing reveals nothing."""
    return HASHER.hash("shopdb: no such user")
