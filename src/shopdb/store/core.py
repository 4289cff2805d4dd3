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

The shells (:mod:`shopdb.store.sync` and :mod:`shopdb.store.aio`) drive the
generators: they take a pooled connection, run the statements, and retry
what may be retried. So the SQL, the input checks, the row decoding and the
error handling exist once, and the shells are the only code written twice:
about sixty lines each, every one of them I/O.

Why not generate the sync code from the async code, as psycopg does? Its
methods are the I/O; ours are almost all logic. Keeping the logic out of the
I/O leaves nothing worth generating and nothing that can drift.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, ParamSpec, TypeAlias, TypeVar

from pydantic import BaseModel, ValidationError

from shopdb.errors import (
    ConcurrencyConflict,
    DatabaseUnavailable,
    InvalidInput,
    PoolTimeout,
    ShopError,
)
from shopdb.limits import INT_MAX

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: What a :class:`Query` asks back: the first row (or None), every row, or the row count.
ONE, ALL, COUNT = 0, 1, 2


class Query(NamedTuple):
    """Run ``sql`` with ``params``; answer with rows as ``fetch`` says.

    ``prepare``: as a server-side prepared statement (the default). False for
    a statement whose best plan depends on its values (a search), which the
    server then plans with them every time instead of settling on a generic plan.
    """

    sql: str
    params: Sequence[Any] | Mapping[str, Any]
    fetch: int
    prepare: bool = True


class Offload(NamedTuple):
    """Call ``fn(*args)`` and answer with its result: CPU work kept off the event loop."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


Instruction: TypeAlias = Query | Offload
#: An operation's body: yields instructions, receives their answers, returns a T.
Steps: TypeAlias = Generator[Instruction, Any, T]


#: Whether a streaming replica may serve an operation (``Operation.replica``), when the
#: pool has replicas: ``"never"`` (writes, and reads that must see the latest state, like
#: a login); ``"fresh"``: one that has replayed the caller's freshness token, else the
#: primary; ``"stale"``: any within the lag bound (the catalog). See :mod:`shopdb.routing`.
ReplicaUse: TypeAlias = Literal["never", "fresh", "stale"]


@dataclass(frozen=True, slots=True)
class Operation(Generic[P, T]):
    """One Store operation: its steps, whether it only reads (and so may be retried),
    and whether a replica may serve it (:data:`ReplicaUse`)."""

    steps: Callable[P, Steps[T]]
    read_only: bool
    replica: ReplicaUse = "never"


def operation(
    *, read_only: bool = False, replica: ReplicaUse = "never"
) -> Callable[[Callable[P, Steps[T]]], Operation[P, T]]:
    """Mark a generator function as a Store operation; only a read may go to a replica."""
    if replica != "never" and not read_only:
        raise ValueError("only a read_only operation may be served by a replica")

    def wrap(steps: Callable[P, Steps[T]]) -> Operation[P, T]:
        return Operation(steps, read_only, replica)

    return wrap


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
