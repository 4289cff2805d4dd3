"""``make bench-abuse``: what one hostile client costs the reference service, before and after.

Replays issue 17's requests against ``python -m examples.shop_api`` (uvicorn,
a real process, over TCP) twice: on the code before the bounds (``--before``,
a commit checked out into a temporary worktree and run from there, on a
database its own migrations made) and on this checkout. Each scenario runs
on a freshly started server, so the process's peak resident memory (Linux's
``VmHWM``) is that scenario's. Per request: status, response size, time.

Scenarios (issue 17): a login body of 1,000,000 keys; a 100 MiB product
description; a page of 1,000 products with the largest descriptions the
version stores; the 5,000th line of a cart (lines before it written by SQL)
and that cart's checkout; a cancel after the stock was raised to 2^31-1; an
error given a 25-digit quantity; products deleted while shoppers check them
out (deadlocks counted by pg_stat_database).

The database server is BENCH_DATABASE_URL's, else DATABASE_URL's, else the
embedded one. Figures go to docs/reliability.md with ``--write-docs``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.run import database_for

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "reliability.md"
START, END = "<!-- abuse:start -->", "<!-- abuse:end -->"
SECRET = "bench-abuse-secret"  # noqa: S105 (signs the bench's own tokens)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Measured:
    """One request: what came back, how big, how long."""

    what: str
    status: int | str
    size: int
    seconds: float


@dataclass
class Scenario:
    """A scenario's requests and the server's peak memory while it ran."""

    name: str
    requests: list[Measured]
    peak_mib: float = 0.0
    note: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def serving(code: Path, url: str, log: Path) -> Iterator[tuple[httpx.Client, int]]:
    """The service of the checkout at ``code`` on database ``url``; a client and its pid."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env.update(
        DATABASE_URL=url,
        SHOP_API_SECRET=SECRET,
        PYTHONPATH=f"{code / 'src'}{os.pathsep}{code}",
    )
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.shop_api",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=code,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service at {code} did not start; see {log}")
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=600) as client:
            yield client, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _timed(client: httpx.Client, what: str, method: str, path: str, **kwargs: Any) -> Measured:
    started = time.perf_counter()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        return Measured(what, type(exc).__name__, 0, time.perf_counter() - started)
    return Measured(
        what, response.status_code, len(response.content), time.perf_counter() - started
    )


def _user(client: httpx.Client) -> dict[str, str]:
    name = f"u{secrets.token_hex(5)}"
    password = "a long enough password"  # noqa: S105 (a bench user's)
    client.post("/users", json={"username": name, "email": f"{name}@x.io", "password": password})
    token = client.post("/login", json={"login": name, "password": password}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _staff(client: httpx.Client, url: str) -> dict[str, str]:
    """A signed-in user who may change the catalog (where the version knows staff)."""
    auth = _user(client)
    me = client.get("/users/me", headers=auth).json()
    with psycopg.connect(url, autocommit=True) as conn:
        known = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'users' "
            "AND column_name = 'role'"
        ).fetchone()
        if known:
            conn.execute("UPDATE users SET role = 'staff' WHERE id = %s", (me["id"],))
    return auth


def _product(client: httpx.Client, auth: dict[str, str], stock: int = 10) -> int:
    body = {"name": f"P {secrets.token_hex(3)}", "price": "10.00", "inventory_count": stock}
    made: int = client.post("/products", json=body, headers=auth).json()["id"]
    return made


# -- the scenarios: each gets a fresh server -------------------------------------------


def million_keys(client: httpx.Client, url: str) -> Scenario:
    body = json.dumps({f"k{i}": 1 for i in range(1_000_000)}).encode()
    headers = {"content-type": "application/json"}
    return Scenario(
        "POST /login, 1,000,000 keys (11 MiB)",
        [_timed(client, "login", "POST", "/login", content=body, headers=headers)],
    )


def huge_description(client: httpx.Client, url: str) -> Scenario:
    auth = _staff(client, url)
    body = {"name": "Big", "price": "1.00", "inventory_count": 1, "description": "d" * (100 * MIB)}
    return Scenario(
        "POST /products, a 100 MiB description",
        [_timed(client, "create", "POST", "/products", json=body, headers=auth)],
    )


