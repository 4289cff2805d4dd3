"""Where each Store operation runs: the primary, or one of its streaming replicas.

Pure logic, shared by the sync and the async pool: their replica sets
(:mod:`shopdb.db.replicas`, :mod:`shopdb.db.replicas_async`) do the I/O (probing
the servers, opening and closing the replicas' pools) and keep this state.

The rules, each in one place here:

* **Routing** (:meth:`Router.route`): an operation goes to the primary unless
  it may be served by a replica (``Operation.replica``). A catalog read
  (``"stale"``) goes to a usable replica, round robin. A read given a
  freshness token (``"fresh"`` or ``"stale"``) goes to a usable replica only
  if that replica has replayed past the token: known from the last probe, or
  checked on the replica's connection just before the read (one extra round
  trip, :func:`caught_up`); else to the primary. No wait: the primary can
  answer at once.
* **Read-your-writes**: a token is the primary's WAL position after a write
  committed (:mod:`shopdb.store.freshness`, a short text like ``0/3000148``). A replica
  whose ``pg_last_wal_replay_lsn()`` is at or past it has replayed the
  write's commit record, so it shows the write.
* **Health** (:meth:`Router.judge`): a replica is usable when it answers, is
  still a standby, and is behind the primary by at most ``max_lag`` seconds.
  The lag is an upper bound: each probe samples the primary's WAL position,
  and a replica that has replayed the primary's position of time ``t`` lags
  at most ``now - t``; a replica's own ``now() -
  pg_last_xact_replay_timestamp()`` is an upper bound too (once it is
  behind, nothing it lacks is older than the last commit it replayed). The
  smaller bound counts; unknown counts as too far.
* **Failures** (:meth:`Router.reroute`): a read that met a replica down goes
  to another usable replica or the primary at once (reads are safe to run
  again) and the replica is left out until a probe finds it well; a read
  the replica was too far behind for goes to the primary.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shopdb.db.steps import ONE, Query, Steps
from shopdb.errors import DatabaseUnavailable, ShopError

if TYPE_CHECKING:
    from shopdb.config import DatabaseURL, Settings
    from shopdb.db.steps import Operation

_LSN_MAX = 0xFFFFFFFF
_HEX = frozenset("0123456789abcdefABCDEF")


def parse_lsn(text: str) -> int:
    """``"16/B374D848"`` (PostgreSQL's ``pg_lsn`` text) as one integer; ValueError if not one."""
    high, slash, low = text.partition("/")
    if not (slash and 0 < len(high) <= 8 and 0 < len(low) <= 8 and _HEX.issuperset(high + low)):
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value: int) -> str:
    """An integer WAL position as PostgreSQL writes it (``16/B374D848``)."""
    return f"{value >> 32:X}/{value & _LSN_MAX:X}"


log = logging.getLogger("shopdb.db.routing")

PoolT = TypeVar("PoolT")
T = TypeVar("T")

#: How far the primary has written WAL a replica can have: sampled by every probe.
PRIMARY_PROBE = "SELECT pg_current_wal_flush_lsn()::text"
#: A replica's state: still a standby? replayed up to where? last replayed commit how old?
REPLICA_PROBE = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)
#: How far a replica has replayed, checked just before a read that carries a token.
REPLAYED = "SELECT pg_last_wal_replay_lsn()::text"


class Behind(ShopError):
    """The replica chosen for a read had not replayed the caller's token: read elsewhere.

    Raised by :func:`caught_up` and caught by the shells; it never leaves shopdb.
    """


class Replica(Generic[PoolT]):
    """One replica: its pool while it is usable, what the probes found, and its counters."""

    __slots__ = (
        "behind",
        "failed",
        "lag",
        "name",
        "pool",
        "problem",
        "replayed",
        "sent",
        "url",
        "usable",
    )

    def __init__(self, url: DatabaseURL, name: str) -> None:
        self.url = url
        #: The URL with its password hidden: how logs and stats name this replica.
        self.name = name
        #: The replica's pool, open while the replica answers (None while it is down).
        self.pool: PoolT | None = None
        #: Whether reads may go here now.
        self.usable = False
        #: Why not, for people (None when usable).
        self.problem: str | None = "not probed yet"
        #: The furthest WAL position this replica is known to have replayed.
        self.replayed = 0
        #: How far behind the primary it may be, in seconds (None: unknown).
        self.lag: float | None = None
        #: Operations sent here; of those, how many found it behind a token, or down.
        self.sent = 0
        self.behind = 0
        self.failed = 0

    def saw(self, replayed: int) -> None:
        """The replica has replayed at least up to ``replayed``."""
        self.replayed = max(self.replayed, replayed)


