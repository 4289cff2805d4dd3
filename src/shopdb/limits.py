"""Bounds on stored values, shared by the input schemas and the database checks.

The database enforces each of these itself (migration ``harden_integrity``);
the schemas check them first so a caller gets the same message sooner.
"""

from __future__ import annotations

#: Longest username, in characters.
USERNAME_MAX = 64
#: Longest email address, in characters (RFC 5321's limit on a path).
EMAIL_MAX = 254
#: Longest product name, in characters.
PRODUCT_NAME_MAX = 200
#: Shortest and longest password accepted for hashing, in characters.
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
#: An email must look like one: something, an @, a domain with a dot; no spaces.
#: Written so that Python's ``re`` and PostgreSQL's ``~`` read it the same way.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: PostgreSQL INTEGER bounds (ids, counts, quantities).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