def big_page(client: httpx.Client, url: str) -> Scenario:
    # The largest descriptions the version stores: 170 KiB before (no bound), 10,000
    # characters after (the database refuses more), 1,000 products of them.
    with psycopg.connect(url, autocommit=True) as conn:
        size = 170 * 1024
        try:
            conn.execute(
                "INSERT INTO products (name, price, inventory_count, description) "
                "SELECT 'Page ' || n, 1, 1, repeat('d', %s) FROM generate_series(1, 1000) n",
                (size,),
            )
        except psycopg.errors.CheckViolation:
            size = 10_000
            conn.execute(
                "INSERT INTO products (name, price, inventory_count, description) "
                "SELECT 'Page ' || n, 1, 1, repeat('d', %s) FROM generate_series(1, 1000) n",
                (size,),
            )
    return Scenario(
        "GET /products, 1,000 products with the largest descriptions stored",
        [
            _timed(client, "limit=1000", "GET", "/products", params={"limit": 1000}),
            _timed(client, "limit=100", "GET", "/products", params={"limit": 100}),
        ],
        note=f"descriptions of {size:,} characters",
    )


def long_cart(client: httpx.Client, url: str) -> Scenario:
    auth = _user(client)
    other = _user(client)
    shared = _product(client, _staff(client, url), stock=100)
    cart = client.get("/cart", headers=auth).json()["id"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (name, price, inventory_count) "
            "SELECT 'Line ' || n, 1, 10 FROM generate_series(1, 5000) n"
        )
        # As many lines as the version's database takes, up to 4,998 (+ the shared one).
        lines = 0
        for chunk in range(50):
            try:
                conn.execute(
                    "INSERT INTO cart_items (cart_id, product_id, quantity) "
                    "SELECT %s, id, 1 FROM products WHERE name LIKE 'Line %%' "
                    "ORDER BY id OFFSET %s LIMIT 100",
                    (cart, chunk * 100),
                )
                lines += 100
            except psycopg.errors.CheckViolation:
                break
        last = conn.execute("SELECT max(id) FROM products").fetchone()
    assert last is not None
    client.post("/cart/items", json={"product_id": shared}, headers=other)
    add = _timed(
        client,
        f"add to a cart of {lines} lines",
        "POST",
        "/cart/items",
        json={"product_id": shared},
        headers=auth,
    )
    # The other shopper's checkout of the shared product waits for the long one.
    waited: list[Measured] = []

    def other_checkout() -> None:
        time.sleep(0.005)
        waited.append(
            _timed(
                client,
                "another checkout of a shared product",
                "POST",
                "/cart/checkout",
                headers=other,
            )
        )

    thread = threading.Thread(target=other_checkout)
    thread.start()
    checkout = _timed(client, "checkout", "POST", "/cart/checkout", headers=auth)
    thread.join()
    return Scenario(
        "a cart of as many lines as the version takes",
        [add, checkout, *waited],
        note=f"{lines} lines before the add",
    )


def cancel_at_max(client: httpx.Client, url: str) -> Scenario:
    auth = _staff(client, url)  # the stock is raised by staff: the shopper is staff here
    lamp = _product(client, auth, stock=10)
    client.post("/cart/items", json={"product_id": lamp, "quantity": 10}, headers=auth)
    order = client.post("/cart/checkout", headers=auth).json()["id"]
    raise_ = _timed(
        client,
        "stock to 2^31-1",
        "PATCH",
        f"/products/{lamp}",
        json={"inventory_count": 2**31 - 1},
        headers=auth,
    )
    if raise_.status != 200:  # the bound: the most stock there may be, counting the order
        client.patch(f"/products/{lamp}", json={"inventory_count": 2**31 - 11}, headers=auth)
    cancel = _timed(client, "cancel", "POST", f"/orders/{order}/cancel", headers=auth)
    return Scenario("cancel after the stock was raised to its most", [raise_, cancel])


def echo(client: httpx.Client, url: str) -> Scenario:
    auth = _user(client)
    lamp = _product(client, _staff(client, url))
    number = 2**80
    response = client.post(
        "/cart/items", json={"product_id": lamp, "quantity": number}, headers=auth
    )
    echoed = str(number) in response.text
    return Scenario(
        "POST /cart/items, quantity 2^80",
        [Measured("add", response.status_code, len(response.content), 0.0)],
        note="the answer repeats the number" if echoed else "the answer does not repeat it",
    )


