"""Idempotent checkout by key: the same key gives the same answer, however many race.

A checkout of "the user's open cart" cannot be retried by cart id (the
client may never have learnt it, and once sold the user has no open cart),
so a repeat used to answer 409 ``empty_cart``. With an idempotency key
(migration 0012 stores it with the order, unique per user) every repeat, the
racing ones included, answers with the order the key placed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shopdb import Store
from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.db import Pool
from shopdb.errors import (
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InvalidInput,
    translate,
)
from shopdb.limits import IDEMPOTENCY_KEY_MAX
from shopdb.migrate import Migrator
from shopdb.schemas import Order
from shopdb.testing import DatabaseFactory

from .helpers import refused, together
from .shop_api_server import Service, running_service
from .test_shop_api import make_staff, problem, product, signed_up, stock_of

RACERS = 20
SENTINEL = "zq-sentinel-7f3a"


def _shopper_with_cart(store: Store, name: str, stock: int = 10, quantity: int = 2) -> Any:
    """A user's shopper whose open cart holds ``quantity`` of a product of ``stock``."""
    user = store.create_user(name, f"{name}@example.com", "correct horse battery")
    kettle = store.create_product(f"Kettle {name}", "12.50", stock)
    shopper = store.for_user(user.id)
    shopper.add(kettle.id, quantity)
    return shopper, kettle


# -- the Store, both flavours ------------------------------------------------------


def test_racing_checkouts_with_one_key_place_one_order_and_give_one_answer(
    committed_store: Store, committed_pool: Pool
) -> None:
    store = committed_store
    for round_ in range(3):  # a few rounds: each race falls out differently
        shopper, kettle = _shopper_with_cart(store, f"racer{round_}")
        key = str(uuid.uuid4())

        results = together([partial(shopper.checkout, idempotency_key=key)] * RACERS)

        failures = [r for r in results if isinstance(r, Exception)]
        assert failures == []
        assert all(isinstance(r, Order) for r in results)
        assert len({json.dumps(r.model_dump(mode="json")) for r in results}) == 1  # type: ignore[union-attr]
        (order,) = {r.id for r in results}  # type: ignore[union-attr]
        assert [o.id for o in shopper.orders()] == [order]
        assert store.get_product(kettle.id).inventory_count == 8  # sold once
        with committed_pool.raw() as probe:
            units = probe.execute(
                "SELECT units_ordered FROM products WHERE id = %s", (kettle.id,)
            ).fetchone()
        assert units == (2,)
        # Later repeats too, though the user has no open cart any more.
        assert shopper.checkout(idempotency_key=key) == results[0]


def test_a_key_is_one_checkout_of_one_user(store: Store) -> None:
    shopper, kettle = _shopper_with_cart(store, "keeper")
    key = "order-2026-12-04/1"
    first = shopper.checkout(idempotency_key=key)
    assert first.total == 25

    # The shopper fills a new cart. A repeat of "my cart" with the key is a retry of the
    # first checkout: its order, the new cart untouched.
    shopper.add(kettle.id, 1)
    assert shopper.checkout(idempotency_key=key) == first
    assert [(i.product_id, i.quantity) for i in shopper.cart().items] == [(kettle.id, 1)]
    assert store.get_product(kettle.id).inventory_count == 8

    # Naming another cart, or another total, with the key: refused, nothing sold.
    cart_id = shopper.cart().id
    with pytest.raises(IdempotencyKeyReused) as reused:
        shopper.checkout(cart_id, idempotency_key=key)
    assert reused.value.code == "idempotency_key_reused"
    assert reused.value.http_status == 409
    assert reused.value.details() == {"order_id": first.id}
    with pytest.raises(IdempotencyKeyReused):
        shopper.checkout(expected_total="12.50", idempotency_key=key)
    assert len(shopper.cart().items) == 1
    assert store.get_product(kettle.id).inventory_count == 8
    # The same cart and total as the first time: the same answer.
    assert shopper.checkout(first.cart_id, expected_total="25.00", idempotency_key=key) == first

    # Another key is another checkout; another user's key is theirs alone.
    second = shopper.checkout(idempotency_key=key + "/2")
    assert second.id != first.id
    other, _ = _shopper_with_cart(store, "other")
    assert other.checkout(idempotency_key=key).id not in {first.id, second.id}
    # Store.checkout takes the key too (scoped to the cart's user).
    assert store.checkout(first.cart_id, idempotency_key=key) == first


