"""The soak in short (``make soak`` runs it for 5 minutes): 32 threads on a pool of 10.

It runs until enough of every kind of operation has happened (an event, with
a hang guard), not for a fixed time; throughput and memory growth are
figures that ``make soak`` reports in docs/reliability.md.
"""

from __future__ import annotations

from shopdb import Store
from shopdb.connect import libpq_url
from shopdb.db import Pool
from shopdb.testing import DatabaseFactory

from .faults_support import MIX, Ledger, mixed_load, prepare, violations

#: A hang guard: how long the test waits for the work below to be done.
HANG_GUARD = 300.0
#: Successful operations of every kind before the load stops.
EACH = 200


def test_short_soak_has_no_unexpected_error_and_keeps_every_invariant(
    shopdb_server: DatabaseFactory, committed_pool: Pool
) -> None:
    settings = shopdb_server.settings(pool_size=10, max_overflow=0, pool_timeout=60)
    target = committed_pool.target
    with Pool(target, settings) as pool:
        store = Store(pool)
        catalog = prepare(store, products=50, stock=2_000)
        ledger = Ledger()
        with mixed_load(store, catalog, ledger, threads=32):
            done = ledger.wait_for(
                lambda led: all(led.ops[name] >= EACH for name, _ in MIX), HANG_GUARD
            )
            assert done, f"the load stalled: {ledger.ops}"
            assert ledger.unexpected == [], ledger.unexpected[:5]
        assert ledger.unavailable == 0
        assert violations(store, catalog, ledger, libpq_url(target.url)) == []
        assert pool.status().checked_out == 0
