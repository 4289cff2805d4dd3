"""The soak in short (``make soak`` runs it for 5 minutes): 32 threads on a pool of 10."""

from __future__ import annotations

import threading
import time

import psutil

from bench.soak import Ledger, prepare, run_mixed, settle, violations
from shopdb import Store
from shopdb.connect import libpq_url
from shopdb.db import Pool, make_engine
from shopdb.testing import DatabaseFactory


def test_short_soak_has_no_unexpected_error_and_keeps_every_invariant(
    shopdb_server: DatabaseFactory, committed_pool: Pool
) -> None:
    settings = shopdb_server.settings(pool_size=10, max_overflow=0, pool_timeout=60)
    target = committed_pool.target
    pool = Pool(make_engine(target, settings), settings, target)
    store = Store(pool)
    catalog = prepare(store, products=50, stock=2_000)
    ledger = Ledger()
    process = psutil.Process()
    until = time.monotonic() + 12
    load = threading.Thread(
        target=run_mixed, args=(store, catalog, ledger), kwargs={"threads": 32, "until": until}
    )
    load.start()
    time.sleep(4)
    warm = process.memory_info().rss
    load.join()
    settle(store, ledger)
    assert ledger.unexpected == [], ledger.unexpected[:5]
    assert ledger.unavailable == 0
    assert sum(ledger.ops.values()) > 1000
    assert ledger.ops["checkout"] > 0
    assert violations(store, catalog, ledger, libpq_url(target.url)) == []
    assert pool.status().checked_out == 0
    grown = (process.memory_info().rss - warm) / 2**20
    assert grown < 50, f"memory grew {grown:.0f} MiB in 8 s"
    pool.close()
