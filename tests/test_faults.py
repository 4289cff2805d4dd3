"""Faults injected into real PostgreSQL: nothing acknowledged is lost, the pool heals itself."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from shopdb import Store
from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target, libpq_url
from shopdb.connect.embedded import EmbeddedServer, start_embedded
from shopdb.db import Pool, establish_connection_pool
from shopdb.errors import DatabaseUnavailable
from shopdb.migrate import migrator

from .faults_support import Ledger, inject, prepare, violations
from .flavours import Flavour, LoopThread, pooled_store


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"_env_file": None, "connect_retry": 0}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """An embedded server of this test's own, to stop, start and kill."""
    server = start_embedded(tmp_path / "pg", announce=False)
    migrator(server.url(), settings=_settings()).run()
    yield server
    with suppress(Exception):
        server.stop()


#: A hang guard, not an expectation: how long a test waits for an event before failing.
HANG_GUARD = 120.0


def _fault_under_load(store: Store, url: str, fault: Callable[[], None]) -> None:
    """Run the mixed workload on 8 threads, inject ``fault``, and check what matters.

    The fault is met by construction: a transaction holds a pooled connection
    across it, and its next statement must raise ``DatabaseUnavailable``.
    ``fault`` returns once the server serves again. Then the load must
    resume by itself (every kind of operation succeeds again, with no
    restart of the process), only ``DatabaseUnavailable`` may have escaped,
    and the database must agree with every acknowledged checkout. How fast
    it resumes is a figure: ``make bench-faults`` measures it.
    """
    catalog = prepare(store, products=20, stock=10_000)
    ledger = Ledger()
    outcome = inject(store, catalog, ledger, fault, hang_guard=HANG_GUARD)
    # Exactly that: a PoolTimeout (its subclass) would mean the fault was never met.
    assert type(outcome.met) is DatabaseUnavailable, outcome.met
    assert outcome.resumed, f"service did not resume: {ledger.ops}"
    assert ledger.unexpected == [], ledger.unexpected[:5]
    assert violations(store, catalog, ledger, url) == []


def test_an_embedded_restart_under_load_loses_nothing_and_service_resumes(
    own_server: EmbeddedServer, flavour: Flavour, loop_thread: LoopThread
) -> None:
    def restart() -> None:
        own_server.stop()
        own_server.start()

    target = Target(parse_database_url(own_server.url()))
    # 8 threads of load and the transaction held across the fault: a pool of 10.
    with pooled_store(flavour, target, _settings(pool_size=10), loop_thread) as store:
        _fault_under_load(store, own_server.url(), restart)


def test_terminated_connections_under_load_lose_nothing_and_service_resumes(
    committed_pool: Pool, committed_store: Store
) -> None:
    url = libpq_url(committed_pool.target.url)

    def terminate_everything() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    _fault_under_load(committed_store, url, terminate_everything)


def test_acknowledged_writes_survive_a_sigkill(own_server: EmbeddedServer) -> None:
    with psycopg.connect(own_server.url(), autocommit=True) as conn:
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }
    assert set(settings.values()) == {("on",)}
    with establish_connection_pool(own_server.url(), settings=_settings(), announce=False) as pool:
        store = Store(pool)
        acknowledged = [store.create_product(f"Durable {i}", "1.00", i).id for i in range(200)]
        own_server.kill()
    own_server.start()
    with psycopg.connect(own_server.url()) as conn:
        found = conn.execute(
            "SELECT count(*) FROM products WHERE id = ANY(%s)", (acknowledged,)
        ).fetchone()
    assert found == (200,)


def test_durability_can_be_turned_off_and_on_again(tmp_path: Path) -> None:
    fast = start_embedded(tmp_path / "fast", announce=False, durable=False)
    try:
        with psycopg.connect(fast.url(), autocommit=True) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        fast.stop()
        fast.start()
        with psycopg.connect(fast.url(), autocommit=True) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
    finally:
        fast.stop()


#: A stand-in for a postmaster that is still starting, on the server's own socket (argv[1]):
#: it answers every connection as PostgreSQL does until it is ready (an ErrorResponse,
#: FATAL 57P03) and writes a line once it has answered one. A process of its own: the
#: client's start-up ping is a blocking libpq call that holds this process's GIL.
STARTING = r"""
import socket, struct, sys
fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
answer = b"E" + struct.pack("!i", 4 + len(fields)) + fields
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(16)
print("listening", flush=True)
while True:
    conn, _ = listener.accept()
    with conn:
        # The startup packet, read whole: closing on unread bytes would reset the
        # connection, and the client might never read the answer.
        data = b""
        while len(data) < 4 or len(data) < struct.unpack("!i", data[:4])[0]:
            chunk = conn.recv(8192)
            if not chunk:
                break
            data += chunk
        else:
            conn.sendall(answer)
            print("answered", flush=True)
"""


