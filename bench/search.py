"""``make bench-search``: catalog search on 1,000,000 products, beside the naive SQL.

A database ``shopdb_bench_search`` (on BENCH_DATABASE_URL's server, else
DATABASE_URL's, else the embedded one) gets N products (default 1,000,000)
with names and descriptions from bench/catalog.py's vocabulary, by COPY,
then VACUUM ANALYZE; it is kept, and reused by the next run with the same N
and seed (``--fresh`` loads it again).

Each case (one-word and two-word text, a price range, in stock only, each
sort) is measured on its first page and on its 50th page, reached by
following ``next`` (untimed), as ``Store.search_products`` calls on a pool
(the whole call: checks, the statement, the rows as models, the cursor),
one at a time; p50 and p95 over every word and repetition. Beside each, the
naive version: ``ILIKE '%word%'`` on name and description, the same filters
and ``ORDER BY``, ``OFFSET (page - 1) * 20``, run with psycopg directly on
the table as it was before migration 0011 (its three indexes dropped inside
a transaction that is rolled back), which is what an application had to
write before. The EXPLAIN (ANALYZE) of each query shape's 50th page goes
into docs/performance.md with the figures.

Target (issue 21): every p95 under 20 ms, and the 50th page at least 20x
faster than the naive version's.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench import catalog
from bench.run import database_for, database_url_for
from shopdb import Store
from shopdb.db import Pool
from shopdb.store import products, search

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "performance.md"
DATABASE = "shopdb_bench_search"
PAGE = 20
DEEP = 50
TARGET_MS = 20.0
TARGET_RATIO = 20.0
#: 0011's indexes: dropped for the naive queries (in a transaction rolled back).
INDEXES = ("ix_products_search", "ix_products_price_id", "ix_products_name_id")
_META = "bench_search_meta"


@dataclass(frozen=True)
class Case:
    """One row of the table: a way of searching, with several words (or none)."""

    name: str
    arguments: Callable[[str], dict[str, Any]]
    words: tuple[str, ...] = ("",)


@dataclass
class Cell:
    """Latencies of one case on one page, in ms."""

    store: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    by_word: dict[str, list[float]] = field(default_factory=dict)


def load(url: str, rows: int, seed: int) -> None:
    """COPY the catalog into ``products`` (0011's indexes built after), then VACUUM ANALYZE."""
    with psycopg.connect(url, autocommit=True) as conn:
        definitions = [
            str(r[0])
            for r in conn.execute(
                "SELECT pg_get_indexdef(to_regclass(name)) FROM unnest(%s::text[]) AS name",
                (list(INDEXES),),
            )
        ]
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY products (name, description, price, inventory_count) FROM STDIN"
            ) as copy,
        ):
            batch: list[str] = []
            for line in catalog.products(rows, seed):
                batch.append(line)
                if len(batch) == 20_000:
                    copy.write("".join(batch))
                    batch.clear()
            copy.write("".join(batch))
        conn.execute("SET maintenance_work_mem = '512MB'")
        for definition in definitions:
            conn.execute(definition)
        conn.execute("VACUUM (ANALYZE) products")
        conn.execute(f"CREATE TABLE {_META} (rows integer, seed integer)")
        conn.execute(f"INSERT INTO {_META} VALUES (%s, %s)", (rows, seed))


def database(rows: int, seed: int, fresh: bool) -> str:
    """The benchmark database's URL, loaded now unless it already holds this catalog."""
    if not fresh:
        try:
            url = database_url_for(DATABASE)
            with psycopg.connect(url) as conn:
                kept = conn.execute(f"SELECT rows, seed FROM {_META}").fetchone()
            if kept == (rows, seed):
                _log(f"reusing {DATABASE} ({rows:,} products)")
                return url
        except psycopg.Error:
            pass
    url = database_for(DATABASE)
    started = time.perf_counter()
    load(url, rows, seed)
    _log(f"loaded {rows:,} products in {time.perf_counter() - started:.0f} s")
    return url


def matches(conn: psycopg.Connection[Any], text: str) -> int:
    """How many products the text matches."""
    row = conn.execute(
        "SELECT count(*) FROM products WHERE search @@ websearch_to_tsquery('english', %s)",
        (text,),
    ).fetchone()
    return int(row[0]) if row else 0


