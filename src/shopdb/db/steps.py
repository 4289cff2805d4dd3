"""The sans-I/O protocol between an operation and the code that runs it.

An operation (a Store method, a replica probe) is a generator that does no
I/O: it *yields* an instruction (:class:`Query`: run this statement;
:class:`Offload`: run this CPU-heavy call) and receives the answer. The
runners (:mod:`shopdb.store.runner_async` and its generated twin, and the
replica prober of :mod:`shopdb.db.routing`) do the I/O. It lives in the
connection layer so that routing can speak it without importing the Store.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, ParamSpec, TypeAlias, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

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
#: primary; ``"stale"``: any within the lag bound (the catalog). See :mod:`shopdb.db.routing`.
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
