"""Password hashing with argon2id (argon2-cffi), at OWASP's recommended minimum.

OWASP's Password Storage Cheat Sheet asks for argon2id with at least 19 MiB of
memory, 2 iterations and 1 lane; :data:`HASHER` uses exactly that, so a login
costs tens of milliseconds, not hundreds. Hashes made with weaker parameters
report :func:`needs_rehash` and are upgraded at the next successful login.

A login never reads the stored hash: the database hands out its *settings*
(the PHC string without the digest: variant, version, parameters, salt),
:func:`derive` computes the digest the password gives under them, and the
database compares (migration ``0009``).
"""

from __future__ import annotations

import base64
import re

from argon2 import PasswordHasher, Type
from argon2.exceptions import HashingError, InvalidHashError, VerificationError
from argon2.low_level import hash_secret_raw

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


#: A PHC argon2 string without its digest: ``$argon2id$v=19$m=19456,t=2,p=1$<salt>``
#: (``v=`` is absent from hashes of argon2 1.0).
_SETTINGS = re.compile(
    r"^\$argon2(?P<variant>id|i|d)(?:\$v=(?P<version>\d+))?"
    r"\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$(?P<salt>[A-Za-z0-9+/]+)$"
)
_TYPES = {"id": Type.ID, "i": Type.I, "d": Type.D}
_VARIANT = {value: key for key, value in _TYPES.items()}
#: What :func:`derive` agrees to compute: argon2's own lower bounds, and upper ones so a
#: hash written with absurd parameters (the app role inserts hashes) cannot make a login
#: take gigabytes or minutes. Far above :data:`HASHER`'s (19 MiB, 2 passes, 1 lane).
_DIGEST_LENGTHS = range(4, 1025)
_MEMORY_KIB = range(8, 256 * 1024 + 1)
_PASSES = range(1, 17)
_LANES = range(1, 17)


def current_settings() -> str:
    """:data:`HASHER`'s parameters as a PHC prefix, without salt: what an unknown
    login's made-up settings look like (the database appends a salt)."""
    return (
        f"$argon2{_VARIANT[HASHER.type]}$v=19"
        f"$m={HASHER.memory_cost},t={HASHER.time_cost},p={HASHER.parallelism}"
    )


def derive(settings: str, digest_length: int, password: str) -> str | None:
    """The digest (unpadded base64, as PHC strings hold it) that argon2 gives
    ``password`` under ``settings``; None (after no work) if they are not argon2's.

    This is the one place a login runs argon2: a login the database throttles
    never reaches it.
    """
    found = _SETTINGS.match(settings)
    if found is None:
        return None
    memory, passes, lanes = int(found["m"]), int(found["t"]), int(found["p"])
    if not (
        digest_length in _DIGEST_LENGTHS
        and memory in _MEMORY_KIB
        and passes in _PASSES
        and lanes in _LANES
    ):
        return None
    salt = found["salt"]
    try:
        raw_salt = base64.b64decode(salt + "=" * (-len(salt) % 4), validate=True)
        digest = hash_secret_raw(
            # surrogatepass: even a password no database could store costs a full check.
            password.encode("utf-8", "surrogatepass"),
            raw_salt,
            time_cost=passes,
            memory_cost=memory,
            parallelism=lanes,
            hash_len=digest_length,
            type=_TYPES[found["variant"]],
            version=int(found["version"] or 16),
        )
    except (ValueError, HashingError):  # bad base64; parameters argon2 refuses
        return None
    return base64.b64encode(digest).decode("ascii").rstrip("=")


def settings_need_rehash(settings: str, digest_length: int) -> bool:
    """Whether a hash with these settings was made with weaker parameters than :data:`HASHER`."""
    return needs_rehash(f"{settings}${'A' * ((digest_length * 4 + 2) // 3)}")