def test_connecting_waits_for_a_server_that_is_still_starting(
    own_server: EmbeddedServer,
) -> None:
    socket_path = own_server.socket_dir / ".s.PGSQL.5432"  # the URL names no port
    assert socket_path.is_socket()
    own_server.stop()
    starting = subprocess.Popen(
        [sys.executable, "-c", STARTING, str(socket_path)], stdout=subprocess.PIPE, text=True
    )
    pools: list[Pool] = []
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            pools.append(
                establish_connection_pool(
                    own_server.url(), settings=_settings(connect_retry=HANG_GUARD), announce=False
                )
            )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    connecting = threading.Thread(target=connect)
    try:
        assert starting.stdout is not None
        assert starting.stdout.readline() == "listening\n"
        connecting.start()
        # It was told the server is starting and waits for it: only now start it. (A
        # hang here ends when start-up gives up, after HANG_GUARD, closing nothing.)
        assert starting.stdout.readline() == "answered\n", "start-up never tried to connect"
        assert pools == []
        assert errors == []
    finally:
        starting.kill()
        starting.communicate(timeout=HANG_GUARD)
        socket_path.unlink(missing_ok=True)
    try:
        own_server.start()
    finally:
        if connecting.ident is not None:  # started
            connecting.join()
    assert errors == []
    with pools[0] as pool, pool.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_a_server_that_stays_down_gives_one_clear_error(own_server: EmbeddedServer) -> None:
    own_server.stop()
    with pytest.raises(DatabaseUnavailable) as caught:
        establish_connection_pool(
            own_server.url(), settings=_settings(connect_retry=1), announce=False
        )
    assert str(caught.value).startswith("cannot reach PostgreSQL at")
    assert "\n" not in str(caught.value)


class Boom(Exception):
    """Raised on purpose inside transactions."""


def test_ten_thousand_operations_with_random_failures_leak_nothing(
    committed_pool: Pool,
) -> None:
    pool = committed_pool
    store = Store(pool)
    product = store.create_product("Leak check", "1.00", 1_000_000)
    user = store.create_user("leaky", "leaky@example.com", "correct horse")

    def store_transaction(rng: random.Random) -> None:
        with store.transaction() as tx:
            cart = tx.create_cart(user.id)
            tx.add_to_cart(cart.id, product.id)
            if rng.random() < 0.5:
                raise Boom

    def orm_transaction(rng: random.Random) -> None:
        with pool.transaction() as session:
            session.execute(text("SELECT count(*) FROM products"))
            if rng.random() < 0.5:
                raise Boom

    def core_connection(rng: random.Random) -> None:
        with pool.connect() as conn:
            conn.execute(text("UPDATE products SET name = name WHERE id = :id"), {"id": product.id})
            if rng.random() < 0.5:
                raise Boom
            conn.commit()

    def raw_transaction(rng: random.Random) -> None:
        with pool.raw() as conn, conn.transaction():
            conn.execute("SELECT 1")
            if rng.random() < 0.5:
                raise Boom

    def plain_store_call(rng: random.Random) -> None:
        store.get_product(product.id)

    kinds = [store_transaction, orm_transaction, core_connection, raw_transaction, plain_store_call]
    failures = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 (a reproducible workload)
        for _ in range(1250):
            try:
                rng.choice(kinds)(rng)
            except Boom:
                pass
            except Exception as exc:  # collected for the assertion below
                failures.append(repr(exc))

    with ThreadPoolExecutor(max_workers=8) as executor:  # joined even if one fails
        list(executor.map(worker, range(8)))
    assert failures == []
    assert pool.status().checked_out == 0
    with psycopg.connect(libpq_url(pool.target.url)) as conn:
        rows = conn.execute(
            "SELECT state, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY state"
        ).fetchall()
    states: dict[str | None, int] = dict(rows)
    assert not any(state and state.startswith("idle in transaction") for state in states)
    assert sum(states.values()) <= pool.settings.pool_size
