"""``make bench-e2e``: the whole request, from a C load generator to PostgreSQL and back.

Six services, each a real uvicorn process with one worker, uvloop and
httptools, a pool of 10 connections, on one database:

* ``reference``: the reference service (``python -m examples.shop_api``), as
  production runs it: FastAPI, shopdb's AsyncStore, every guarantee;
* ``orm``: the same endpoints on FastAPI + SQLAlchemy's async ORM
  (:mod:`bench.e2e_peers.orm_api`), the same JSON bytes;
* ``limit``: a raw ASGI app on asyncpg, prepared statements, no framework
  (:mod:`bench.e2e_peers.raw_api`): the limit;
* ``framework`` (the catalog endpoints only): the reference service with its
  Store answering from memory (:mod:`bench.e2e_peers.framework_only`): what
  the framework alone costs, the most any data layer could reach under it;
* ``psycopg`` (the catalog endpoints only): the limit with psycopg's async
  driver in asyncpg's place (:mod:`bench.e2e_peers.raw_psycopg`): what the
  driver alone costs;
* ``bare`` (the catalog endpoints only): the reference service with its Store
  swapped for psycopg_pool and shopdb's own statements and models
  (:mod:`bench.e2e_peers.fastapi_psycopg`): what shopdb's machinery costs.

wrk (8 threads, 8 connections, ``--latency``; a Lua script signs requests in
and writes POST bodies) runs against one endpoint of one service at a time, in
interleaved slices: every round runs every service on every endpoint, in a
rotating order, so the machine's drift meets them all alike. Per slice: the
requests per second, p50 and p99 latency (wrk's distribution), and the
service's CPU per request (``utime + stime`` of its process from
``/proc/<pid>/stat`` before and after). The endpoints: ``GET /products/{id}``
(a random id of 1,000), ``GET /products?limit=20`` (a random page of the
catalog, newest first: the first page, or one of 500 pages at random
positions, each a ``cursor`` made by shopdb's own
:func:`~shopdb.store.search.encode_cursor` before the run),
``POST /cart/items`` (each connection its own user, one of five products, one
unit), ``GET /cart`` (that user's cart) and ``POST /cart/checkout`` (each
request a fresh user whose open cart holds one product, made before the slice).

Before measuring, the run checks that the three services answer with the same
bytes (a product; the first page, the page its ``next`` names, the last page
and a refused cursor; a cart; an order up to its ids and times).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from examples.shop_api import tokens
from shopdb.names import username_key
from shopdb.store.search import encode_cursor, fingerprint

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- e2e:start -->", "<!-- e2e:end -->"
SECRET = "bench-e2e-secret"  # noqa: S105 (signs the benchmark's tokens only)
SERVICES = {
    "reference": [sys.executable, "-m", "examples.shop_api"],
    "orm": [sys.executable, "-m", "uvicorn", "bench.e2e_peers.orm_api:app"],
    "limit": [sys.executable, "-m", "uvicorn", "bench.e2e_peers.raw_api:app"],
    "framework": [sys.executable, "-m", "uvicorn", "bench.e2e_peers.framework_only:app"],
    "psycopg": [sys.executable, "-m", "uvicorn", "bench.e2e_peers.raw_psycopg:app"],
    "bare": [sys.executable, "-m", "uvicorn", "bench.e2e_peers.fastapi_psycopg:app"],
}
LABELS = {
    "reference": "reference service (FastAPI + AsyncStore)",
    "orm": "FastAPI + SQLAlchemy async ORM",
    "limit": "limit: raw ASGI + asyncpg, prepared",
    "framework": "floor: the reference service, its Store answering from memory",
    "psycopg": "the limit on psycopg: raw ASGI + psycopg_pool, prepared",
    "bare": "the reference service on a bare driver: its Store swapped for psycopg_pool",
}
#: Services that serve the catalog endpoints only (the framework floor has no database).
CATALOG_ONLY = {"framework", "psycopg", "bare"}
CATALOG = ("product", "page")
ENDPOINTS = ("product", "page", "add", "cart", "checkout")
PATHS = {
    "product": "GET /products/{id}",
    "page": "GET /products?limit=20",
    "add": "POST /cart/items",
    "cart": "GET /cart",
    "checkout": "POST /cart/checkout",
}
PRODUCTS = 1000
#: The page size of the page endpoint, and how many pages at random positions it asks for.
PAGE = 20
PAGES = 500
CONNECTIONS = 8
#: Fresh carts made before a checkout slice, per second of the slice.
CHECKOUTS_PER_SECOND = 4000
TICKS = os.sysconf("SC_CLK_TCK")

_LUA_COMMON = """
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
end
"""
LUA = {
    "product": """
