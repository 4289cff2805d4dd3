"""Catalog search (issue 21): results, pages under concurrent writes, cursors, hostile text, plans.

Every test that takes ``store`` runs on ``Store`` and on ``AsyncStore``.
"""

from __future__ import annotations

import base64
import json
import random
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopdb import Store
from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.errors import InvalidInput
from shopdb.limits import (
    SEARCH_CONFIG,
    SEARCH_MATCHES_MAX,
    SEARCH_PAGE_MAX,
    SEARCH_QUERY_MAX,
    SEARCH_WORDS_MAX,
)
from shopdb.migrate import Migrator
from shopdb.schemas import Page, ProductRead
from shopdb.store import search
from shopdb.testing import DatabaseFactory

from .flavours import Sql

# -- a small catalog with ties, mixed case, accents, stop words, NULLs ---------

CATALOG: list[tuple[str, str | None, str, int]] = [
    ("Electric Kettle", "A fast steel kettle for tea.", "24.99", 5),
    ("electric kettle", "Boils water in two minutes.", "24.99", 0),
    ("Steel Kettle", None, "19.50", 3),
    ("Kettles of Fish", "A board game about kettles.", "12.00", 7),
    ("Red Mug", "A mug for tea and coffee.", "6.00", 10),
    ("red mug", "The same mug, lower case.", "6.00", 0),
    ("Mug Tree", "Holds six mugs; steel.", "15.00", 2),
    ("Teapot", "Ceramic teapot; pairs with the kettle.", "30.00", 1),
    ("Zebra Rug", "Striped rug.", "99.99", 4),
    ("apple corer", "Cores apples quickly.", "3.25", 9),
    ("Édredon en plume", "Duvet: warm, light.", "120.00", 2),
    ("Ölkanne", "Oil can in steel.", "8.75", 0),
    ("The And Of", "the and of", "1.00", 1),
    ("Kettle Descaler", "Removes limescale from any kettle or steam iron.", "4.99", 50),
    ("Travel Mug", "Steel travel mug, keeps tea hot.", "14.00", 8),
    ("Coffee Grinder", "Grinds coffee beans; steel burrs.", "45.00", 0),
    ("Tea Towel", None, "6.00", 12),
    ("Cast Iron Kettle", "A heavy kettle for the stove.", "60.00", 3),
    ("Mug", "Plain mug.", "6.00", 6),
    ("Zebra Mug", "Striped mug.", "6.00", 6),
    ("\U0001f375 Tea Set", "Cups and a teapot.", "35.00", 2),
    ("Free Sample", "Costs nothing.", "0.00", 100),
    ("Golden Kettle", "A kettle plated in gold.", "999999999.99", 1),
]
QUERIES: list[str | None] = [
    None,
    "",
    "   ",
    "kettle",
    "Kettles",  # stems to kettl, as kettle does
    "steel kettle",
    '"electric kettle"',
    "kettle -steel",
    "kettle or mug",
    "tea",
    "the",  # a stop word only: matches nothing
    "&|!:*()",
    "édredon",
]
FILTERS: list[dict[str, Any]] = [
    {},
    {"min_price": "6.00"},
    {"max_price": Decimal("24.99")},
    {"min_price": 6, "max_price": "30", "in_stock": True},
    {"in_stock": True},
]
SORTS: list[search.Sort | None] = [None, *search.SORTS]


@pytest.fixture
def catalog(store: Store, sql: Sql) -> list[ProductRead]:
    made = [store.create_product(n, p, c, description=d) for n, d, p, c in CATALOG]
    # Raw SQL may store a price with trailing zeros (NUMERIC keeps the scale given).
    sql(
        "INSERT INTO products (name, description, price, inventory_count) "
        "VALUES ('Spare Kettle Lid', 'For any steel kettle.', 6.000, 2)"
    )
    return made