@dataclass(frozen=True)
class ReplicaStatus:
    """A snapshot of one replica: whether reads go there, and what went there."""

    #: The replica's URL, password hidden.
    url: str
    #: Whether reads may go there now.
    usable: bool
    #: Why not (None when usable): down, lagging, or not a standby any more.
    problem: str | None
    #: How far behind the primary it may be, in seconds (an upper bound; None: unknown).
    lag: float | None
    #: The furthest WAL position it is known to have replayed (``0/3000148``).
    replayed: str
    #: Operations sent there.
    sent: int
    #: Of those, reads it had not replayed the caller's token for (served by the primary).
    behind: int
    #: Of those, reads that found it down (served elsewhere).
    failed: int

    @property
    def served(self) -> int:
        """Operations this replica ran."""
        return self.sent - self.behind - self.failed


@dataclass(frozen=True)
class RoutingStats:
    """Where operations went: the primary, and each replica."""

    #: Operations the primary ran (writes, reads that must be fresh, fallbacks).
    primary: int
    replicas: tuple[ReplicaStatus, ...]

    @property
    def usable(self) -> int:
        """How many replicas reads may go to now."""
        return sum(r.usable for r in self.replicas)


class Route(Generic[PoolT]):
    """Where one attempt of an operation runs: a pool, the replica behind it if any,
    and the WAL position to check on that replica first (None: no check)."""

    __slots__ = ("after", "check", "hops", "op", "pool", "replica")

    def __init__(
        self,
        op: Operation[..., Any],
        after: int | None,
        pool: PoolT,
        *,
        replica: Replica[PoolT] | None = None,
        check: int | None = None,
        hops: int = 0,
    ) -> None:
        self.op = op
        self.after = after
        self.pool = pool
        self.replica = replica
        self.check = check
        self.hops = hops

    def steps(self, steps: Steps[T]) -> Steps[T]:
        """The operation's steps, behind the replay check when this route has one."""
        if self.check is None or self.replica is None:
            return steps
        return caught_up(steps, self.replica, self.check)


def caught_up(steps: Steps[T], replica: Replica[Any], wanted: int) -> Steps[T]:
    """Check ``replica`` has replayed WAL position ``wanted``, then run ``steps``.

    The check is the first statement on the connection the read then uses;
    a replica that is behind raises :class:`Behind` before the read is sent.
    """
    row = yield Query(REPLAYED, (), ONE)
    if row is not None and row[0] is not None:
        replica.saw(parse_lsn(row[0]))
    if replica.replayed < wanted:
        raise Behind(f"{replica.name} has replayed {format_lsn(replica.replayed)}")
    return (yield from steps)