request = function()
    return wrk.format("GET", "/products/" .. math.random(1, %(products)d))
end
""",
    "page": """
local pages = {%(pages)s}
request = function()
    return wrk.format("GET", pages[math.random(1, #pages)])
end
""",
    "add": _LUA_COMMON
    + """
function init(args)
    token = dofile("%(dir)s/tokens_" .. id .. ".lua")[1]
    base = 5 * (id - 1) + 1
    headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end
request = function()
    local body = '{"product_id":' .. (base + math.random(0, 4)) .. ',"quantity":1}'
    return wrk.format("POST", "/cart/items", headers, body)
end
""",
    "cart": _LUA_COMMON
    + """
function init(args)
    token = dofile("%(dir)s/tokens_" .. id .. ".lua")[1]
    headers = {["Authorization"] = "Bearer " .. token}
end
request = function()
    return wrk.format("GET", "/cart", headers)
end
""",
    "checkout": _LUA_COMMON
    + """
function init(args)
    list = dofile("%(dir)s/checkout_" .. id .. ".lua")
    n = 0
end
request = function()
    n = n %% #list + 1
    return wrk.format("POST", "/cart/checkout", {["Authorization"] = "Bearer " .. list[n]})
end
""",
}


@dataclass
class Slice:
    """One wrk run against one service's endpoint."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # the service's CPU per request
    errors: int  # non-2xx answers and socket errors


@dataclass
class Row:
    """Every slice of one service on one endpoint."""

    service: str
    endpoint: str
    slices: list[Slice] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return sum(s.requests for s in self.slices) / sum(s.seconds for s in self.slices)

    @property
    def rates(self) -> list[float]:
        return [s.requests / s.seconds for s in self.slices]

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(s, name) for s in self.slices))

    def spread(self, name: str) -> str:
        values = [getattr(s, name) for s in self.slices]
        return f"{min(values):,.1f} to {max(values):,.1f}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Service:
    """A running service: its name, where it listens, its process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def running(name: str, database_url: str, log: Path) -> Iterator[Service]:
    """One service on a free port; stopped when the block ends."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env.update(DATABASE_URL=database_url, SHOP_API_SECRET=SECRET, PYTHONPATH=str(ROOT))
    command = [*SERVICES[name], "--port", str(port), "--log-level", "warning"]
    if name != "reference":
        command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    service = Service(name, f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log.read_text()}")
            try:
                httpx.get(f"{service.url}/products/1", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield service
    finally:
        process.terminate()
        process.wait(timeout=30)


def _seed(url: str) -> None:
    """Products 1..PRODUCTS with ample stock."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (id, name, description, price, inventory_count)"
            " SELECT k, 'Product ' || k, 'A product of the benchmark', 9.99 + k, 1000000000"
            " FROM generate_series(1, %s) k",
            (PRODUCTS,),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('products', 'id'), %s)", (PRODUCTS,))


def _users(url: str, count: int, product: int | None) -> list[int]:
    """``count`` new users, each with an open cart (holding one unit of a product if
    ``product`` is not None: ``product`` itself, or a random one if it is 0)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        row = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM users").fetchone()
        assert row is not None
        base = int(row[0])
        names = [f"e2e{k}" for k in range(base, base + count)]
        conn.execute(
            "INSERT INTO users (id, username, username_key, email, password_hash)"
            " SELECT %s + k - 1, name, key, name || '@example.com', 'x'"
            " FROM unnest(%s::varchar[], %s::varchar[]) WITH ORDINALITY AS u(name, key, k)",
            (base, names, [username_key(n) for n in names]),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (base + count,))
        conn.execute(
            "INSERT INTO carts (user_id) SELECT k FROM generate_series(%s::int, %s::int) k",
            (base, base + count - 1),
        )
        if product is not None:
            conn.execute(
                "INSERT INTO cart_items (cart_id, product_id, quantity)"
                " SELECT c.id, CASE WHEN %(p)s = 0 THEN 1 + (random() * %(n)s)::int %% %(n)s"
                " ELSE %(p)s END, 1 FROM carts c WHERE c.user_id BETWEEN %(lo)s AND %(hi)s",
                {"p": product, "n": PRODUCTS, "lo": base, "hi": base + count - 1},
            )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE users, carts, cart_items")
    return list(range(base, base + count))


def _page(last_id: int | None) -> str:
    """The path of the catalog's page after product ``last_id`` (the first page if None):
    ``GET /products`` with no words nor filters is newest first, keyset by id."""
    if last_id is None:
        return f"/products?limit={PAGE}"
    mark = fingerprint(None, None, None, False, "newest")
    return f"/products?limit={PAGE}&cursor={encode_cursor('newest', mark, None, last_id)}"


def _pages() -> list[str]:
    """The first page and :data:`PAGES` full pages at random positions of the catalog
    (the same ones for every service: the seed is fixed)."""
    chosen = random.Random(22).sample(range(PAGE + 1, PRODUCTS + 1), PAGES)
    return [_page(None), *(_page(last_id) for last_id in chosen)]


def _token(user: int) -> str:
    return tokens.issue(SECRET.encode(), user, int(time.time()) + 24 * 3600)


def _write_tokens(directory: Path, prefix: str, per_thread: list[list[int]]) -> None:
    for number, users in enumerate(per_thread, 1):
        listed = ",".join(f'"{_token(u)}"' for u in users)
        (directory / f"{prefix}_{number}.lua").write_text(f"return {{{listed}}}\n")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _wrk(service: Service, endpoint: str, seconds: int, directory: Path) -> Slice:
    script = directory / f"{endpoint}.lua"
    pages = ",".join(f'"{path}"' for path in _pages())
    script.write_text(LUA[endpoint] % {"products": PRODUCTS, "dir": directory, "pages": pages})
    before = _cpu_seconds(service.process.pid)
    ran = subprocess.run(
        [
            *("wrk", "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", f"{seconds}s"),
            *("--latency", "--timeout", "10s", "-s", str(script), service.url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = _cpu_seconds(service.process.pid) - before
    out = ran.stdout
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(m?s)", out).group(1))  # type: ignore[union-attr]
    took = re.search(r"requests in ([\d.]+)(ms|s|m)", out)
    assert took is not None
    elapsed = float(took.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[took.group(2)]
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    assert p50 is not None
    assert p99 is not None
    errors = sum(int(m) for m in re.findall(r"Non-2xx or 3xx responses: (\d+)", out)) + sum(
        int(m) for m in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)
    )
    return Slice(
        requests,
        elapsed,
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        cpu / max(requests, 1) * 1e6,
        errors,
    )


def _same_answers(services: list[Service], url: str) -> None:
    """Every service answers the benchmark's requests with the same bytes."""
    (user,) = _users(url, 1, None)
    headers = {"Authorization": f"Bearer {_token(user)}"}
    with httpx.Client(timeout=30) as http:
        http.post(
            f"{services[0].url}/cart/items", json={"product_id": 3, "quantity": 2}, headers=headers
        )
        following = http.get(services[0].url + _page(None)).json()["next"]
        pages = [_page(None), f"/products?limit={PAGE}&cursor={following}", _page(PAGE + 1)]
        for path in ("/products/7", *pages, "/cart"):
            answers = {
                s.name: http.get(s.url + path, headers=headers)
                for s in services
                if s.name not in CATALOG_ONLY or path != "/cart"
            }
            assert {a.status_code for a in answers.values()} == {200}, (path, answers)
            bodies = {name: answer.content for name, answer in answers.items()}
            assert len(set(bodies.values())) == 1, (path, bodies)
        # A cursor of another search (by name): shopdb's 422 problem from each.
        other = encode_cursor("name", fingerprint(None, None, None, False, "name"), "Product 5", 5)
        refused = {s.name: http.get(f"{s.url}{_page(None)}&cursor={other}") for s in services}
        assert {a.status_code for a in refused.values()} == {422}, refused
        assert len({a.content for a in refused.values()}) == 1, refused
        writers = [s for s in services if s.name not in CATALOG_ONLY]
        added = set()
        for service in writers:  # each on an empty cart of a user of its own
            (adder,) = _users(url, 1, None)
            answer = http.post(
                f"{service.url}/cart/items",
                json={"product_id": 9, "quantity": 1},
                headers={"Authorization": f"Bearer {_token(adder)}"},
            ).content
            added.add(re.sub(rb'^\{"id":\d+,"user_id":\d+,', b"", answer))
        assert len(added) == 1, added
        orders = {}
        for service in writers:
            (buyer,) = _users(url, 1, 11)
            response = http.post(
                f"{service.url}/cart/checkout", headers={"Authorization": f"Bearer {_token(buyer)}"}
            )
            assert response.status_code == 201, (service.name, response.text)
            order = response.json()
            for key in ("id", "user_id", "cart_id", "created_at", "updated_at"):
                order.pop(key)
            orders[service.name] = json.dumps(order)
            assert list(response.json()) == list(json.loads(response.content)), service.name
        assert len(set(orders.values())) == 1, orders


def run(
    url: str, rounds: int, seconds: int, endpoints: list[str], names: list[str]
) -> tuple[list[Row], str]:
    """Every service on every endpoint, ``rounds`` interleaved slices of ``seconds``."""
    _seed(url)
    rows = {
        (n, e): Row(n, e) for e in endpoints for n in names if n not in CATALOG_ONLY or e in CATALOG
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        directory = Path(tmp)
        services = [stack.enter_context(running(n, url, directory / f"{n}.log")) for n in names]
        _same_answers(services, url)
        # Each wrk thread its own user (and products 5(i-1)+1 .. 5i) for the cart endpoints.
        _write_tokens(directory, "tokens", [[u] for u in _users(url, CONNECTIONS, None)])
        busy0, total0 = _machine_busy()
        load0 = os.getloadavg()
        for number in range(rounds):
            for endpoint in endpoints:
                order = services[number % len(services) :] + services[: number % len(services)]
                for service in order:
                    if service.name in CATALOG_ONLY and endpoint not in CATALOG:
                        continue
                    if endpoint == "checkout":
                        users = _users(url, CHECKOUTS_PER_SECOND * seconds, 0)
                        _write_tokens(
                            directory,
                            "checkout",
                            [users[i::CONNECTIONS] for i in range(CONNECTIONS)],
                        )
                    part = _wrk(service, endpoint, seconds, directory)
                    rows[service.name, endpoint].slices.append(part)
                    print(
                        f"   round {number + 1} {endpoint:<8} {service.name:<9}"
                        f" {part.requests / part.seconds:>7,.0f}/s p50 {part.p50_ms:.2f} ms"
                        f" p99 {part.p99_ms:.2f} ms cpu {part.cpu_us:,.0f} us errors {part.errors}",
                        file=sys.stderr,
                    )
        busy1, total1 = _machine_busy()
        load1 = os.getloadavg()
    machine = (
        f"the machine's CPUs were {100 * (busy1 - busy0) / max(total1 - total0, 1):.0f}% busy"
        f" over the run (every process: the services, wrk, PostgreSQL and the other agents"
        f" sharing it); load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end,"
        f" on {os.cpu_count()} CPUs"
    )
    return list(rows.values()), machine


def render(rows: list[Row], endpoints: list[str]) -> str:
    """The Markdown table: per endpoint and service, req/s, ratio to the limit (with the
    spread of the round-by-round ratio), p50, p99 and CPU per request (medians of the
    slices, with their spread), errors."""
    lines = [
        "| endpoint | service | req/s | x limit (rounds) | p50 ms | p99 ms (rounds) |"
        " CPU us/req (rounds) | errors |",
        "|---|---|---:|---|---:|---|---|---:|",
    ]
    for endpoint in endpoints:
        cell = {r.service: r for r in rows if r.endpoint == endpoint}
        limit = cell.get("limit")
        for name, row in cell.items():
            if limit is not None and name != "limit":
                ratios = [a / b for a, b in zip(row.rates, limit.rates, strict=True)]
                ratio = f"{row.rate / limit.rate:.2f} ({min(ratios):.2f} to {max(ratios):.2f})"
            else:
                ratio = "1.00" if name == "limit" else ""
            lines.append(
                f"| {PATHS[endpoint]} | {LABELS[name]} | {row.rate:,.0f} | {ratio} |"
                f" {row.median('p50_ms'):.2f} |"
                f" {row.median('p99_ms'):.1f} ({row.spread('p99_ms')}) |"
                f" {row.median('cpu_us'):,.0f} ({row.spread('cpu_us')}) |"
                f" {sum(s.errors for s in row.slices)} |"
            )
    return "\n".join(lines)


def main() -> None:
    from bench.run import database_for, environment

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="per slice")
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument("--only", nargs="+", choices=list(SERVICES), default=list(SERVICES))
    parser.add_argument("--database", default="shopdb_e2e")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    url = database_for(args.database)
    rows, machine = run(url, args.rounds, args.seconds, args.endpoints, args.only)
    table = render(rows, args.endpoints)
    print(table)
    print(machine)
    if args.write_docs:
        command = f"python -m bench.e2e --rounds {args.rounds} --seconds {args.seconds}"
        block = (
            f"{START}\n{environment(url)}\n- command: `{command}`: {args.rounds} rounds, each"
            f" running every service on every endpoint for {args.seconds} s (wrk, {CONNECTIONS}"
            f" threads and connections), in a rotating order\n- load: {machine}\n\n{table}\n{END}"
        )
        text = DOCS.read_text()
        if START in text:
            before, rest = text.split(START, 1)
            text = before + block + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        DOCS.write_text(text)


if __name__ == "__main__":
    main()
