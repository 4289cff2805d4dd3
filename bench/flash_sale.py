"""The flash sale: one hot product, fresh carts, N shoppers checking out at once.

Every checkout of the sale locks the one product's row, so the sale goes as
fast as that lock is passed on: the time from taking it to the commit. The
limit is the bare decrement of the hot row (pgbench running ``UPDATE products
SET inventory_count = inventory_count - 1 WHERE id = $1 AND inventory_count >
0``). Beside it, in interleaved slices: pgbench running checkout's statement
(:data:`shopdb.store.orders.CHECKOUT`, which locks the products before it
writes), pgbench running :data:`LOCKED_LAST` (issue 22's experiment: the same
sale with the order written first and the products locked last), and the
Store itself (``Store.checkout`` on N threads), and a control: the checkout
statement on carts that each hold one of 1,000 other products, so no lock is
waited for: what the machine does when the hot row is not the limit. Each checkout takes a fresh
cart holding one unit of the hot product (pgbench draws its id from a
sequence: one more statement per transaction, outside the lock). After every
slice the run checks that the stock sold equals the units in orders (and
``units_ordered``), that nothing failed, and that the server counted no
deadlock.

``make bench-flash-sale`` (``python -m bench.flash_sale [--shoppers 8 64]
[--seconds 10] [--rounds 5] [--write-docs]``); ``make bench`` runs it after its table."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench.peers.pgbench_shop import pgbench_binary
from shopdb.names import username_key
from shopdb.store import carts, orders

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- flash-sale:start -->", "<!-- flash-sale:end -->"
KINDS = ("decrement", "checkout", "locked-last", "store", "spread")
LABELS = {
    "decrement": "bare hot-row decrement (pgbench)",
    "checkout": "checkout statement (pgbench; products locked first)",
    "locked-last": "the same sale, products locked last (pgbench; not shipped)",
    "store": "Store.checkout (N threads)",
    "spread": "control: checkout statement, no hot row (carts over 1,000 products)",
}
#: The control's products: each cart holds one unit of one of these, so no two checkouts
#: in a row wait for one product: what the machine does when the hot row is not the limit.
SPREAD = 1000
HOT_STOCK = 2_000_000_000
#: Fresh carts made before each slice, per second of the slice.
CARTS_PER_SECOND = 6000


# Issue 22's experiment, measured here and not shipped: checkout with the products locked
# last. It locks the cart, reads the lines with the stock and prices of its snapshot,
# writes the order and its lines, closes the cart, and only then locks the products in id
# order, decrements them (-1 for a product whose price or name changed since the snapshot,
# so the nonnegative check fails the whole statement) and deletes the lines; `stock` waits
# for `closed` and every `recorded` row, `emptied` for every `sold` row. A product changed
# under it fails the statement (stock check, the order line's foreign key) and the Store
# would have to run CHECKOUT after it. Measured slower than CHECKOUT: docs/performance.md.
LOCKED_LAST = f"""
WITH cart AS (
    SELECT c.id, c.user_id, c.closed_at FROM carts c WHERE {carts.WHICH_CART} FOR UPDATE
), lines AS MATERIALIZED (
    SELECT ci.id AS item_id, ci.product_id, ci.quantity, p.inventory_count, p.price, p.name
    FROM cart_items ci JOIN products p ON p.id = ci.product_id
    WHERE ci.cart_id = (SELECT id FROM cart WHERE closed_at IS NULL)
), short AS (
    SELECT product_id, quantity, inventory_count FROM lines WHERE quantity > inventory_count
), ok AS (
    SELECT 1 WHERE EXISTS (SELECT 1 FROM lines) AND NOT EXISTS (SELECT 1 FROM short)
), placed AS (
    INSERT INTO orders (user_id, cart_id, total)
    SELECT cart.user_id, cart.id, (SELECT sum(price * quantity) FROM lines)
    FROM cart WHERE EXISTS (SELECT 1 FROM ok)
    RETURNING id, user_id, cart_id, status, total, created_at, updated_at
), recorded AS (
    INSERT INTO order_items (order_id, product_id, name, unit_price, quantity)
    SELECT placed.id, l.product_id, l.name, l.price, l.quantity FROM placed, lines l
    RETURNING product_id
), closed AS (
    UPDATE carts SET closed_at = now() WHERE id = (SELECT cart_id FROM placed)
    RETURNING id
), stock AS MATERIALIZED (
    SELECT p.id, p.price, p.name FROM products p
    WHERE p.id IN (SELECT product_id FROM lines)
      AND EXISTS (SELECT 1 FROM closed) AND (SELECT count(*) FROM recorded) > 0
    ORDER BY p.id
    FOR NO KEY UPDATE
), sold AS (
    UPDATE products p
    SET inventory_count = CASE WHEN s.price = l.price AND s.name = l.name
                               THEN p.inventory_count - l.quantity ELSE -1 END,
        units_ordered = p.units_ordered + l.quantity
    FROM stock s JOIN lines l ON l.product_id = s.id WHERE p.id = s.id
    RETURNING p.id
), emptied AS (
    DELETE FROM cart_items ci USING lines l
    WHERE ci.id = l.item_id AND (SELECT count(*) FROM sold) > 0
), before AS (
    SELECT {orders._ORDER_COLUMNS} FROM orders o JOIN cart ON o.cart_id = cart.id
    WHERE cart.closed_at IS NOT NULL
)
SELECT 'cart', id, user_id, (closed_at IS NOT NULL)::integer, NULL::integer,
       NULL::numeric, NULL::varchar, NULL::timestamptz, NULL::timestamptz FROM cart
