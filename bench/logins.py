"""``make bench-logins``: what a flood of wrong logins costs, before and after the throttle.

50 threads guess one user's password as fast as they can for ``--seconds``,
while one more thread signs a real user in, again and again, and times each
login. Everything runs in this process on one pool, as a threaded service
would; the database is a scratch one on the benchmark server (the embedded
one unless ``BENCH_DATABASE_URL`` or ``DATABASE_URL`` names another).

* **before**: the login path shopdb had before migration 0009, reproduced
  here since the Store no longer has it: one ``SELECT`` of the row with its
  hash, one argon2 verify, for every guess;
* **after**: ``Store.authenticate``: the first ``LOGIN_ATTEMPTS`` guesses run
  argon2, every later one is a ``TooManyAttempts`` from one database call.

Reported per phase: guesses answered per second, this process's CPU seconds
per second of flood (argon2 runs here), the database backends' CPU seconds
per second (their processes, read with psutil: the server must be on this
machine), and the real user's login latency and logins per second. A quiet
phase (no flood) comes first, as the yardstick.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.run import database_for
from shopdb import Store, establish_connection_pool, passwords
from shopdb.config import Settings
from shopdb.db import Pool
from shopdb.errors import TooManyAttempts
from shopdb.limits import LOGIN_ATTEMPTS, LOGIN_WINDOW

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
START, END = "<!-- logins:start -->", "<!-- logins:end -->"
PASSWORD = "the real password"  # noqa: S105 (the benchmark users')
#: The old Store's login query (before 0009): the row with its hash, by username.
OLD_LOGIN = (
    "SELECT id, username, email, created_at, password_hash FROM users "
    "WHERE lower(username) = lower(%s)"
)


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    seconds: float
    guesses: int
    refused: int
    app_cpu: float
    db_cpu: float
    latencies: list[float]


def old_login(pool: Pool, login: str, password: str) -> bool:
    """The login shopdb did before 0009: read the hash, verify it here."""
    with pool.raw() as conn:
        row = conn.execute(OLD_LOGIN, (login,)).fetchone()
    stored = str(row[4]) if row is not None else passwords.hash_password("no such user")
    return passwords.verify_password(stored, password)


def _backend_cpu(pool: Pool, start: dict[int, float] | None = None) -> dict[int, float]:
    """CPU seconds of every backend on this database, by pid."""
    with pool.raw() as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            ).fetchall()
        ]
    seen = dict(start or {})
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        seen[pid] = times.user + times.system
    return seen


def _reset(pool: Pool) -> None:
    with pool.raw() as conn:
        conn.execute("DELETE FROM login_attempts")


def run_phase(
    name: str,
    pool: Pool,
    guess: Callable[[], bool],
    real: Callable[[], bool],
    *,
    flood: int,
    seconds: float,
) -> Phase:
    """``flood`` threads calling ``guess`` and one timing ``real`` for ``seconds``."""
    _reset(pool)
    stop = threading.Event()
    counts = {"guesses": 0, "refused": 0}
    lock = threading.Lock()

    def flooder() -> None:
        mine = refused = 0
        while not stop.is_set():
            try:
                guess()
            except TooManyAttempts:
                refused += 1
            mine += 1
        with lock:
            counts["guesses"] += mine
            counts["refused"] += refused

    latencies: list[float] = []

    def signer() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            if not real():
                raise AssertionError("the real login failed")
            latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=flooder) for _ in range(flood)]
    threads.append(threading.Thread(target=signer))
    db_before = _backend_cpu(pool)
    cpu_before, began = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    db_during = _backend_cpu(pool)  # before the threads stop, while every backend is there
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    app_cpu = time.process_time() - cpu_before
    db_cpu = sum(v - db_before.get(pid, 0.0) for pid, v in db_during.items())
    return Phase(name, elapsed, counts["guesses"], counts["refused"], app_cpu, db_cpu, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--flood", type=int, default=50, help="threads guessing")
    parser.add_argument("--write-docs", action="store_true", help="write docs/reliability.md")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    url = database_for("shopdb_bench_logins")
    settings = Settings(_env_file=None, pool_size=args.flood + 2, pool_timeout=60.0)
    with establish_connection_pool(url, settings=settings, announce=False) as pool:
        store = Store(pool)
        store.create_user("victim", "victim@example.com", PASSWORD)
        store.create_user("alice", "alice@example.com", PASSWORD)

        def new_guess() -> bool:
            return store.authenticate("victim", "a wrong guess") is not None

        def new_real() -> bool:
            return store.authenticate("alice", PASSWORD) is not None

        phases = [
            run_phase("no flood", pool, lambda: False, new_real, flood=0, seconds=args.seconds),
            run_phase(
                "before (no throttle)",
                pool,
                lambda: old_login(pool, "victim", "a wrong guess"),
                lambda: old_login(pool, "alice", PASSWORD),
                flood=args.flood,
                seconds=args.seconds,
            ),
            run_phase(
                "after (throttled)",
                pool,
                new_guess,
                new_real,
                flood=args.flood,
                seconds=args.seconds,
            ),
        ]
        with pool.raw() as conn:
            server = conn.info.parameter_status("server_version")
    report = _report(phases, args.flood, args.seconds, server or "?", load)
    print(report)
    if args.write_docs:
        text = DOCS.read_text()
        before, rest = text.split(START, 1)
        DOCS.write_text(before + START + "\n" + report + "\n" + END + rest.split(END, 1)[1])


def _report(phases: list[Phase], flood: int, seconds: float, server: str, load: float) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        f"`make bench-logins`: {flood} threads guessing one user's password, one more "
        f"signing another user in again and again, {seconds:g} s per phase, one process, "
        f"one pool; PostgreSQL {server} on the same machine ({psutil.cpu_count()} CPUs, "
        f"load average {load:.1f} when it started). "
        f"The throttle admits {LOGIN_ATTEMPTS} guesses per {LOGIN_WINDOW // 60} minutes.",
        "",
        "| phase | guesses answered /s | of them refused | app CPU s/s | database CPU s/s "
        "| real login: median | p99 | real logins /s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        lat = sorted(p.latencies)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        lines.append(
            f"| {p.name} | {p.guesses / p.seconds:,.0f} | {p.refused:,} "
            f"| {p.app_cpu / p.seconds:.2f} | {p.db_cpu / p.seconds:.2f} "
            f"| {statistics.median(lat) * 1000:,.0f} ms | {p99 * 1000:,.0f} ms "
            f"| {len(lat) / p.seconds:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
