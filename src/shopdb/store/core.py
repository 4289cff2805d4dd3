"""The Store's core, written once for both ``Store`` and ``AsyncStore``.

Every operation is a generator function that does no I/O (sans-I/O): it checks
its arguments, then *yields* what it needs done and receives the answer.

* ``rows = yield Query(sql, params, ALL)``: run a statement, get its rows
  (``ONE``: the first row or None; ``COUNT``: the row count);
* ``value = yield Offload(fn, args)``: run CPU-heavy work (argon2), which the
  async shell sends to a worker thread so the event loop keeps serving;

and finally *returns* the model the caller gets, or raises a
:mod:`shopdb.errors` exception. A database error from a statement is thrown
into the generator (already translated), so an operation can say what it
means ("no such user" instead of "foreign key violation") or let it go.

The runner (:mod:`shopdb.store.runner_async`, and :mod:`shopdb.store.runner`
generated from it) drives the generators: it takes a pooled connection, runs
the statements, and retries what may be retried. So the SQL, the input
checks, the row decoding and the error handling exist once, in no flavour,
and the I/O around them is written once, async (docs/architecture.md).
"""

from __future__ import annotations

import random
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shopdb.db.steps import (
    ALL,
    COUNT,
    ONE,
    Instruction,
    Offload,
    Operation,
    P,
    Query,
    ReplicaUse,
    Steps,
    T,
    operation,
)
from shopdb.errors import (
    ConcurrencyConflict,
    DatabaseUnavailable,
    InvalidInput,
    PoolTimeout,
    ShopError,
)
from shopdb.limits import INT_MAX

__all__ = [
    "ALL",
    "COUNT",
    "ONE",
    "Instruction",
    "Offload",
    "Operation",
    "P",
    "Query",
    "ReplicaUse",
    "RetryPolicy",
    "Steps",
    "T",
    "operation",
]

M = TypeVar("M", bound=BaseModel)


class RetryPolicy:
    """What may run again, and after how long.

    A deadlock or serialization failure: the whole operation, up to
    ``retries`` times, after a jittered backoff so the transactions that
    collided do not collide again. A read that met a connection the server
    had closed (a restart, a failover): once, at once, on a fresh connection.
    Writes that met a dead connection are not retried: only the caller
    knows whether to try them again (``DatabaseUnavailable.retryable``).
    """

    __slots__ = ("retries",)

    def __init__(self, retries: int) -> None:
        self.retries = retries

    def delay(self, error: ShopError, attempt: int, read_only: bool) -> float | None:
        """Seconds to wait before running the operation again, or None to give up."""
        if isinstance(error, ConcurrencyConflict) and attempt < self.retries:
            return random.uniform(0, 0.01 * 2**attempt)  # noqa: S311 (jitter, not crypto)
        if (
            read_only
            and attempt == 0
            and isinstance(error, DatabaseUnavailable)
            and not isinstance(error, PoolTimeout)
        ):
            return 0.0
        return None


def validated(model: type[M], **values: object) -> M:
    """``values`` validated by ``model``, or :class:`InvalidInput` naming the first bad field."""
    from shopdb.schemas import invalid_input

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


def relabel(error: InvalidInput, field: str) -> InvalidInput:
    """An out-of-range error from an expression (field ``value``) names no column: name
    the argument whose value made the result overflow."""
    return InvalidInput(field, f"{error.reason} (the result would exceed {INT_MAX})")


def returned(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The row of an ``INSERT ... RETURNING``, which PostgreSQL always sends or raises."""
    if row is None:
        raise ShopError("the database returned no row for INSERT ... RETURNING")
    return row