UNION ALL
SELECT 'short', product_id, quantity, inventory_count, NULL, NULL, NULL, NULL, NULL FROM short
UNION ALL
SELECT 'order', id, user_id, cart_id, NULL, total, status, created_at, updated_at FROM placed
UNION ALL
SELECT 'line', product_id, quantity, NULL, NULL, price, name, NULL, NULL
FROM lines WHERE EXISTS (SELECT 1 FROM ok)
UNION ALL
SELECT 'order', id, user_id, cart_id, NULL, total, status, created_at, updated_at FROM before
UNION ALL
SELECT 'line', oi.product_id, oi.quantity, NULL, NULL, oi.unit_price, oi.name, NULL, NULL
FROM order_items oi JOIN before ON oi.order_id = before.id
"""


def _one_line(sql: str) -> str:
    """``sql`` on one line for a pgbench script (comments dropped)."""
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


def _checkout_script(statement: str) -> str:
    body = statement.replace("%(cart)s", ":cart").replace("%(user)s", "NULL")
    body = body.replace("%(expected)s", "NULL").replace("%(key)s", "NULL")
    return "SELECT nextval('flash_next_cart') AS cart \\gset\n" + _one_line(body) + ";\n"


SCRIPTS = {
    "decrement": (
        "UPDATE products SET inventory_count = inventory_count - 1"
        " WHERE id = :hot AND inventory_count > 0;\n"
    ),
    "checkout": _checkout_script(orders.CHECKOUT),
    "locked-last": _checkout_script(LOCKED_LAST),
    "spread": _checkout_script(orders.CHECKOUT),
}


@dataclass(frozen=True)
class Sale:
    """How the sale is run: the numbers of shoppers, seconds per implementation and number
    of shoppers, and the interleaved slices those seconds are cut into."""

    shoppers: list[int] = field(default_factory=lambda: [8, 64])
    seconds: int = 10
    rounds: int = 5


@dataclass
class Slice:
    """One slice of one implementation: what it did, and what the tables say it did."""

    done: int
    seconds: float
    failed: int = 0
    sold: int = 0  # stock that left the hot product
    ordered: int = 0  # units of it in new order lines
    counted: int = 0  # units added to its units_ordered
    deadlocks: int = 0


@dataclass
class Row:
    """Every slice of one implementation at one number of shoppers."""

    kind: str
    shoppers: int
    slices: list[Slice] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return sum(s.done for s in self.slices) / sum(s.seconds for s in self.slices)

    @property
    def rates(self) -> list[float]:
        return [s.done / s.seconds for s in self.slices]

    @property
    def conserved(self) -> bool:
        """Stock sold equals units in new order lines and units counted as ordered (for
        the bare decrement: the transactions done), in every slice."""
        if self.kind == "decrement":
            return all(s.sold == s.done for s in self.slices)
        return all(s.sold == s.ordered == s.counted == s.done for s in self.slices)


def _prepare(url: str) -> tuple[int, range]:
    """The hot product, the control's products and the cart sequence; returns the hot
    product's id and the control products' ids."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO products (name, price, inventory_count) VALUES ('Hot', 9.99, %s)"
            " RETURNING id",
            (HOT_STOCK,),
        ).fetchone()
        assert row is not None
        conn.execute("CREATE SEQUENCE IF NOT EXISTS flash_next_cart")
        first = conn.execute(
            "INSERT INTO products (name, price, inventory_count)"
            " SELECT 'Cold ' || k, 9.99, %s FROM generate_series(1, %s) k RETURNING id",
            (HOT_STOCK, SPREAD),
        ).fetchall()
        ids = sorted(int(r[0]) for r in first)
        assert ids == list(range(ids[0], ids[0] + SPREAD))
        return int(row[0]), range(ids[0], ids[0] + SPREAD)


