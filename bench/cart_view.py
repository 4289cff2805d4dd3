"""``make bench-cart-view``: what returning the cart view from a cart mutation costs.

``add_to_cart`` (and ``set_quantity``, ``remove_from_cart``) return the cart
as the endpoint shows it, from the one statement that writes the line (a CTE,
:data:`shopdb.store.carts.ADD`). Measured on a bare psycopg connection, at
concurrency 1, in interleaved rounds, three ways of adding one unit to an open
cart of the benchmark database (``make bench`` leaves it):

- **line only**: the add as one ``INSERT ... ON CONFLICT`` returning the line;
- **line and view, one statement**: what shopdb runs;
- **line, then view**: the add, then :data:`shopdb.store.carts.VIEW`, two round
  trips: what an endpoint that shows the cart would do without it.

Each runs twice: as a shop runs it (every commit flushed to disk, which on
this machine is most of an add's time) and with ``synchronous_commit = off``
for the session, so the statements' own cost shows.

With ``--write-docs`` the table goes into docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.peers.bare_shop import store_connection_kwargs
from bench.run import database_url_for
from shopdb.store import carts

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- cart-view:start -->", "<!-- cart-view:end -->"

LINE_ONLY = """
INSERT INTO cart_items AS ci (cart_id, product_id, quantity)
SELECT %(cart)s, p.id, %(qty)s FROM products p
WHERE p.id = %(product)s AND p.inventory_count >= %(qty)s
ON CONFLICT (cart_id, product_id) DO UPDATE
SET quantity = ci.quantity + EXCLUDED.quantity
WHERE ci.quantity + EXCLUDED.quantity
      <= (SELECT inventory_count FROM products WHERE id = EXCLUDED.product_id)
RETURNING ci.product_id, ci.quantity
"""


def _table(
    per_call: dict[tuple[str, str], list[float]],
    variants: list[str],
    args: argparse.Namespace,
    carts: int,
    lines_per_cart: float,
) -> str:
    """The Markdown table: each variant's median, and its ratio to the line-only add."""

    def cell(name: str, mode: str) -> str:
        median = statistics.median(per_call[(name, mode)])
        base = statistics.median(per_call[("line only", mode)])
        return f"{median:,.0f} | {median / base:.2f}x"

    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        f"`make bench-cart-view` (one bare connection, {args.rounds} interleaved rounds "
        f"of {args.calls} adds per variant, median; {carts} open carts holding "
        f"{lines_per_cart:.0f} lines each on average at the end):",
        "",
        "| add one unit to an open cart | us per call, commits flushed | vs line only "
        "| us per call, synchronous_commit off | vs line only |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in variants:
        lines.append(f"| {name} | {cell(name, 'on')} | {cell(name, 'off')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=500, help="calls per variant per round")
    parser.add_argument("--database", default="shopdb_bench")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    url = database_url_for(args.database)
    with psycopg.connect(url, **store_connection_kwargs(1)) as conn:
        cursor = conn.cursor()
        open_carts = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM carts WHERE closed_at IS NULL ORDER BY id LIMIT 500"
            ).fetchall()
        ]
        if not open_carts:
            raise SystemExit("no open carts: run `make bench` first (it leaves the database)")
        # Every cart starts with the same three lines; the adds below go to five
        # products, so a cart holds five lines at most, as a shop's carts do.
        conn.execute("DELETE FROM cart_items WHERE cart_id = ANY(%s)", (open_carts,))
        conn.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity)"
            " SELECT c, p, 1 FROM unnest(%s::int[]) c, generate_series(1, 3) p",
            (open_carts,),
        )
        rng = random.Random(0)

        def params() -> dict[str, object]:
            return {
                "cart": rng.choice(open_carts),
                "user": None,
                "product": rng.randint(1, 5),
                "qty": 1,
            }

        def line_only() -> None:
            cursor.execute(LINE_ONLY, params(), prepare=True)
            cursor.fetchall()

        def one_statement() -> None:
            cursor.execute(carts.ADD, params(), prepare=True)
            cursor.fetchall()

        def two_trips() -> None:
            given = params()
            cursor.execute(LINE_ONLY, given, prepare=True)
            cursor.fetchall()
            cursor.execute(carts.VIEW, given, prepare=True)
            cursor.fetchall()

        variants: dict[str, Callable[[], None]] = {
            "line only": line_only,
            "line and view, one statement (shopdb)": one_statement,
            "line, then view (two round trips)": two_trips,
        }
        per_call: dict[tuple[str, str], list[float]] = {}
        for mode in ("on", "off"):
            conn.execute(f"SET synchronous_commit = {mode}")
            for call in variants.values():  # warm-up: prepared, cached
                for _ in range(50):
                    call()
            for round_ in range(args.rounds):
                order = list(variants.items())
                if round_ % 2:
                    order.reverse()
                for name, call in order:
                    began = time.perf_counter()
                    for _ in range(args.calls):
                        call()
                    spent = (time.perf_counter() - began) / args.calls * 1e6
                    per_call.setdefault((name, mode), []).append(spent)
        # The rows added stay; the benchmark's rebuild resets them.
        (lines_per_cart,) = conn.execute(
            "SELECT avg(n) FROM (SELECT count(*) AS n FROM cart_items"
            " WHERE cart_id = ANY(%s) GROUP BY cart_id) c",
            (open_carts,),
        ).fetchone() or (0,)

    table = _table(per_call, list(variants), args, len(open_carts), float(lines_per_cart or 0))
    print(table)
    if args.write_docs:
        text = DOCS.read_text()
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOCS.write_text(f"{head}{START}\n{table}\n{END}{tail}")
        print(f"   wrote {DOCS}")


if __name__ == "__main__":
    main()