@pytest.mark.parametrize(
    "key",
    ["", "x" * (IDEMPOTENCY_KEY_MAX + 1), SENTINEL + "\n", SENTINEL + "é", SENTINEL + "\x00", 7],
    ids=["empty", "too long", "newline", "not ascii", "nul", "not a string"],
)
def test_a_bad_key_is_refused_naming_the_field(store: Store, key: object) -> None:
    shopper, kettle = _shopper_with_cart(store, "badkey")
    with pytest.raises(InvalidInput) as caught:
        shopper.checkout(idempotency_key=key)
    assert caught.value.field == "idempotency_key"
    shown = str(caught.value) + json.dumps(caught.value.problem())
    assert SENTINEL not in shown
    assert "x" * 20 not in shown
    assert store.get_product(kettle.id).inventory_count == 10  # nothing sold


def test_a_key_of_the_longest_length_and_every_printable_character_works(store: Store) -> None:
    shopper, _ = _shopper_with_cart(store, "longkey")
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    key = (printable * 3)[:IDEMPOTENCY_KEY_MAX]
    order = shopper.checkout(idempotency_key=key)
    assert shopper.checkout(idempotency_key=key) == order


def test_the_database_refuses_a_bad_key_written_with_raw_sql(db_connection: Connection) -> None:
    c = db_connection
    user = c.execute(
        text(
            "INSERT INTO users (username, username_key, email, password_hash) "
            "VALUES ('k', 'k', 'k@x.io', 'h') RETURNING id"
        )
    ).scalar_one()
    cart = c.execute(text("INSERT INTO carts (user_id) VALUES (:u) RETURNING id"), {"u": user})
    cart_id = cart.scalar_one()
    insert = (
        "INSERT INTO orders (user_id, cart_id, total, idempotency_key) VALUES (:u, :c, 1, {key})"
    )
    for key in (f"repeat('k', {IDEMPOTENCY_KEY_MAX + 1})", "''", "'a' || chr(10)", "'café'"):
        error = refused(c, insert.format(key=key), u=user, c=cart_id)
        assert isinstance(error, InvalidInput), key
        assert error.field == "idempotency_key"
    c.execute(
        text(insert.format(key=f"repeat('k', {IDEMPOTENCY_KEY_MAX})")), {"u": user, "c": cart_id}
    )
    c.execute(text("UPDATE carts SET closed_at = now() WHERE id = :c"), {"c": cart_id})
    second = c.execute(text("INSERT INTO carts (user_id) VALUES (:u) RETURNING id"), {"u": user})
    twice = refused(
        c,
        insert.format(key=f"repeat('k', {IDEMPOTENCY_KEY_MAX})"),
        u=user,
        c=second.scalar_one(),
    )
    assert (twice.code, getattr(twice, "field", None)) == ("already_exists", "idempotency_key")


def test_a_checkout_that_meets_its_key_in_flight_waits_and_answers_with_that_order(
    committed_store: Store, committed_pool: Pool, shopdb_server: DatabaseFactory
) -> None:
    """The unique index decides when two checkouts with one key sell different carts (only
    raw SQL can make that: a user has one open cart). The second waits for the first's
    commit, rolls back whole, and answers with the first's order."""
    store = committed_store
    shopper, kettle = _shopper_with_cart(store, "inflight")
    key = "in-flight"
    user_id = shopper.user().id
    owner = shopdb_server.url(committed_pool.target.database)
    with (
        ThreadPoolExecutor(1) as worker,
        # Raw SQL as the owner (the Store may run as the app role, which may not do this).
        psycopg.connect(owner, autocommit=True) as first,
        psycopg.connect(owner, autocommit=True) as watcher,
    ):
        with first.transaction():
            cart = first.execute(
                "INSERT INTO carts (user_id, closed_at) VALUES (%s, now()) RETURNING id",
                (user_id,),
            ).fetchone()
            assert cart is not None
            placed = first.execute(
                "INSERT INTO orders (user_id, cart_id, total, idempotency_key)"
                " VALUES (%s, %s, 7, %s) RETURNING id",
                (user_id, cart[0], key),
            ).fetchone()
            assert placed is not None
            pending = worker.submit(shopper.checkout, idempotency_key=key)
            deadline = time.monotonic() + 60  # a hang guard, not a timing
            while watcher.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> %s",
                (first.info.backend_pid,),
            ).fetchone() == (0,):
                assert time.monotonic() < deadline, "the checkout never waited for the key"
                time.sleep(0.01)
        order = pending.result(timeout=60)
    assert (order.id, order.cart_id, order.total) == (placed[0], cart[0], 7)
    # Nothing of the waiting checkout stayed: the stock, and the open cart's line.
    assert store.get_product(kettle.id).inventory_count == 10
    assert [(i.product_id, i.quantity) for i in shopper.cart().items] == [(kettle.id, 2)]