def reference(sql: Sql, query: str | None, filters: dict[str, Any], sort: str | None) -> list[int]:
    """The ids a search must return, in order: the text matched by plain SQL on the raw
    columns (not the stored column, not the index), the rest in Python."""
    text = " ".join((query or "").split()) or None
    document = (
        f"setweight(to_tsvector('{SEARCH_CONFIG}', name), 'A') || "
        f"setweight(to_tsvector('{SEARCH_CONFIG}', coalesce(description, '')), 'B')"
    )
    tsquery = f"websearch_to_tsquery('{SEARCH_CONFIG}', %(q)s)"
    if text is None:
        rows = sql("SELECT id, name, price, inventory_count, 0::real FROM products")
    else:
        rows = sql(
            f"SELECT id, name, price, inventory_count, ts_rank({document}, {tsquery}) "
            f"FROM products WHERE ({document}) @@ {tsquery}",
            {"q": text},
        )
    low = None if filters.get("min_price") is None else Decimal(str(filters["min_price"]))
    high = None if filters.get("max_price") is None else Decimal(str(filters["max_price"]))
    kept = [
        r
        for r in rows
        if (low is None or r[2] >= low)
        and (high is None or r[2] <= high)
        and (not filters.get("in_stock") or r[3] > 0)
    ]
    order = sort or ("relevance" if text else "newest")
    if order == "relevance" and text is None:
        order = "newest"
    keys = {
        "relevance": lambda r: (-r[4], -r[0]),
        "price_asc": lambda r: (r[2], r[0]),
        "price_desc": lambda r: (-r[2], -r[0]),
        # Collation "C" is byte order; UTF-8's byte order is code point order.
        "name": lambda r: (r[1].encode(), r[0]),
        "newest": lambda r: -r[0],
    }
    return [r[0] for r in sorted(kept, key=keys[order])]


def every_page(
    store: Store, query: str | None, limit: int, **arguments: Any
) -> Iterator[Page[ProductRead]]:
    """Follow ``next`` from the first page to the last."""
    cursor = None
    for _ in range(10_000):
        page = store.search_products(query, limit=limit, cursor=cursor, **arguments)
        yield page
        cursor = page.next
        if cursor is None:
            return
    raise AssertionError("the pages never ended")


def test_results_equal_a_reference_for_every_query_filter_and_sort(
    store: Store, sql: Sql, catalog: list[ProductRead]
) -> None:
    checked = 0
    for query in QUERIES:
        for filters in FILTERS:
            for sort in SORTS:
                wanted = reference(sql, query, filters, sort)
                pages = list(every_page(store, query, 4, sort=sort, **filters))
                got = [p.id for page in pages for p in page.items]
                assert got == wanted, (query, filters, sort)
                # Full pages but the last, which may be empty only when nothing matches.
                assert all(len(page.items) == 4 for page in pages[:-1])
                assert pages[-1].items or not wanted
                checked += len(wanted) > 0
    assert checked > 150  # most combinations match something


def test_the_text_matches_stems_weights_and_quotes(
    store: Store, catalog: list[ProductRead]
) -> None:
    def names(query: str | None, **arguments: Any) -> list[str]:
        return [p.name for p in store.search_products(query, **arguments).items]

    assert "Kettles of Fish" in names("kettle")  # stemming
    assert names('"electric kettle"', sort="name") == ["Electric Kettle", "electric kettle"]
    assert "Steel Kettle" not in names("kettle -steel")
    # A word in the name (weight A) outranks the same word in a description (B).
    ranked = names("descaler limescale")
    assert ranked[0] == "Kettle Descaler"
    assert names("the") == []  # stop words only: nothing
    assert names("   ", sort="newest") == names(None, sort="newest")  # blank: no text filter


def test_a_product_written_by_raw_sql_or_changed_is_found_by_its_new_words(
    store: Store, sql: Sql
) -> None:
    sql(
        "INSERT INTO products (name, description, price, inventory_count) "
        "VALUES ('Samovar', 'Russian tea urn', 80, 1)"
    )
    found = store.search_products("urn").items
    assert [p.name for p in found] == ["Samovar"]
    store.update_product(found[0].id, description="Brass water heater")
    assert store.search_products("urn").items == []
    assert [p.name for p in store.search_products("brass").items] == ["Samovar"]
    sql("UPDATE products SET name = 'Tea Urn' WHERE id = %s", (found[0].id,))
    assert [p.name for p in store.search_products("urn").items] == ["Tea Urn"]


