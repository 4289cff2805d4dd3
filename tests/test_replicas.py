"""Reads on streaming replicas: routed, never stale for the writer, and never failing for them.

A real primary and two real streaming replicas (``tests/replication.py``),
both flavours. Where a read went is proved twice: by the router's counters
and by the data (a replica whose replay is paused serves the old price; the
primary serves the new one). Background probing is off (an hour) unless a
test is about it: the tests call ``probe()`` when they want the router to
look, so what it sees is certain.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from shopdb import AsyncStore, Store
from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.db import AsyncPool, Pool
from shopdb.db.routing import Router, RoutingStats
from shopdb.errors import InvalidInput
from shopdb.migrate import migrator

from .flavours import Flavour, LoopThread, as_store
from .replication import HANG_GUARD, Cluster, Server

#: Long enough that no probe runs unless the test asks for one.
NEVER = 3600.0


def settings(replicas: list[Server], **overrides: object) -> Settings:
    """Test settings for a pool with ``replicas``: no .env, no background probes, no lag bound."""
    values: dict[str, object] = {
        "_env_file": None,
        "connect_retry": 0,
        "pool_size": 2,
        "replica_urls": ",".join(r.url() for r in replicas),
        "replica_max_lag": NEVER,
        "replica_probe_interval": NEVER,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A migrated primary and two streaming replicas of it, for the whole session."""
    with Cluster(replicas=2) as started:
        migrator(started.primary.url(), settings=settings([])).run()
        started.sync()
        yield started