# -- a write whose connection died: retryable only with a key -------------------------


def test_a_lost_write_is_not_retryable_its_keyed_twin_is() -> None:
    lost = DatabaseUnavailable("the database connection failed: server closed the connection")
    assert (lost.retryable, lost.outcome_unknown) == (True, False)  # nothing sent: retry
    unknown = lost.after_write()
    assert (unknown.retryable, unknown.outcome_unknown) == (False, True)
    assert unknown.problem()["retryable"] is False
    assert unknown.problem()["outcome_unknown"] is True
    keyed = unknown.keyed()
    assert (keyed.retryable, keyed.outcome_unknown) == (True, True)
    assert keyed.problem()["status"] == 503


def test_a_write_refused_unrun_stays_retryable() -> None:
    read_only = psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only txn")
    refused_unrun = translate(read_only)
    assert isinstance(refused_unrun, DatabaseUnavailable)
    assert refused_unrun.after_write() is refused_unrun
    assert refused_unrun.retryable


@contextmanager
def _checkout_killed(pool: Pool, product_id: int) -> Iterator[Callable[[], None]]:
    """Hold the product's row lock; yields a function that waits until a checkout queues
    for it and then terminates that checkout's backend (its statement was sent)."""
    with pool.raw() as holder, pool.raw() as watcher, holder.transaction():
        holder.execute("SELECT 1 FROM products WHERE id = %s FOR UPDATE", (product_id,))
        mine = holder.info.backend_pid

        def kill() -> None:
            deadline = time.monotonic() + 60  # a hang guard, not a timing
            while True:
                row = watcher.execute(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
                    " JOIN pg_stat_activity a USING (pid)"
                    " WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> %s"
                    " LIMIT 1",
                    (mine,),
                ).fetchone()
                if row is not None:
                    return
                assert time.monotonic() < deadline, "no checkout waited for the product"
                time.sleep(0.01)

        yield kill


@pytest.mark.parametrize("keyed", [False, True], ids=["without a key", "with a key"])
def test_a_checkout_whose_connection_dies_says_the_outcome_is_unknown(
    committed_store: Store, committed_pool: Pool, keyed: bool
) -> None:
    store = committed_store
    shopper, kettle = _shopper_with_cart(store, "cut")
    key = "cut-1" if keyed else None
    with ThreadPoolExecutor(1) as worker:
        with _checkout_killed(committed_pool, kettle.id) as kill:
            pending = worker.submit(shopper.checkout, idempotency_key=key)
            kill()
        with pytest.raises(DatabaseUnavailable) as caught:
            pending.result(timeout=60)
    assert caught.value.outcome_unknown
    assert caught.value.retryable is keyed
    assert caught.value.problem()["outcome_unknown"] is True
    if keyed:
        # Safe to repeat: once, whatever the first try did (here: nothing, it was cut).
        order = shopper.checkout(idempotency_key=key)
        assert shopper.checkout(idempotency_key=key) == order
        assert store.get_product(kettle.id).inventory_count == 8


# -- migration 0012 ------------------------------------------------------------------