def test_pages_carry_a_next_cursor_only_when_there_is_more(
    store: Store, catalog: list[ProductRead]
) -> None:
    page = store.search_products("zebra", limit=2)
    assert len(page.items) == 2
    assert page.next is None
    assert store.search_products("zebra", limit=1).next is not None
    assert store.search_products("nothingmatchesthis").model_dump() == {"items": [], "next": None}
    assert len(store.search_products(limit=SEARCH_PAGE_MAX).items) == min(
        SEARCH_PAGE_MAX, len(store.search_products(limit=100).items)
    )
    # A page of the catalog serializes as the service sends it.
    assert json.loads(store.search_products("teapot", sort="price_asc").model_dump_json()) == {
        "items": [
            {
                "id": catalog[7].id,
                "name": "Teapot",
                "description": "Ceramic teapot; pairs with the kettle.",
                "price": "30.00",
                "inventory_count": 1,
            },
            {
                "id": catalog[20].id,
                "name": "\U0001f375 Tea Set",
                "description": "Cups and a teapot.",
                "price": "35.00",
                "inventory_count": 2,
            },
        ],
        "next": None,
    }


# -- arguments ----------------------------------------------------------------

REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("query", {"query": "x" * (SEARCH_QUERY_MAX + 1)}),
    ("query", {"query": " ".join(["w"] * (SEARCH_WORDS_MAX + 1))}),
    ("query", {"query": "x" * 10_000}),
    ("query", {"query": "nul\x00byte"}),
    ("query", {"query": "lone \ud800 surrogate"}),
    ("query", {"query": 12}),
    ("min_price", {"min_price": 1.5}),
    ("min_price", {"min_price": "-1"}),
    ("min_price", {"min_price": "1.001"}),
    ("max_price", {"max_price": Decimal("NaN")}),
    ("max_price", {"max_price": "1000000000"}),
    ("min_price", {"min_price": "10", "max_price": "9.99"}),
    ("in_stock", {"in_stock": "yes"}),
    ("in_stock", {"in_stock": 1}),
    ("sort", {"sort": "cheapest"}),
    ("limit", {"limit": 0}),
    ("limit", {"limit": SEARCH_PAGE_MAX + 1}),
    ("limit", {"limit": True}),
    ("cursor", {"cursor": 7}),
    ("cursor", {"cursor": ""}),
]