@pytest.fixture
def healthy(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, put back as it was after the test: every replica up and replaying."""
    yield cluster
    for replica in cluster.replicas:
        if not replica.running():
            replica.start()
        replica.resume()
    cluster.sync()


@dataclass
class Routed:
    """A Store (either flavour) on a pool with replicas, and the pool's router."""

    store: Store
    router: Router[Any]
    #: Runs a probe round now (in the pool's flavour) and returns the stats.
    probe: Callable[[], RoutingStats]
    #: ``store.after(token)`` in the store's flavour.
    after: Callable[[str | None], Store]

    def stats(self) -> RoutingStats:
        """Where operations went so far."""
        return self.router.stats()


@pytest.fixture
def routed_factory(
    flavour: Flavour, loop_thread: LoopThread, healthy: Cluster
) -> Iterator[Callable[..., Routed]]:
    """Makes a :class:`Routed` on the cluster (closed after the test), settings overridable."""
    closers: list[Callable[[], None]] = []

    def make(**overrides: object) -> Routed:
        chosen = settings(healthy.replicas, **overrides)
        target = Target(parse_database_url(healthy.primary.url()))
        if flavour == "sync":
            pool = Pool.open(target, chosen)
            closers.append(pool.close)
            replicas = pool.replicas
            assert replicas is not None
            sync_store = Store(pool)
            return Routed(sync_store, replicas, replicas.probe, sync_store.after)
        apool = loop_thread.run(AsyncPool.open(target, chosen))
        closers.append(lambda: loop_thread.run(apool.close()))
        areplicas = apool.replicas
        assert areplicas is not None
        astore = AsyncStore(apool)
        return Routed(
            as_store(astore, loop_thread),
            areplicas,
            lambda: loop_thread.run(areplicas.probe()),
            lambda token: as_store(astore.after(token), loop_thread),
        )

    try:
        yield make
    finally:
        for close in reversed(closers):
            close()


@pytest.fixture
def routed(routed_factory: Callable[..., Routed]) -> Routed:
    """A :class:`Routed` with the default test settings."""
    return routed_factory()


def unique(name: str) -> str:
    """``name`` made unique: the cluster's data is committed, and shared by every test."""
    return f"{name}-{secrets.token_hex(4)}"


def _served(stats: RoutingStats) -> list[int]:
    return [r.served for r in stats.replicas]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()``; a hang guard, not an expectation."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


# -- routing -------------------------------------------------------------------


def test_catalog_reads_go_to_the_replicas_and_everything_else_to_the_primary(
    routed: Routed, healthy: Cluster
) -> None:
    store = routed.store
    assert routed.stats().usable == 2
    tea = store.create_product("Tea", "4.50", 10)
    name = unique("routed")
    user = store.create_user(name, f"{name}@example.com", "correct horse")
    cart = store.create_cart(user.id)
    healthy.sync()
    before = routed.stats()

    for _ in range(10):
        assert store.get_product(tea.id).name == "Tea"
    assert tea.id in [p.id for p in store.list_products(after_id=tea.id - 1, limit=5)]
    after_reads = routed.stats()
    assert after_reads.primary == before.primary
    served = [a - b for a, b in zip(_served(after_reads), _served(before), strict=True)]
    assert sum(served) == 11
    assert all(n >= 5 for n in served), served  # round robin over both

    # A user's own data, and writes, stay on the primary.
    assert store.get_user(user.id).id == user.id
    assert store.get_cart(cart.id).items == []
    store.add_to_cart(cart.id, tea.id, 1)
    assert routed.stats().primary == before.primary + 3
    assert _served(routed.stats()) == _served(after_reads)


def test_a_paused_replica_serves_the_catalog_as_it_was(routed: Routed, healthy: Cluster) -> None:
    store = routed.store
    tea = store.create_product("Paused tea", "4.50", 10)
    healthy.sync()
    for replica in healthy.replicas:
        replica.pause()
    store.update_product(tea.id, price="5.00")
    # Proof by the data: the replicas have not replayed the update.
    assert store.get_product(tea.id).price == Decimal("4.50")


def test_a_writer_reads_their_write_whichever_server_answers(
    routed: Routed, healthy: Cluster
) -> None:
    store = routed.store
    tea = store.create_product("Fresh tea", "4.50", 10)
    healthy.sync()
    for replica in healthy.replicas:
        replica.pause()
    store.update_product(tea.id, price="5.00")
    token = store.freshness_token()
    assert len(token) <= 17  # two 8-digit hex halves and a slash: fits any cookie

    # Not replayed anywhere: the replica checked says so, the primary serves the read.
    before = routed.stats()
    assert routed.after(token).get_product(tea.id).price == Decimal("5.00")
    after = routed.stats()
    assert after.primary == before.primary + 1
    assert sum(r.behind for r in after.replicas) == sum(r.behind for r in before.replicas) + 1
    assert _served(after) == _served(before)

    # Replayed: a replica serves it, and shows the write.
    for replica in healthy.replicas:
        replica.resume()
    healthy.sync()
    assert routed.after(token).get_product(tea.id).price == Decimal("5.00")
    final = routed.stats()
    assert final.primary == after.primary
    assert sum(_served(final)) == sum(_served(after)) + 1

    # Without the token, or with no token yet, the catalog is read as before.
    assert routed.after(None).get_product(tea.id).price == Decimal("5.00")
    assert routed.stats().primary == final.primary


def test_a_token_a_probe_has_seen_replayed_costs_no_check(routed: Routed, healthy: Cluster) -> None:
    store = routed.store
    tea = store.create_product("Known tea", "4.50", 10)
    token = store.freshness_token()
    healthy.sync()
    routed.probe()  # the probe now knows both replicas are past the token
    before = routed.stats()
    assert routed.after(token).get_product(tea.id).name == "Known tea"
    after = routed.stats()
    assert sum(_served(after)) == sum(_served(before)) + 1
    assert after.primary == before.primary


def test_reads_a_replica_may_serve_only_when_fresh_stay_on_the_primary_without_a_token(
    routed: Routed, healthy: Cluster
) -> None:
    """``get_user`` may not go to a replica at all (not marked); with a token it still
    goes to the primary, and a token never sends a write to a replica."""
    store = routed.store
    name = unique("own")
    user = store.create_user(name, f"{name}@example.com", "correct horse")
    token = store.freshness_token()
    healthy.sync()
    before = routed.stats()
    fresh = routed.after(token)
    assert fresh.get_user(user.id).username == name
    fresh.create_product("Written with a token", "1.00", 1)
    assert routed.stats().primary == before.primary + 2
    assert _served(routed.stats()) == _served(before)


def test_a_token_must_be_one(routed: Routed) -> None:
    for bad in ("", "3000148", "0/", "/1", "0/xyz", "0x1/2", "1_0/2", "123456789/0", "0/3 "):
        with pytest.raises(InvalidInput) as caught:
            routed.after(bad)
        assert caught.value.field == "token"


# -- health ----------------------------------------------------------------------


def test_a_lagging_replica_is_left_out_until_it_catches_up(
    routed_factory: Callable[..., Routed], healthy: Cluster
) -> None:
    routed = routed_factory(replica_max_lag=0.2)
    store = routed.store
    tea = store.create_product("Lagging tea", "4.50", 10)
    healthy.sync()
    assert routed.probe().usable == 2
    for replica in healthy.replicas:
        replica.pause()
    store.update_product(tea.id, price="5.00")
    # The lag can only grow while replay is paused: wait for the probe to see it pass 0.2 s.
    wait_for(lambda: routed.probe().usable == 0, "both replicas judged too far behind")
    assert all("lagging" in str(r.problem) for r in routed.stats().replicas)
    before = routed.stats()
    assert store.get_product(tea.id).price == Decimal("5.00")  # from the primary
    assert routed.stats().primary == before.primary + 1

    for replica in healthy.replicas:
        replica.resume()
    healthy.sync()
    stats = routed.probe()
    assert stats.usable == 2
    assert [r.lag for r in stats.replicas] == [0.0, 0.0]
    assert store.get_product(tea.id).price == Decimal("5.00")
    assert routed.stats().primary == before.primary + 1


def test_a_replica_that_dies_costs_no_read_and_is_used_again_when_back(
    routed: Routed, healthy: Cluster
) -> None:
    store = routed.store
    tea = store.create_product("Sturdy tea", "4.50", 10)
    healthy.sync()
    first, second = healthy.replicas
    for _ in range(4):  # both replicas' pools hold live connections now
        store.get_product(tea.id)

    # Its pooled connections are dead and nothing has told the router: the
    # next reads meet them, and go to the other replica instead.
    first.stop()
    for _ in range(4):
        assert store.get_product(tea.id).name == "Sturdy tea"
    dead, alive = routed.stats().replicas
    assert not dead.usable
    assert dead.failed == 1
    assert alive.usable

    # Every replica gone: the primary serves, without an error.
    second.stop()
    before = routed.stats()
    for _ in range(4):
        assert store.get_product(tea.id).name == "Sturdy tea"
    assert routed.stats().primary == before.primary + 4
    assert routed.probe().usable == 0
    assert all(str(r.problem).startswith("down") for r in routed.stats().replicas)

    # Back: a probe finds them, and reads go there again.
    first.start()
    second.start()
    healthy.sync()
    assert routed.probe().usable == 2
    before = routed.stats()
    for _ in range(4):
        store.get_product(tea.id)
    assert sum(_served(routed.stats())) == sum(_served(before)) + 4
    assert routed.stats().primary == before.primary


def test_the_background_probe_leaves_a_dead_replica_out_and_takes_it_back(
    routed_factory: Callable[..., Routed], healthy: Cluster
) -> None:
    routed = routed_factory(replica_probe_interval=0.05)
    store = routed.store
    tea = store.create_product("Probed tea", "4.50", 10)
    healthy.sync()
    first = healthy.replicas[0]

    first.stop()
    wait_for(lambda: not routed.stats().replicas[0].usable, "the probe leaving it out")
    before = routed.stats().replicas[0]
    for _ in range(4):
        assert store.get_product(tea.id).name == "Probed tea"
    assert routed.stats().replicas[0].sent == before.sent  # not even tried

    first.start()
    wait_for(lambda: routed.stats().replicas[0].usable, "the probe taking it back")
    for _ in range(4):
        store.get_product(tea.id)
    assert routed.stats().replicas[0].served > before.served


def test_a_promoted_replica_is_no_replica() -> None:
    """A server listed as a replica that is not in recovery is left out: it may be an
    old primary, or a new one no longer following ours."""
    with Cluster(replicas=1) as own:
        migrator(own.primary.url(), settings=settings([])).run()
        own.sync()
        target = Target(parse_database_url(own.primary.url()))
        with Pool(target, settings(own.replicas)) as pool:
            replicas = pool.replicas
            assert replicas is not None
            assert replicas.stats().usable == 1
            own.replicas[0].promote()
            stats = replicas.probe()
            assert stats.usable == 0
            assert stats.replicas[0].problem == "not a standby (promoted?)"
            assert Store(pool).list_products().items == []


def test_without_replicas_there_is_no_router(shopdb_pool: Pool) -> None:
    assert shopdb_pool.replicas is None
    assert settings([]).replica_urls is None