def test_0012_round_trip_keeps_the_orders(empty_db: str, settings: Settings) -> None:
    migrator = Migrator(Target(parse_database_url(empty_db)), settings)
    migrator.run(upto="0011")
    closed = "INSERT INTO carts (user_id, closed_at) VALUES (%s, now()) RETURNING id"
    with psycopg.connect(empty_db, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (username, username_key, email, password_hash) "
            "VALUES ('m', 'm', 'm@x.io', 'h') RETURNING id"
        ).fetchone()
        assert user is not None
        # Closed carts (one open cart per user), as checkout leaves them.
        carts = [conn.execute(closed, user).fetchone() for _ in range(2)]
        for cart in carts:
            assert cart is not None
            conn.execute(
                "INSERT INTO orders (user_id, cart_id, total) VALUES (%s, %s, 1)",
                (user[0], cart[0]),
            )

    def columns() -> set[str]:
        with psycopg.connect(empty_db) as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
            ).fetchall()
        return {r[0] for r in rows}

    assert [s.migration.revision for s in migrator.run(upto="0012")] == ["0012"]
    assert "idempotency_key" in columns()
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # The two orders without a key stay (NULLs never collide); a key is one per user.
        cart = conn.execute(closed, user).fetchone()
        assert cart is not None
        keyed = (
            "INSERT INTO orders (user_id, cart_id, total, idempotency_key) VALUES (%s, %s, 1, %s)"
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(keyed, (user[0], cart[0], ""))
        conn.execute(keyed, (user[0], cart[0], "k"))
        another = conn.execute(closed, user).fetchone()
        assert another is not None
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(keyed, (user[0], another[0], "k"))
        # The key is part of the sale as it was made: it never changes.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE orders SET idempotency_key = 'j' WHERE cart_id = %s", cart)
    assert [s.migration.revision for s in migrator.revert(1)] == ["0012"]
    assert "idempotency_key" not in columns()
    migrator.run()
    assert migrator.pending() == []
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)


# -- the reference service: the Idempotency-Key header ----------------------------------


@pytest.fixture(scope="module")
def database(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database of the module's own; yields its URL."""
    target = shopdb_server.create("shop_api_idempotency", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture(scope="module")
def service(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service, running on :func:`database`."""
    with running_service(database, tmp_path_factory.mktemp("shop_api_idem")) as running:
        yield running


def test_racing_checkout_requests_with_one_key_get_one_answer(
    service: Service, database: str
) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        staff_user, staff = signed_up(client)
        make_staff(database, staff_user["id"])
        _, auth = signed_up(client)
        tea = product(client, staff, stock=5)
        added = client.post(
            "/cart/items", json={"product_id": tea["id"], "quantity": 2}, headers=auth
        )
        assert added.status_code in (200, 201), added.text
        headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}

        def post() -> httpx.Response:
            with httpx.Client(base_url=service.url, timeout=60) as own:
                return own.post("/cart/checkout", headers=headers)

        answers = together([post] * RACERS)

        assert all(isinstance(a, httpx.Response) for a in answers), service.output()
        responses = [a for a in answers if isinstance(a, httpx.Response)]
        assert {(r.status_code, r.text) for r in responses} == {(201, responses[0].text)}
        order = responses[0].json()
        assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(tea["id"], 2)]
        assert stock_of(client, tea["id"]) == 3
        assert [o["id"] for o in client.get("/orders", headers=auth).json()["items"]] == [
            order["id"]
        ]

        # The same key for another cart: refused, and the order it placed is named.
        client.post("/cart/items", json={"product_id": tea["id"], "quantity": 1}, headers=auth)
        cart_id = client.get("/cart", headers=auth).json()["id"]
        reused = client.post("/cart/checkout", params={"cart_id": cart_id}, headers=headers)
        assert problem(reused, 409, "idempotency_key_reused")["order_id"] == order["id"]
        assert stock_of(client, tea["id"]) == 3

        # A key the service cannot take: 422 naming the header, not repeating it.
        for bad in (b"x" * (IDEMPOTENCY_KEY_MAX + 1), SENTINEL.encode() + "é".encode()):
            raw = {b"Authorization": auth["Authorization"].encode(), b"Idempotency-Key": bad}
            refusal = client.post("/cart/checkout", headers=raw)
            body = problem(refusal, 422, "invalid_input")
            assert [e["field"] for e in body["errors"]] == ["Idempotency-Key"], body
            assert SENTINEL not in refusal.text
            assert "x" * 20 not in refusal.text
        assert stock_of(client, tea["id"]) == 3


def test_the_openapi_document_names_the_header(service: Service) -> None:
    document = httpx.get(f"{service.url}/openapi.json", timeout=60).json()
    parameters = document["paths"]["/cart/checkout"]["post"]["parameters"]
    (header,) = [p for p in parameters if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert header["required"] is False