@pytest.mark.parametrize(
    ("field", "arguments"), REFUSED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(REFUSED)]
)
def test_bad_arguments_are_invalid_input_naming_the_argument(
    store: Store, field: str, arguments: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        store.search_products(**arguments)
    assert refused.value.field == field


def test_the_longest_query_allowed_runs() -> None:
    text = " ".join(["kettle"] * SEARCH_WORDS_MAX)
    assert search.plan(text).params["q"] == text
    assert search.plan("k" * SEARCH_QUERY_MAX).params["q"] == "k" * SEARCH_QUERY_MAX


# -- cursors ------------------------------------------------------------------


def _encode(value: object) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def test_a_forged_tampered_truncated_or_foreign_cursor_is_invalid_input(
    store: Store, catalog: list[ProductRead]
) -> None:
    asked: dict[str, Any] = {"query": "kettle", "sort": "price_asc", "min_price": "1", "limit": 2}
    cursor = store.search_products(**asked).next
    assert cursor is not None
    store.search_products(**asked, cursor=cursor)  # a genuine one works
    store.search_products(**{**asked, "limit": 3}, cursor=cursor)  # the page size may change
    version, sort, mark, key, last = _decode(cursor)
    forged = [
        cursor[:-1],
        cursor[:-2],
        cursor[: len(cursor) // 2],
        cursor + "A",
        cursor + "=",
        cursor.replace(cursor[5], "Z" if cursor[5] != "Z" else "Y"),
        "!" + cursor,
        " " + cursor,
        "x" * 5000,
        "bm90IGpzb24",  # "not json"
        _encode({"sort": sort}),
        _encode([version, sort, mark, key]),
        _encode([version + 1, sort, mark, key, last]),
        _encode([version, "price_desc", mark, key, last]),
        _encode([version, sort, "AAAAAAAAAAA", key, last]),
        _encode([version, sort, mark, 24.99, last]),
        _encode([version, sort, mark, "24.999", last]),
        _encode([version, sort, mark, "-1.00", last]),
        _encode([version, sort, mark, "1e3", last]),
        _encode([version, sort, mark, key, 0]),
        _encode([version, sort, mark, key, 2**31]),
        _encode([version, sort, mark, key, "1"]),
        _encode([version, sort, mark, key, True]),
        _encode([True, sort, mark, key, last]),
        _encode([version, sort, mark, None, last]),
        _encode([version, sort, mark, [key], last]),
        base64.urlsafe_b64encode(b'[1,"price_asc","x",NaN,1]').rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b"[" * 100_000).rstrip(b"=").decode()[:2000],
    ]
    for bad in forged:
        with pytest.raises(InvalidInput) as refused:
            store.search_products(**asked, cursor=bad)
        assert (refused.value.field, refused.value.reason) == ("cursor", "is not a valid cursor")
    # A cursor of another search: other words, filters or sort.
    for other in (
        {"query": "mug"},
        {"query": "kettles"},
        {"min_price": "2"},
        {"min_price": None},
        {"in_stock": True},
        {"sort": "price_desc"},
        {"max_price": "100"},
    ):
        with pytest.raises(InvalidInput):
            store.search_products(**{**asked, **other}, cursor=cursor)


def test_cursor_keys_of_every_sort_round_trip(store: Store, catalog: list[ProductRead]) -> None:
    # Ranks are reals: the cursor carries the exact value, which compares equal on the server.
    for sort in SORTS:
        for query in ("kettle", None):
            page = store.search_products(query, sort=sort, limit=1)
            assert page.next is not None
            key = _decode(page.next)[3]
            if sort in ("relevance", None) and query:
                assert isinstance(key, float)
                assert struct.unpack("f", struct.pack("f", key))[0] == key
            following = store.search_products(query, sort=sort, limit=1, cursor=page.next)
            assert following.items
            assert following.items[0].id != page.items[0].id


def test_a_name_cursor_is_refused_for_text_a_name_cannot_hold(
    store: Store, catalog: list[ProductRead]
) -> None:
    page = store.search_products(sort="name", limit=1)
    assert page.next is not None
    version, sort, mark, _, last = _decode(page.next)
    for key in ("", "x" * 201, "a\x00b", "\ud800"):
        raw = json.dumps([version, sort, mark, key, last], separators=(",", ":"))
        bad = base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidInput):
            store.search_products(sort="name", limit=1, cursor=bad)


# -- hostile text ---------------------------------------------------------------