def delete_race(client: httpx.Client, url: str) -> Scenario:
    with psycopg.connect(url, autocommit=True) as conn:
        database = conn.info.dbname
        before = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    staff = _staff(client, url)
    shoppers = [_user(client) for _ in range(8)]
    slowest = 0.0
    failures = 0
    for _ in range(10):
        products = [_product(client, staff, stock=100) for _ in range(6)]
        for auth in shoppers:
            for p in reversed(products):
                client.post("/cart/items", json={"product_id": p}, headers=auth)
        calls: list[Callable[[], Measured]] = []
        for auth in shoppers:
            calls.append(
                partial(_timed, client, "checkout", "POST", "/cart/checkout", headers=auth)
            )
        for p in products:
            calls.append(
                partial(_timed, client, "delete", "DELETE", f"/products/{p}", headers=staff)
            )
        with ThreadPoolExecutor(len(calls)) as pool:
            results = list(pool.map(lambda call: call(), calls))
        slowest = max([slowest, *(r.seconds for r in results)])
        failures += sum(1 for r in results if r.status not in (200, 204, 404, 409))
    time.sleep(1.5)  # backends report their statistics at most once a second
    with psycopg.connect(url, autocommit=True) as conn:
        after = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    assert before is not None
    assert after is not None
    return Scenario(
        "products deleted while 8 shoppers check them out, 10 rounds",
        [Measured("slowest request", "-", 0, slowest)],
        note=f"{after[0] - before[0]} deadlocks, {failures} failed requests",
    )


SCENARIOS = [million_keys, huge_description, big_page, long_cart, cancel_at_max, echo, delete_race]


def _checkout_of(ref: str) -> Path:
    where = Path(tempfile.gettempdir()) / f"shopdb-abuse-{ref}"
    if not where.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
            check=True,
            capture_output=True,
        )
    return where


def _database(name: str, code: Path) -> str:
    url = database_for(name, migrated=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env.update(DATABASE_URL=url, PYTHONPATH=f"{code / 'src'}{os.pathsep}{code}")
    subprocess.run(
        [sys.executable, "-m", "shopdb", "setup"],
        cwd=code,
        env=env,
        check=True,
        capture_output=True,
    )
    return url


def run(version: str, code: Path, log: Path) -> list[Scenario]:
    """Every scenario against the service of ``code``, each on a fresh server and database."""
    done = []
    for scenario in SCENARIOS:
        url = _database(f"shopdb_abuse_{version}", code)
        with serving(code, url, log) as (client, pid):
            result = scenario(client, url)
            result.peak_mib = _peak_mib(pid)
        print(f"{version}: {result}", flush=True)
        done.append(result)
    return done


def _report(before: list[Scenario], after: list[Scenario], ref: str) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `make bench-abuse`: "
        f"before = commit {ref} (no bounds), after = this checkout; the service on one uvicorn "
        "worker, each scenario on a fresh server (its peak resident memory is that scenario's).",
        "",
        "| scenario | request | before: status, size, time | after: status, size, time "
        "| peak memory before → after |",
        "|---|---|---|---|---|",
    ]
    for old, new in zip(before, after, strict=True):
        for i, (a, b) in enumerate(zip(old.requests, new.requests, strict=False)):
            memory = f"{old.peak_mib:,.0f} → {new.peak_mib:,.0f} MiB" if i == 0 else ""
            title = old.name if i == 0 else ""
            lines.append(f"| {title} | {a.what} → {b.what} | {_cell(a)} | {_cell(b)} | {memory} |")
        if old.note or new.note:
            lines.append(f"| | | {old.note} | {new.note} | |")
    return "\n".join(lines)


def _cell(m: Measured) -> str:
    size = f"{m.size / MIB:,.1f} MiB" if m.size >= MIB else f"{m.size:,} B"
    return f"{m.status}, {size}, {m.seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default="11b50b0", help="the commit to compare with")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / "shopdb-bench-abuse.log"
    before = run("before", _checkout_of(args.before), log)
    after = run("after", ROOT, log)
    report = _report(before, after, args.before)
    print(report)
    if args.write_docs:
        text = DOCS.read_text()
        head, rest = text.split(START, 1)
        DOCS.write_text(head + START + "\n" + report + "\n" + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
