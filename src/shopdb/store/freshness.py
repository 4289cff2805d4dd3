"""Freshness tokens: what a writer hands back so its next reads never look older.

A token is the primary's WAL position once a write has committed
(:data:`POSITION`), as PostgreSQL writes it: ``0/3000148``, short enough for
a cookie or a header. ``store.after(token)`` gives a Store whose reads go to
a replica only once it has replayed past that position (:mod:`shopdb.db.routing`).
"""

from __future__ import annotations

from shopdb.db.routing import parse_lsn
from shopdb.errors import InvalidInput, ShopError
from shopdb.store.core import ONE, Query, Steps, operation, returned

#: The primary's WAL position a freshness token holds: past the commit of every write
#: acknowledged before it. With synchronous_commit on, the flush position is (commits
#: wait for their flush) and a replica can reach it (only flushed WAL is sent); with it
#: off, a commit may not be flushed yet, so the insert position.
POSITION = (
    "SELECT CASE current_setting('synchronous_commit') WHEN 'off' "
    "THEN pg_current_wal_insert_lsn() ELSE pg_current_wal_flush_lsn() END::text, "
    "pg_current_xact_id_if_assigned() IS NOT NULL"
)


def token_position(token: str | None) -> int | None:
    """The WAL position in a freshness token (None for no token).

    Raises :class:`~shopdb.errors.InvalidInput` (field ``token``) for anything
    that is not one: a token comes back from a cookie or a header, so it is input.
    """
    if token is None:
        return None
    try:
        return parse_lsn(token)
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(
            "token", "is not a freshness token (like 0/3000148, from freshness_token())"
        ) from None


@operation(read_only=True)  # on the primary: only it knows where its WAL is
def position() -> Steps[str]:
    """The primary's WAL position now: past every commit acknowledged so far."""
    row = returned((yield Query(POSITION, (), ONE)))
    if row[1]:
        # Inside a transaction that has written: its commit is still to come,
        # and a token taken now would be older than it.
        raise ShopError(
            "freshness_token() inside a transaction that has written would not cover "
            "its commit: take the token after the transaction commits"
        )
    return str(row[0])