HOSTILE = [
    "'",
    '"',
    '"unclosed',
    "''''",
    "&",
    "|",
    "!",
    "!!kettle",
    ":*",
    "kettle:*",
    "kettle:A",
    "(",
    ")",
    "((kettle",
    "kettle <-> mug",
    "a & b | !c",
    "-",
    "--kettle",
    "or",
    "OR OR OR",
    "\\",
    "\\'",
    "%s",
    "%(q)s",
    "$1",
    "'; DROP TABLE products; --",
    "\u202e\u0301\ufeff",
    "\U0001f375\U0001f375",
    "日本語 のテキスト",
    "kettle\tmug\nsteel",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_user_quotes_and_operators_never_raise_a_database_error(
    store: Store, catalog: list[ProductRead], text: str
) -> None:
    for sort in ("relevance", "price_asc"):
        pages = list(every_page(store, text, 3, sort=sort))
        ids = [p.id for page in pages for p in page.items]
        assert len(ids) == len(set(ids))


@given(text=st.text(max_size=SEARCH_QUERY_MAX + 20))
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_text_is_a_page_or_invalid_input(store: Store, text: str) -> None:
    refused: InvalidInput | None = None
    try:
        page = store.search_products(text, limit=5)
    except InvalidInput as exc:
        refused = exc
    else:
        assert len(page.items) <= 5
    assert refused is None or refused.field == "query"


# -- stable pages under a concurrent writer -------------------------------------


def _sort_key(sort: str, product: ProductRead) -> Any:
    return {
        "price_asc": (product.price, product.id),
        "price_desc": (-product.price, -product.id),
        "name": (product.name.encode(), product.id),
        "newest": -product.id,
    }[sort]


@pytest.mark.parametrize("seed", range(4))
def test_pages_stay_exact_while_products_are_written_between_them(
    committed_store: Store, seed: int
) -> None:
    """Inserts, deletes, price and name changes, stock changes between pages, on a seeded
    schedule: every product that existed throughout, kept its sort key and still matches
    comes exactly once; only a product that moved may come twice; each page continues
    after the last."""
    store = committed_store
    rng = random.Random(seed)  # noqa: S311 (a reproducible schedule)
    words = ("kettle", "mug", "teapot", "lamp")

    def new_product() -> ProductRead:
        name = f"{rng.choice(['Blue', 'red', 'Steel', 'Zinc', 'Oak'])} {rng.choice(words)}"
        price = f"{rng.randint(1, 40)}.{rng.choice(['00', '50', '99'])}"
        return store.create_product(name, price, rng.randint(0, 3), description="for tests")

    products = {p.id: p for p in (new_product() for _ in range(120))}
    for sort in ("price_asc", "price_desc", "name", "newest", "relevance"):
        query = (
            rng.choice([None, "kettle", "kettle or mug"]) if sort != "relevance" else "mug or lamp"
        )
        in_stock = rng.random() < 0.4
        asked: dict[str, Any] = {"sort": sort, "in_stock": in_stock, "min_price": "2"}
        before = {p.id: p for p in every_page_items(store, query, **asked)}
        moved: set[int] = set()
        seen: list[ProductRead] = []
        cursor = None
        while True:
            page = store.search_products(query, limit=5, cursor=cursor, **asked)
            if seen and page.items and sort != "relevance":
                assert _sort_key(sort, page.items[0]) > _sort_key(sort, seen[-1])
            seen += page.items
            cursor = page.next
            if cursor is None:
                break
            for _ in range(rng.randint(0, 4)):
                action = rng.random()
                ids = sorted(products)
                victim = products[rng.choice(ids)]
                if action < 0.3:
                    made = new_product()
                    products[made.id] = made
                elif action < 0.45:
                    store.delete_product(victim.id)
                    del products[victim.id]
                    moved.add(victim.id)
                elif action < 0.65:
                    changed = store.update_product(victim.id, price=f"{rng.randint(1, 40)}.25")
                    products[victim.id] = changed
                    moved.add(victim.id)
                elif action < 0.8:
                    changed = store.update_product(victim.id, name=f"Zinc {rng.choice(words)}")
                    products[victim.id] = changed
                    moved.add(victim.id)
                else:
                    changed = store.update_product(victim.id, inventory_count=rng.randint(0, 2))
                    products[victim.id] = changed
                    moved.add(victim.id)
        ids = [p.id for p in seen]
        # Only a product whose sort key changed may come twice (before and after it
        # moved ahead of the cursor): a stateless cursor cannot remember what it showed.
        twice = {i for i in ids if ids.count(i) > 1}
        assert twice <= moved, f"{sorted(twice - moved)} came twice ({sort}, {query!r})"
        stable = set(before) - moved
        missing = stable - set(ids)
        assert not missing, f"lost {sorted(missing)} ({sort}, {query!r})"
        assert stable, "the schedule should leave products unmoved"


def every_page_items(store: Store, query: str | None, **asked: Any) -> list[ProductRead]:
    return [p for page in every_page(store, query, 50, **asked) for p in page.items]


# -- plans: every query shape uses its index --------------------------------------

PLAN_ROWS = 30_000


@pytest.fixture(scope="module")
def big_catalog(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A database of its own with 30,000 products, analyzed."""
    target = shopdb_server.create("shopdb_search_plans", migrated=True)
    url = shopdb_server.url(target.database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO products (name, description, price, inventory_count)
            SELECT (ARRAY['Blue','Red','Steel','Oak','Zinc','Glass'])[g %% 6 + 1] || ' ' ||
                   (ARRAY['kettle','mug','lamp','chair','rug','vase','clock','bowl',
                          'towel','pan'])[g %% 10 + 1] || ' ' || g,
                   'A fine ' || md5(g::text) || ' for the home' ||
                   CASE WHEN g %% 500 = 0 THEN ' with a samovar' ELSE '' END,
                   ((g * 7919) %% 100000) / 100.0,
                   CASE WHEN g %% 7 = 0 THEN 0 ELSE g %% 50 + 1 END
            FROM generate_series(1, %s) AS g
            """,
            (PLAN_ROWS,),
        )
        conn.execute("VACUUM (ANALYZE) products")
    yield url
    shopdb_server.drop(target.database)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


#: (arguments, indexes the plan may use: at least one of them, and no Seq Scan)
SHAPES: list[tuple[dict[str, Any], set[str]]] = [
    ({"query": "samovar"}, {"ix_products_search"}),
    ({"query": "samovar kettle"}, {"ix_products_search"}),
    ({"query": "samovar", "sort": "price_asc"}, {"ix_products_search"}),
    ({"query": "samovar", "sort": "name", "in_stock": True}, {"ix_products_search"}),
    ({"query": "samovar", "min_price": "10", "max_price": "500"}, {"ix_products_search"}),
    ({"sort": "price_asc"}, {"ix_products_price_id"}),
    ({"sort": "price_desc"}, {"ix_products_price_id"}),
    ({"sort": "price_asc", "min_price": "10", "max_price": "20"}, {"ix_products_price_id"}),
    ({"sort": "price_desc", "in_stock": True}, {"ix_products_price_id"}),
    ({"sort": "name"}, {"ix_products_name_id"}),
    ({"sort": "name", "in_stock": True}, {"ix_products_name_id"}),
    ({"sort": "newest"}, {"pk_products"}),
    ({"in_stock": True}, {"pk_products"}),
    ({"min_price": "10", "max_price": "20"}, {"pk_products", "ix_products_price_id"}),
]


@pytest.mark.parametrize(("arguments", "indexes"), SHAPES, ids=[str(a) for a, _ in SHAPES])
def test_every_query_shape_uses_its_index(
    big_catalog: str, arguments: dict[str, Any], indexes: set[str]
) -> None:
    from shopdb import establish_connection_pool

    with establish_connection_pool(big_catalog) as pool, psycopg.connect(big_catalog) as conn:
        store = Store(pool)
        first = store.search_products(**arguments, limit=10)
        assert first.next is not None, "the shape should have a second page"
        for cursor in (None, first.next):
            checked = search.plan(**arguments, limit=10, cursor=cursor)
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {checked.sql}", checked.params).fetchone()
            assert row is not None
            nodes = list(_nodes(row[0][0]["Plan"]))
            used = {n["Index Name"] for n in nodes if "Index Name" in n}
            kinds = [n["Node Type"] for n in nodes]
            assert "Seq Scan" not in kinds, (arguments, kinds)
            assert used & indexes, (arguments, used, kinds)


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans of ``products`` read: returned, and removed by a filter."""
    return sum(
        n.get("Actual Rows", 0) * n.get("Actual Loops", 1)
        + n.get("Rows Removed by Filter", 0)
        + n.get("Rows Removed by Index Recheck", 0)
        for n in _nodes(plan)
        if n.get("Relation Name") == "products"
    )


#: Texts whose cost a careless plan would not bound: "home" is in every product's
#: description; kettles and towels are never the same product, so a walk of the price
#: index in search of "kettle towel" would read the whole catalog and find nothing.
BROAD: list[dict[str, Any]] = [
    {"query": "home"},
    {"query": "home", "sort": "price_asc"},
    {"query": "home", "sort": "name", "in_stock": True},
    {"query": "home", "min_price": "10", "max_price": "12"},
    {"query": "home", "sort": "newest"},
    {"query": "kettle towel", "sort": "price_asc"},
    {"query": "kettle towel", "sort": "name"},
    {"query": "kettle or towel", "sort": "price_desc"},
]


@pytest.mark.parametrize("arguments", BROAD, ids=[str(a) for a in BROAD])
def test_a_text_search_reads_at_most_its_bound_of_products(
    big_catalog: str, arguments: dict[str, Any]
) -> None:
    assert PLAN_ROWS > SEARCH_MATCHES_MAX
    with psycopg.connect(big_catalog) as conn:
        for cursor in (None, _a_cursor(big_catalog, arguments)):
            checked = search.plan(**arguments, limit=20, cursor=cursor)
            row = conn.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {checked.sql}", checked.params
            ).fetchone()
            assert row is not None
            assert _rows_read(row[0][0]["Plan"]) <= SEARCH_MATCHES_MAX, arguments


def _a_cursor(url: str, arguments: dict[str, Any]) -> str | None:
    from shopdb import establish_connection_pool

    with establish_connection_pool(url) as pool:
        return Store(pool).search_products(**arguments, limit=20).next


def test_a_text_matching_more_than_the_bound_pages_through_its_newest_matches_in_order(
    big_catalog: str,
) -> None:
    """Every product matches "home": the pages hold its SEARCH_MATCHES_MAX newest matches
    (by id, as plain SQL finds them), each once, in price order, the same on every walk."""
    from shopdb import establish_connection_pool

    with psycopg.connect(big_catalog) as conn:
        newest = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM products WHERE description LIKE '%%for the home%%'"
                " ORDER BY id DESC LIMIT %s",
                (SEARCH_MATCHES_MAX,),
            )
        }
    with establish_connection_pool(big_catalog) as pool:
        store = Store(pool)
        walks = [
            [p for page in every_page(store, "home", 100, sort="price_asc") for p in page]
            for _ in range(2)
        ]
    seen = walks[0]
    assert {p.id for p in seen} == newest
    assert len(seen) == SEARCH_MATCHES_MAX
    keys = [(p.price, p.id) for p in seen]
    assert keys == sorted(keys)
    assert walks[1] == walks[0]


# -- the migration --------------------------------------------------------------


def test_0011_backfills_existing_products_in_batches(empty_db: str, settings: Settings) -> None:
    migrator = Migrator(Target(parse_database_url(empty_db)), settings)
    migrator.run(upto="0010")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (name, description, price, inventory_count) "
            "SELECT 'Kettle ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'steel no. ' || g END, "
            "1, 1 FROM generate_series(1, 12001) AS g"
        )
        conn.execute("DELETE FROM products WHERE id BETWEEN 4000 AND 6000")  # a gap in the ids
    migrator.run(upto="0011")
    with psycopg.connect(empty_db) as conn:
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE search IS NULL), "
            "count(*) FILTER (WHERE search IS DISTINCT FROM "
            "setweight(to_tsvector('english', name), 'A') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'B')) FROM products"
        ).fetchone()
    assert counts == (10000, 0, 0)
    migrator.revert(1)
    with psycopg.connect(empty_db) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'shopdb_product%search'"
        ).fetchone()
    assert left == (0,)


@pytest.mark.parametrize(
    ("arguments", "indexes"),
    [(a, i) for a, i in SHAPES if "pk_products" not in i],
    ids=[str(a) for a, i in SHAPES if "pk_products" not in i],
)
def test_without_its_index_the_shape_would_scan_the_table(
    big_catalog: str, arguments: dict[str, Any], indexes: set[str]
) -> None:
    """The table is large enough to matter: without 0011's indexes (as it was before), the
    plan of each shape reads the whole table."""
    checked = search.plan(**arguments, limit=10)
    with psycopg.connect(big_catalog) as conn:
        for name in ("ix_products_search", "ix_products_price_id", "ix_products_name_id"):
            conn.execute(f"DROP INDEX {name}")  # rolled back below
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {checked.sql}", checked.params).fetchone()
        conn.rollback()
    assert row is not None
    kinds = [n["Node Type"] for n in _nodes(row[0][0]["Plan"])]
    assert "Seq Scan" in kinds, (arguments, kinds)
