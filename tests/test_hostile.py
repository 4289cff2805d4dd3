"""Hostile input: Hypothesis throws garbage at every Store method and at import.

Every call must return a result or raise a :mod:`shopdb.errors` exception,
never anything else, and the database's invariants must hold after every
call: no negative stock, no zero-quantity line, no duplicate line, no two
users equal up to case.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shopdb import Store
from shopdb.bulk import import_products
from shopdb.errors import ShopError
from shopdb.store.search import SORTS

from .flavours import Sql

BIG_TEXT = st.sampled_from(["x" * 1_000_000, "é" * 500_000, "a\x00" * 300_000])
SQL_META = st.sampled_from(
    [
        "'; DROP TABLE users; --",
        "%s",
        "%(name)s",
        "$1",
        "\\",
        "' OR '1'='1",
        '"',
        "E'\\x00'",
        "🛒",
        "a@b.c",
        "A@B.C",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(codec=None, categories=None), max_size=20),  # lone surrogates too
    st.just("a\ud800b"),
    st.just("nul\x00byte"),
    SQL_META,
    BIG_TEXT,
)
INTS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.sampled_from([0, -1, 1, 2, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 10**30]),
)
DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            Decimal("NaN"),
            Decimal("sNaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("-0"),
            Decimal("1" + "0" * 59),
            Decimal("0." + "0" * 59 + "1"),
            Decimal("9" * 60 + "." + "9" * 60),
            Decimal("1E+200000"),
        ]
    ),
)
WRONG = st.sampled_from([None, 1.5, float("nan"), b"bytes", [], {}, (), True, False, object()])
ANYTHING = st.one_of(TEXTS, INTS, DECIMALS, WRONG)


@pytest.fixture
def known(store: Store) -> dict[str, list[int]]:
    """Real ids, so that some hostile calls reach real rows."""
    user = store.create_user("target", "target@example.com", "correct horse")
    products = [store.create_product(f"T{i}", "2.50", 3) for i in range(3)]
    cart = store.create_cart(user.id)
    store.add_to_cart(cart.id, products[0].id, 2)
    return {"user": [user.id], "product": [p.id for p in products], "cart": [cart.id]}


def _ids(kind: str, known: dict[str, list[int]]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(known[kind]), INTS, WRONG, TEXTS)


def _calls(
    known: dict[str, list[int]],
) -> st.SearchStrategy[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    user, product, cart = _ids("user", known), _ids("product", known), _ids("cart", known)
    price = st.one_of(DECIMALS, INTS, TEXTS, WRONG)
    count = st.one_of(INTS, WRONG, TEXTS)
    optional_text = st.one_of(st.none(), TEXTS, WRONG)
    changes = st.dictionaries(
        st.sampled_from(["name", "description", "price", "inventory_count", "id", "sku", "x"]),
        ANYTHING,
        max_size=3,
    )

    def call(name: str, *args: st.SearchStrategy[Any], **kwargs: st.SearchStrategy[Any]) -> Any:
        return st.tuples(st.just(name), st.tuples(*args), st.fixed_dictionaries(kwargs))

    return st.one_of(
        call("create_user", TEXTS | WRONG, TEXTS | WRONG, TEXTS | WRONG),
        call("authenticate", TEXTS | WRONG, TEXTS | WRONG),
        call("get_user", user),
        call("create_product", TEXTS | WRONG, price, count, description=optional_text),
        call("get_product", product),
        call("list_products", st.one_of(st.none(), INTS, WRONG), limit=count),
        call(
            "search_products",
            optional_text,
            min_price=st.one_of(st.none(), price),
            max_price=st.one_of(st.none(), price),
            in_stock=st.one_of(st.booleans(), WRONG, TEXTS),
            sort=st.one_of(st.none(), st.sampled_from(SORTS), TEXTS, WRONG),
            limit=count,
            cursor=st.one_of(st.none(), TEXTS, WRONG),
        ),
        st.tuples(st.just("update_product"), st.tuples(product), changes),
        call("delete_product", product),
        call("adjust_inventory", product, count),
        call("create_cart", user),
        call("add_to_cart", cart, product, count),
        call("set_quantity", cart, product, count),
        call("remove_from_cart", cart, product),
        call("get_cart", cart),
        call("checkout", cart),
    )


INVARIANTS = {
    "negative stock": "SELECT count(*) FROM products WHERE inventory_count < 0",
    "zero-quantity line": "SELECT count(*) FROM cart_items WHERE quantity <= 0",
    "duplicate line": "SELECT count(*) FROM (SELECT 1 FROM cart_items "
    "GROUP BY cart_id, product_id HAVING count(*) > 1) d",
    "users equal up to case": "SELECT count(*) FROM (SELECT 1 FROM users GROUP BY lower(username) "
    "HAVING count(*) > 1 UNION ALL SELECT 1 FROM users GROUP BY lower(email) "
    "HAVING count(*) > 1) d",
    "invalid price": "SELECT count(*) FROM products WHERE NOT (price >= 0 AND price < 'Infinity')",
}


def _broken(sql: Sql) -> list[str]:
    return [name for name, query in INVARIANTS.items() if sql(query)[0][0]]


@given(data=st.data())
@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_store_method_survives_hostile_arguments(
    store: Store, sql: Sql, known: dict[str, list[int]], data: st.DataObject
) -> None:
    name, args, kwargs = data.draw(_calls(known))
    try:
        getattr(store, name)(*args, **kwargs)
        event(f"{name}: returned")
    except ShopError as exc:
        event(f"{name}: {type(exc).__name__}")
    assert _broken(sql) == []


ROW_FIELDS = st.fixed_dictionaries(
    {"name": ANYTHING, "price": ANYTHING, "inventory_count": ANYTHING},
    optional={"description": ANYTHING, "extra": ANYTHING},
)


def _as_csv_cell(value: Any) -> str:
    rendered = str(value)
    return '"' + rendered.replace('"', '""') + '"'


@given(rows=st.lists(ROW_FIELDS, min_size=1, max_size=5), as_csv=st.booleans())
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_import_survives_hostile_files_and_is_all_or_nothing(
    db_connection: Connection, tmp_path: Path, rows: list[dict[str, Any]], as_csv: bool
) -> None:
    conn = db_connection.connection.driver_connection
    assert conn is not None
    db_connection.exec_driver_sql("SELECT 1")  # inside the test's transaction
    path = tmp_path / ("hostile.csv" if as_csv else "hostile.jsonl")
    if as_csv:
        columns = ["name", "price", "inventory_count", "description"]
        lines = [",".join(columns)]
        lines += [",".join(_as_csv_cell(row.get(c, "")) for c in columns) for row in rows]
        content = "\n".join(lines) + "\n"
    else:
        content = "".join(
            json.dumps(
                {k: v if isinstance(v, str | int | None) else str(v) for k, v in row.items()}
            )
            + "\n"
            for row in rows
        )
    try:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    except (UnicodeEncodeError, ValueError):
        return
    before = db_connection.execute(text("SELECT count(*) FROM products")).scalar_one()
    try:
        imported = import_products(conn, path)
        event("import: imported")
    except ShopError as exc:
        event(f"import: {type(exc).__name__}")
        imported = 0
    after = db_connection.execute(text("SELECT count(*) FROM products")).scalar_one()
    assert after - before == imported
    assert imported in (0, len(rows))
    assert _broken(lambda q: [tuple(r) for r in db_connection.execute(text(q))]) == []