def pick_words(conn: psycopg.Connection[Any], seed: int, count: int) -> tuple[list[str], list[str]]:
    """One-word and two-word queries with a 50th page (1,000 matches or more), chosen at
    random from the vocabulary with the seed."""
    rng = random.Random(seed)
    singles = sorted(
        {w for w in catalog.KINDS + catalog.COLOURS + catalog.MATERIALS if " " not in w}
    )
    pairs = sorted(
        {m for m in catalog.MATERIALS if " " in m}
        | {f"{c} {k}" for c in catalog.COLOURS[:12] for k in catalog.KINDS if " " not in k}
    )
    enough = DEEP * PAGE
    one = [w for w in rng.sample(singles, len(singles)) if matches(conn, w) >= enough][:count]
    two: list[str] = []
    for pair in rng.sample(pairs, len(pairs)):
        if matches(conn, pair) >= enough:
            two.append(pair)
            if len(two) == count:
                break
    return one, two


def cases(one: list[str], two: list[str]) -> list[Case]:
    """What is measured."""
    low, high = Decimal("20.00"), Decimal("40.00")
    return [
        Case("one word, relevance", lambda w: {"query": w}, tuple(one)),
        Case("two words, relevance", lambda w: {"query": w}, tuple(two)),
        Case("one word, by price", lambda w: {"query": w, "sort": "price_asc"}, tuple(one)),
        Case(
            "one word, in stock, 20.00-40.00, by price",
            lambda w: {
                "query": w,
                "in_stock": True,
                "min_price": low,
                "max_price": high,
                "sort": "price_asc",
            },
            tuple(one),
        ),
        Case("price 20.00-40.00, newest", lambda w: {"min_price": low, "max_price": high}),
        Case(
            "price 20.00-40.00, by price",
            lambda w: {"min_price": low, "max_price": high, "sort": "price_asc"},
        ),
        Case("in stock, newest", lambda w: {"in_stock": True}),
        Case("in stock, by name", lambda w: {"in_stock": True, "sort": "name"}),
        Case("all, price ascending", lambda w: {"sort": "price_asc"}),
        Case("all, price descending", lambda w: {"sort": "price_desc"}),
        Case("all, by name", lambda w: {"sort": "name"}),
        Case("all, newest", lambda w: {"sort": "newest"}),
    ]


_NAIVE_ORDER = {
    "relevance": "(name ILIKE %(first)s) DESC, id DESC",
    "price_asc": "price, id",
    "price_desc": "price DESC, id DESC",
    "name": "name, id",
    "newest": "id DESC",
}


def naive(arguments: dict[str, Any], page: int) -> tuple[str, dict[str, Any]]:
    """The SQL an application writes without search: ILIKE, the filters, ORDER BY, OFFSET."""
    where, params = [], {}
    words = str(arguments.get("query") or "").split()
    for i, word in enumerate(words):
        params[f"w{i}"] = f"%{word}%"
        where.append(f"(name ILIKE %(w{i})s OR description ILIKE %(w{i})s)")
    if words:
        params["first"] = f"%{words[0]}%"
    if arguments.get("min_price") is not None:
        where.append("price >= %(low)s")
        params["low"] = arguments["min_price"]
    if arguments.get("max_price") is not None:
        where.append("price <= %(high)s")
        params["high"] = arguments["max_price"]
    if arguments.get("in_stock"):
        where.append("inventory_count > 0")
    sort = arguments.get("sort") or ("relevance" if words else "newest")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    sql = (
        f"SELECT {products.COLUMNS} FROM products{condition} ORDER BY {_NAIVE_ORDER[sort]} "
        f"OFFSET {(page - 1) * PAGE} LIMIT {PAGE}"
    )
    return sql, params


class TooFewPages(Exception):
    """The search has fewer pages than asked for."""


def cursor_of(store: Store, arguments: dict[str, Any], page: int) -> str | None:
    """The cursor that gets page ``page`` (None for the first)."""
    cursor = None
    for _ in range(page - 1):
        cursor = store.search_products(**arguments, limit=PAGE, cursor=cursor).next
        if cursor is None:
            raise TooFewPages(f"{arguments} has fewer than {page} pages")
    return cursor