def _fresh_carts(url: str, products: range, count: int) -> range:
    """``count`` new users, each with an open cart holding one unit of one of ``products``
    (in turn); the carts' ids, which the sequence ``flash_next_cart`` hands out from its
    next value on."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM users").fetchone()
        assert first is not None
        base = int(first[0])
        names = [f"flash{k}" for k in range(base, base + count)]
        conn.execute(
            "INSERT INTO users (id, username, username_key, email, password_hash)"
            " SELECT %s + k - 1, name, key, name || '@example.com', 'x'"
            " FROM unnest(%s::varchar[], %s::varchar[]) WITH ORDINALITY AS u(name, key, k)",
            (base, names, [username_key(n) for n in names]),
        )
        cart = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM carts").fetchone()
        assert cart is not None
        lo = int(cart[0])
        conn.execute(
            "INSERT INTO carts (id, user_id) SELECT %s + k, %s + k FROM generate_series(0, %s) k",
            (lo, base, count - 1),
        )
        conn.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity)"
            " SELECT c, %s + c %% %s, 1 FROM generate_series(%s::int, %s::int) c",
            (products.start, len(products), lo, lo + count - 1),
        )
        conn.execute("SELECT setval('flash_next_cart', %s, false)", (lo,))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE users, carts, cart_items, orders, order_items, products")
    return range(lo, lo + count)


def _tally(
    conn: psycopg.Connection[tuple[object, ...]], products: range
) -> tuple[int, int, int, int]:
    """Stock and units ordered of ``products``, units of them in order lines, deadlocks."""
    row = conn.execute(
        "SELECT (SELECT sum(inventory_count) FROM products WHERE id BETWEEN %(lo)s AND %(hi)s),"
        " (SELECT sum(units_ordered) FROM products WHERE id BETWEEN %(lo)s AND %(hi)s),"
        " (SELECT coalesce(sum(quantity), 0) FROM order_items"
        "  WHERE product_id BETWEEN %(lo)s AND %(hi)s),"
        " (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database())",
        {"lo": products.start, "hi": products.stop - 1},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])  # type: ignore[call-overload]


def _pgbench(url: str, kind: str, shoppers: int, seconds: int, hot: int) -> tuple[int, int, float]:
    """Run one script; (transactions done, failed, seconds)."""
    binary = pgbench_binary() or "/usr/lib/postgresql/15/bin/pgbench"
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host", "")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{kind}.sql"
        script.write_text(SCRIPTS[kind])
        command = [
            binary,
            *("-n", "-M", "prepared", "-c", str(shoppers), "-j", str(min(shoppers, 2))),
            *("-T", str(seconds), "-D", f"hot={hot}", "-f", str(script)),
            *("-h", str(host), "-U", parsed.username or "postgres"),
        ]
        if parsed.port:
            command += ["-p", str(parsed.port)]
        command.append(str(parsed.database))
        ran = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp)
    if ran.returncode != 0:
        raise RuntimeError(f"pgbench failed ({ran.returncode}): {ran.stderr.strip()[-2000:]}")
    out = ran.stdout
    done = int(re.search(r"actually processed: (\d+)", out).group(1))  # type: ignore[union-attr]
    failed_match = re.search(r"number of failed transactions: (\d+)", out)
    failed = int(failed_match.group(1)) if failed_match else 0
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return done, failed, done / tps if tps else float(seconds)


def _store(url: str, shoppers: int, seconds: int, carts: range) -> tuple[int, int, float]:
    """``Store.checkout`` on ``shoppers`` threads for ``seconds``; (done, failed, seconds)."""
    from shopdb import Store, establish_connection_pool
    from shopdb.config import Settings

    settings = Settings(_env_file=None, pool_size=shoppers, connect_retry=0, pool_timeout=60)
    ids = iter(carts)
    lock = threading.Lock()
    done = [0] * shoppers
    failed = [0] * shoppers
    with establish_connection_pool(url, settings=settings, announce=False) as pool:
        pool.driver.wait()  # every connection open before the clock starts
        store = Store(pool, retries=0)  # a deadlock would be counted, not retried
        start = threading.Barrier(shoppers + 1)
        stop = [0.0]

        def shopper(me: int) -> None:
            start.wait()
            while time.monotonic() < stop[0]:
                with lock:
                    cart = next(ids, None)
                if cart is None:
                    raise RuntimeError("the slice ran out of fresh carts: raise CARTS_PER_SECOND")
                try:
                    store.checkout(cart)
                    done[me] += 1
                except Exception:
                    failed[me] += 1

        workers = [threading.Thread(target=shopper, args=(i,)) for i in range(shoppers)]
        for worker in workers:
            worker.start()
        began = time.monotonic()
        stop[0] = began + seconds
        start.wait()
        for worker in workers:
            worker.join()
        took = time.monotonic() - began
    return sum(done), sum(failed), took


def _slice(url: str, kind: str, shoppers: int, seconds: int, hot: int, spread: range) -> Slice:
    products = spread if kind == "spread" else range(hot, hot + 1)
    carts = None
    if kind != "decrement":
        carts = _fresh_carts(url, products, CARTS_PER_SECOND * seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        stock0, counted0, ordered0, dead0 = _tally(conn, products)
        if kind == "store":
            assert carts is not None
            done, failed, took = _store(url, shoppers, seconds, carts)
        else:
            done, failed, took = _pgbench(url, kind, shoppers, seconds, hot)
        stock1, counted1, ordered1, dead1 = _tally(conn, products)
        if carts is not None:
            used = conn.execute("SELECT last_value FROM flash_next_cart").fetchone()
            assert used is not None
            if kind != "store" and int(used[0]) >= carts.stop:
                raise RuntimeError("the slice ran out of fresh carts: raise CARTS_PER_SECOND")
    return Slice(
        done, took, failed, stock0 - stock1, ordered1 - ordered0, counted1 - counted0, dead1 - dead0
    )


def run(url: str, shoppers: list[int], seconds: int, rounds: int) -> list[Row]:
    """Every implementation at every number of shoppers, ``rounds`` interleaved slices of
    ``seconds / rounds`` each (at least 1 s: pgbench counts whole seconds)."""
    hot, spread = _prepare(url)
    per_slice = max(1, round(seconds / rounds))
    rows: list[Row] = []
    for n in shoppers:
        cell = {kind: Row(kind, n) for kind in KINDS}
        for number in range(rounds):
            order = KINDS[number % len(KINDS) :] + KINDS[: number % len(KINDS)]
            for kind in order:
                cell[kind].slices.append(_slice(url, kind, n, per_slice, hot, spread))
                last = cell[kind].slices[-1]
                print(
                    f"   {n:>3} shoppers  {kind:<17} {last.done / last.seconds:>8,.0f}/s"
                    f"  failed {last.failed}  deadlocks {last.deadlocks}",
                    file=sys.stderr,
                )
        rows += cell.values()
    return rows


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f"{min(values):.2f} to {max(values):.2f}"


def render(rows: list[Row]) -> str:
    """The Markdown table: checkouts/s, ratio to the bare decrement (overall and round by
    round), failures, deadlocks, conservation."""
    lines = [
        "| shoppers | implementation | per s | x bare decrement | spread over rounds |"
        " failed | deadlocks | stock sold = units ordered |",
        "|---:|---|---:|---:|---|---:|---:|---|",
    ]
    for shoppers in sorted({r.shoppers for r in rows}):
        cell = {r.kind: r for r in rows if r.shoppers == shoppers}
        base = cell["decrement"]
        for kind in KINDS:
            row = cell[kind]
            ratios = [a / b for a, b in zip(row.rates, base.rates, strict=True)]
            lines.append(
                f"| {shoppers} | {LABELS[kind]} | {row.rate:,.0f} | {row.rate / base.rate:.2f} |"
                f" {_spread(ratios) if kind != 'decrement' else ''} |"
                f" {sum(s.failed for s in row.slices)} | {sum(s.deadlocks for s in row.slices)} |"
                f" {'yes' if row.conserved else 'NO'} |"
            )
    return "\n".join(lines)


def write_docs(table: str, environment: str, args: argparse.Namespace | Sale) -> None:
    """Put the table between the flash-sale markers of docs/performance.md."""
    command = "python -m bench.flash_sale " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in (
            ("shoppers", args.shoppers),
            ("seconds", args.seconds),
            ("rounds", args.rounds),
        )
    )
    load = os.getloadavg()
    block = (
        f"{START}\n{environment}\n- command: `{command}` ({args.rounds} interleaved slices of"
        f" {max(1, round(args.seconds / args.rounds))} s per implementation and number of"
        f" shoppers); load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        f" on {os.cpu_count()} CPUs\n\n{table}\n{END}"
    )
    text = DOCS.read_text()
    if START in text:
        before, rest = text.split(START, 1)
        text = before + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text)


def main() -> None:
    from bench.run import database_for, environment

    parser = argparse.ArgumentParser(description=__doc__)
    default = Sale()
    parser.add_argument("--shoppers", type=int, nargs="+", default=default.shoppers)
    parser.add_argument(
        "--seconds", type=int, default=default.seconds, help="per implementation and cell"
    )
    parser.add_argument("--rounds", type=int, default=default.rounds)
    parser.add_argument("--database", default="shopdb_flash")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    url = database_for(args.database)
    rows = run(url, args.shoppers, args.seconds, args.rounds)
    table = render(rows)
    print(table)
    if args.write_docs:
        write_docs(table, environment(url), args)


if __name__ == "__main__":
    main()