class Router(Generic[PoolT]):
    """The routing rules and the state they read (see the module's docstring).

    Thread-safe: routing reads the replicas' flags and counts under a lock;
    the probes (one round at a time) change the flags.
    """

    def __init__(self, primary: PoolT, urls: Sequence[DatabaseURL], max_lag: float) -> None:
        from shopdb.config import mask_url

        #: The primary's pool: every write, and every read no replica may serve.
        self.primary = primary
        self.replicas: list[Replica[PoolT]] = [Replica(url, mask_url(url)) for url in urls]
        self.max_lag = max_lag
        self.primary_sent = 0
        # (monotonic time, primary WAL position) samples, oldest first; see judge().
        self._samples: deque[tuple[float, int]] = deque()
        self._turn = itertools.count()
        self._lock = threading.Lock()

    # -- routing (every operation) -------------------------------------------

    def route(self, op: Operation[..., Any], after: int | None, hops: int = 0) -> Route[PoolT]:
        """Where ``op`` runs, for a caller who wrote up to WAL position ``after`` (or None)."""
        use = op.replica
        if use == "never" or (after is None and use != "stale"):
            return self._primary(op, after)
        usable = [r for r in self.replicas if r.usable]
        if not usable or hops > len(self.replicas):
            return self._primary(op, after)
        turn = next(self._turn)
        chosen, check = usable[turn % len(usable)], None
        if after is not None:
            ready = [r for r in usable if r.replayed >= after]
            if ready:
                chosen = ready[turn % len(ready)]
            else:
                check = after
        pool = chosen.pool
        if pool is None:  # closed by a probe since we looked
            return self._primary(op, after)
        with self._lock:
            chosen.sent += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s on replica %s%s", _name(op), chosen.name, " (checked)" if check else "")
        return Route(op, after, pool, replica=chosen, check=check, hops=hops)

    def _primary(self, op: Operation[..., Any], after: int | None) -> Route[PoolT]:
        with self._lock:
            self.primary_sent += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s on the primary", _name(op))
        return Route(op, after, self.primary)

    def reroute(self, route: Route[PoolT], error: ShopError) -> Route[PoolT] | None:
        """Where to run ``route``'s operation again after ``error`` (None: the error stands).

        Only a replica's own failures move a read: it was behind the token
        (to the primary), or it is down (to another replica, or the primary;
        the replica is left out until a probe finds it well again).
        """
        replica = route.replica
        if replica is None:
            return None
        if isinstance(error, Behind):
            with self._lock:
                replica.behind += 1
            return self._primary(route.op, route.after)
        if isinstance(error, DatabaseUnavailable):
            with self._lock:
                replica.failed += 1
            if replica.usable:
                replica.usable = False
                replica.problem = f"failed: {error}"
                log.warning("replica %s left out: a read failed there: %s", replica.name, error)
            return self.route(route.op, route.after, route.hops + 1)
        return None

    # -- health (every probe) --------------------------------------------------

    def observe_primary(self, now: float, position: str | None) -> None:
        """The primary's WAL position at ``now`` (None: the primary did not answer)."""
        if position is None:
            return
        samples = self._samples
        samples.append((now, parse_lsn(position)))
        # Keep one sample at least max_lag old: the one a replica must have replayed.
        while len(samples) > 1 and samples[1][0] <= now - self.max_lag:
            samples.popleft()

    def judge(self, replica: Replica[PoolT], now: float, row: Sequence[Any]) -> str | None:
        """What a probe's :data:`REPLICA_PROBE` row says is wrong with ``replica`` (None: fine)."""
        in_recovery, replayed, replay_age = row
        if not in_recovery:
            replica.lag = None
            return "not a standby (promoted?)"
        if replayed is not None:
            replica.saw(parse_lsn(replayed))
        lag = self._lag(now, replica.replayed, replay_age)
        replica.lag = lag
        if lag is None:
            # Behind every position kept; the oldest is as old as the bound, or start-up.
            oldest = now - self._samples[0][0] if self._samples else 0.0
            if oldest >= self.max_lag:
                return f"lagging over {oldest:.1f} s (bound {self.max_lag:g} s)"
            return "lag unknown (no commit replayed since it started)"
        if lag > self.max_lag:
            return f"lagging up to {lag:.1f} s (bound {self.max_lag:g} s)"
        return None

    def _lag(self, now: float, replayed: int, replay_age: float | None) -> float | None:
        samples = self._samples
        if samples and replayed >= samples[-1][1]:
            return 0.0
        bounds = [max(0.0, replay_age)] if replay_age is not None else []
        for when, position in reversed(samples):
            if position <= replayed:
                bounds.append(now - when)
                break
        return min(bounds) if bounds else None

    def settle(self, replica: Replica[PoolT], problem: str | None) -> None:
        """Record a probe's verdict: reads go to ``replica`` again, or stay away."""
        usable = problem is None and replica.pool is not None
        if usable and not replica.usable:
            log.info("replica %s in use (lag %s s)", replica.name, _seconds(replica.lag))
        elif not usable and replica.usable:
            log.warning("replica %s left out: %s", replica.name, problem)
        replica.problem = problem
        replica.usable = usable

    def stats(self) -> RoutingStats:
        """Where operations went, and each replica's state."""
        with self._lock:
            return RoutingStats(
                primary=self.primary_sent,
                replicas=tuple(
                    ReplicaStatus(
                        url=r.name,
                        usable=r.usable,
                        problem=r.problem,
                        lag=r.lag,
                        replayed=format_lsn(r.replayed),
                        sent=r.sent,
                        behind=r.behind,
                        failed=r.failed,
                    )
                    for r in self.replicas
                ),
            )


def replica_settings(settings: Settings) -> Settings:
    """The settings of a replica's pool: the primary's, sized by ``replica_pool_size``."""
    return settings.model_copy(
        update={
            "replica_urls": None,
            "pool_size": settings.replica_pool_size or settings.pool_size,
        }
    )


def _name(op: Operation[..., Any]) -> str:
    steps = op.steps
    return f"{steps.__module__.rsplit('.', 1)[-1]}.{getattr(steps, '__name__', steps)}"


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f}"
