"""``make bench-faults``: how long service takes to resume after a fault, measured.

Each round runs the mixed workload (``bench/soak.py``) on 8 threads against an
embedded server of its own, holds one transaction's connection across the
fault so the fault is met for certain, injects it, and notes the moment the
server serves again. It reports, per kind of fault, over the rounds:

* **first success**: from the server being back to the first operation that
  succeeded;
* **full service**: to the moment every kind of operation (get, list, add,
  view, checkout) had succeeded again;
* **failures after**: operations that still met ``DatabaseUnavailable`` after
  the server was back, and when the last of them did.

The tests in ``tests/test_faults.py`` run the same ``inject`` (from
``tests/faults_support.py``, with the workload and its invariants) and assert
what must hold (only ``DatabaseUnavailable`` escapes, service resumes by
itself, nothing acknowledged is lost); the times are figures, reported here.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from shopdb import Store
from tests.faults_support import Ledger, Outcome, inject, prepare

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
START, END = "<!-- faults:start -->", "<!-- faults:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="faults of each kind")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    import psycopg

    from shopdb.config import Settings
    from shopdb.connect.embedded import start_embedded
    from shopdb.db import establish_connection_pool
    from shopdb.migrate import migrator

    # 8 threads of load and the transaction held across the fault: a pool of 10.
    settings = Settings(_env_file=None, connect_retry=0, pool_size=10)
    results: dict[str, list[Outcome]] = {"server restart": [], "every connection terminated": []}
    with tempfile.TemporaryDirectory(prefix="shopdb-faults-") as scratch:
        server = start_embedded(Path(scratch) / "pg", announce=False)
        try:
            url = server.url()
            migrator(url, settings=settings).run()

            def restart() -> None:
                server.stop()
                server.start()

            def terminate() -> None:
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )

            faults = {"server restart": restart, "every connection terminated": terminate}
            with establish_connection_pool(url, settings=settings, announce=False) as pool:
                store = Store(pool)
                for round_ in range(args.rounds):
                    for name, fault in faults.items():  # interleaved, so drift hits both
                        catalog = prepare(store, products=20, stock=10_000, tag=f"{round_}{name}")
                        outcome = inject(store, catalog, Ledger(), fault)
                        results[name].append(outcome)
                        print(f"round {round_ + 1} {name}: {outcome}", flush=True)
        finally:
            server.stop()
    report = _report(results)
    print(report)
    if args.write_docs:
        text = DOCS.read_text()
        before, rest = text.split(START, 1)
        DOCS.write_text(before + START + "\n" + report + "\n" + END + rest.split(END, 1)[1])


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values) * 1000:,.0f} ms (worst {max(values) * 1000:,.0f} ms)"


def _report(results: dict[str, list[Outcome]]) -> str:
    rounds = max(len(v) for v in results.values())
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        f"`make bench-faults` ({rounds} rounds of each fault, interleaved; 8 threads "
        "running the mix on a pool of 10; embedded server; median and worst):",
        "",
        "| fault | met by the held transaction | first success after the server is back "
        "| every kind of operation succeeding again | failures after it was back |",
        "|---|---|---|---|---|",
    ]
    for name, outcomes in results.items():
        met = {type(o.met).__name__ if o.met else "nothing" for o in outcomes}
        firsts = [o.first_success for o in outcomes if o.first_success is not None]
        fulls = [o.full_service for o in outcomes if o.full_service is not None]
        after = [o.failures_after for o in outcomes]
        lines.append(
            f"| {name} | {', '.join(sorted(met))} | {_ms(firsts)} | {_ms(fulls)} "
            f"| {statistics.median(after):g} (most {max(after)}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