def measure(
    url: str, pool: Pool, all_cases: list[Case], repeat: int, naive_repeat: int
) -> dict[tuple[str, int], Cell]:
    """Every case's cells: the Store's calls, then the naive queries."""
    store = Store(pool)
    cells: dict[tuple[str, int], Cell] = {}
    for case in all_cases:
        for page in (1, DEEP):
            cell = cells[(case.name, page)] = Cell()
            for word in case.words:
                arguments = case.arguments(word)
                try:
                    cursor = cursor_of(store, arguments, page)
                except TooFewPages:
                    continue  # (a word whose filtered matches end before page 50)
                cell.words.append(word)
                store.search_products(**arguments, limit=PAGE, cursor=cursor)  # warm
                for _ in range(repeat):
                    started = time.perf_counter()
                    store.search_products(**arguments, limit=PAGE, cursor=cursor)
                    took = 1000 * (time.perf_counter() - started)
                    cell.store.append(took)
                    cell.by_word.setdefault(word, []).append(took)
        _log(f"store: {case.name}")
    with psycopg.connect(url) as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")  # rolled back below
        for case in all_cases:
            for page in (1, DEEP):
                cell = cells[(case.name, page)]
                for word in cell.words:
                    sql, params = naive(case.arguments(word), page)
                    for _ in range(naive_repeat):
                        started = time.perf_counter()
                        conn.execute(sql, params).fetchall()
                        cell.naive.append(1000 * (time.perf_counter() - started))
            _log(f"naive: {case.name}")
        conn.rollback()
    return cells


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def render(all_cases: list[Case], cells: dict[tuple[str, int], Cell]) -> str:
    """The table: per case and page, the Store's p50/p95 and the naive p50/p95."""
    lines = [
        "| case | page | search p50 ms | search p95 ms | naive p50 ms | naive p95 ms "
        "| naive / search (p50) | calls |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in all_cases:
        for page in (1, DEEP):
            cell = cells[(case.name, page)]
            if not cell.store:
                lines.append(f"| {case.name} | {page} | no word has {page} pages | | | | | 0 |")
                continue
            s50, s95 = percentile(cell.store, 50), percentile(cell.store, 95)
            n50, n95 = percentile(cell.naive, 50), percentile(cell.naive, 95)
            lines.append(
                f"| {case.name} | {page} | {s50:.1f} | {s95:.1f} | {_ms(n50)} | {_ms(n95)} "
                f"| {_ratio(n50 / s50)} | {len(cell.store)} |"
            )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 10 else f"{value:,.0f}x"


def by_word(
    all_cases: list[Case], cells: dict[tuple[str, int], Cell], counts: dict[str, int]
) -> str:
    """The text cases word by word: a search's cost follows how many products match."""
    text_cases = [c for c in all_cases if c.words != ("",)]
    lines = [
        "| words | matches | "
        + " | ".join(f"{c.name}, page {p} p50 ms" for c in text_cases for p in (1, DEEP))
        + " |",
        "|---|---:|" + "---:|" * (2 * len(text_cases)),
    ]
    words = sorted({w for c in text_cases for w in c.words}, key=lambda w: counts[w])
    for word in words:
        figures = []
        for case in text_cases:
            for page in (1, DEEP):
                taken = cells[(case.name, page)].by_word.get(word)
                figures.append(f"{percentile(taken, 50):.1f}" if taken else "")
        lines.append(f"| {word} | {counts[word]:,} | " + " | ".join(figures) + " |")
    return "\n".join(lines)


def verdict(all_cases: list[Case], cells: dict[tuple[str, int], Cell]) -> str:
    """Whether the targets are met, case by case."""
    slow = [
        f"{case.name} (page {page}: {percentile(cells[(case.name, page)].store, 95):.1f} ms)"
        for case in all_cases
        for page in (1, DEEP)
        if cells[(case.name, page)].store
        and percentile(cells[(case.name, page)].store, 95) >= TARGET_MS
    ]
    ratios = {
        case.name: percentile(cells[(case.name, DEEP)].naive, 50)
        / percentile(cells[(case.name, DEEP)].store, 50)
        for case in all_cases
        if cells[(case.name, DEEP)].store
    }
    short = [f"{name} ({ratio:.0f}x)" for name, ratio in ratios.items() if ratio < TARGET_RATIO]
    first = (
        f"p95 under {TARGET_MS:.0f} ms: met for every case and page."
        if not slow
        else f"p95 under {TARGET_MS:.0f} ms: NOT met for {', '.join(slow)}."
    )
    second = (
        f"50th page at least {TARGET_RATIO:.0f}x faster than the naive version (p50): met for "
        f"every case (least {min(ratios.values()):.0f}x)."
        if not short
        else f"50th page at least {TARGET_RATIO:.0f}x faster than the naive version (p50): "
        f"NOT met for {', '.join(short)}."
    )
    return f"Targets: {first} {second}"


def explains(url: str, store_cases: list[Case]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of each case's 50th page, with its first word."""
    from shopdb import establish_connection_pool

    parts = []
    with establish_connection_pool(url) as pool, psycopg.connect(url) as conn:
        store = Store(pool)
        for case in store_cases:
            for word in case.words:
                arguments = case.arguments(word)
                try:
                    cursor = cursor_of(store, arguments, DEEP)
                    break
                except TooFewPages:
                    continue
            else:
                continue
            checked = search.plan(**arguments, limit=PAGE, cursor=cursor)
            plan_lines = [
                str(r[0])
                for r in conn.execute(
                    f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {checked.sql}", checked.params
                )
            ]
            shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
            sql = psycopg.ClientCursor(conn).mogrify(checked.sql, checked.params)
            parts.append(
                f"**{case.name}** (`{shown}`, page {DEEP}):\n\n```sql\n{sql}\n```\n\n```\n"
                + "\n".join(plan_lines)
                + "\n```"
            )
    return "\n\n".join(parts)


def environment(url: str, rows: int, load_before: tuple[float, ...]) -> str:
    """The machine, the server and how busy the machine was."""
    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('products'))").fetchone()
    load_after = os.getloadavg()
    return (
        f"- {rows:,} products ({size[0] if size else '?'} with indexes); "
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; "
        f"PostgreSQL {server[0] if server else '?'}; Python {platform.python_version()}\n"
        f"- machine noise: load average {load_before[0]:.2f} / {load_before[1]:.2f} "
        f"(1 / 5 min) before the run, {load_after[0]:.2f} / {load_after[1]:.2f} after; "
        "the machine's 2 cores are shared with other work (other sessions' tests and "
        "benchmarks ran meanwhile), so the tails are the machine's as much as the queries'\n"
        f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def _log(message: str) -> None:
    print(f"   {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--words", type=int, default=10, help="queries per text case")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per word and page")
    parser.add_argument("--naive-repeat", type=int, default=1, help="naive runs per word and page")
    parser.add_argument("--fresh", action="store_true", help="load the catalog again")
    parser.add_argument("--write-docs", action="store_true", help="write docs/performance.md")
    parser.add_argument(
        "--marker",
        default="bench-search",
        help="the docs block to write (<!-- MARKER:start --> ... <!-- MARKER:end -->)",
    )
    parser.add_argument("--note", default="", help="a line about the server, for the docs")
    args = parser.parse_args()

    load_before = os.getloadavg()
    url = database(args.rows, args.seed, args.fresh)
    from shopdb import establish_connection_pool

    with psycopg.connect(url) as conn:
        one, two = pick_words(conn, args.seed, args.words)
        counts = {w: matches(conn, w) for w in one + two}
    all_cases = cases(one, two)
    with establish_connection_pool(url) as pool:
        cells = measure(url, pool, all_cases, args.repeat, args.naive_repeat)
    table = render(all_cases, cells)
    text = "\n\n".join(
        [
            table,
            verdict(all_cases, cells),
            "The text cases word by word (p50 of the Store's calls), fewest matches first:",
            by_word(all_cases, cells, counts),
            environment(url, args.rows, load_before),
        ]
    )
    print(text)
    plans = explains(url, all_cases)
    if args.write_docs:
        _write_docs(text, plans, args)


def _write_docs(text: str, plans: str, args: argparse.Namespace) -> None:
    command = "make bench-search"
    if args.rows != 1_000_000 or args.marker != "bench-search":
        command = f"python -m bench.search --rows {args.rows} --write-docs --marker {args.marker}"
    if os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL"):
        command = f"BENCH_DATABASE_URL=<server> {command}"
    start, end = f"<!-- {args.marker}:start -->", f"<!-- {args.marker}:end -->"
    note = f" {args.note}" if args.note else ""
    block = (
        f"{start}\nMeasured with `{command}`{note}:\n\n{text}\n\n"
        f"<details><summary>EXPLAIN (ANALYZE, BUFFERS) of each query shape's page {DEEP}"
        f"</summary>\n\n{plans}\n\n</details>\n{end}"
    )
    docs = DOCS.read_text()
    if start not in docs:
        raise SystemExit(f"{DOCS} has no {start} marker")
    before, rest = docs.split(start, 1)
    _, after = rest.split(end, 1)
    DOCS.write_text(before + block + after)
    _log(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
