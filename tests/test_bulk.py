"""`shopdb import products`: every row checked, problems by line and field, all or nothing."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shopdb import bulk
from shopdb.bulk import csv_source, import_products, jsonl_source
from shopdb.bulk.common import Problems
from shopdb.errors import ImportFailed, RowProblem
from shopdb.limits import PRICE_PATTERN
from shopdb.testing import DatabaseFactory

from .helpers import run_cli

HEADER = "name,description,price,inventory_count\n"
GOOD = "Tea,Green tea,4.50,10\nMug,,12.00,3\n"
Row = tuple[str, str | None, Decimal, int]


@pytest.fixture(scope="module")
def shop_db(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database for this module; each test starts with empty tables."""
    target = shopdb_server.create("shopdb_bulk", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture
def url(shop_db: str) -> str:
    with psycopg.connect(shop_db, autocommit=True) as conn:
        conn.execute("TRUNCATE users, products, carts, cart_items RESTART IDENTITY CASCADE")
    return shop_db


@pytest.fixture
def conn(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url) as connection:
        yield connection


def _rows(url: str) -> list[Row]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT name, description, price, inventory_count FROM products ORDER BY id"
        ).fetchall()


def _file(tmp_path: Path, content: str | bytes, name: str = "products.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
    else:
        path.write_bytes(content)
    return path


def _failure(conn: psycopg.Connection[Any], path: Path) -> ImportFailed:
    with pytest.raises(ImportFailed) as caught:
        import_products(conn, path)
    return caught.value


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    result = run_cli("--database-url", url, *args)
    return result.returncode, result.stdout, result.stderr


# --- valid files ------------------------------------------------------------------


def test_a_csv_file_goes_in_through_the_cli_exactly_as_written(url: str, tmp_path: Path) -> None:
    name_200 = "n" * 200
    content = (
        "\ufeffinventory_count,Price,name,description\n"  # BOM, any order, any case
        '10,4.50,Tea,""\n'  # quoted empty description: NULL too
        '3,12.00,"Mug, large","Holds ""a lot""\nof tea"\n'  # comma, quotes, newline
        f"2147483647,0,{name_200},\n"  # the bounds
        "0,100,Café 茶,Ünïcode\n"
        "+7,0.5,Lamp,\t\n"  # no trailing line end (a count as PostgreSQL reads one)
    )
    path = _file(tmp_path, content.removesuffix("\n"))
    code, out, err = _cli(url, "import", "products", str(path))
    assert code == 0, err
    assert out.startswith("imported 5 products in ")
    assert _rows(url) == [
        ("Tea", None, Decimal("4.50"), 10),
        ("Mug, large", 'Holds "a lot"\nof tea', Decimal("12.00"), 3),
        (name_200, None, Decimal("0"), 2147483647),
        ("Café 茶", "Ünïcode", Decimal("100"), 0),
        ("Lamp", "\t", Decimal("0.5"), 7),
    ]


def test_crlf_files_and_files_without_a_description_column(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path
) -> None:
    # (A name may not hold a line break, CR LF or other: shopdb.names.)
    crlf = 'name,price,inventory_count\r\nTea,4.50,10\r\n"Two, words",1,1\r\n'
    assert import_products(conn, _file(tmp_path, crlf)) == 2
    assert _rows(url) == [
        ("Tea", None, Decimal("4.50"), 10),
        ("Two, words", None, Decimal("1"), 1),
    ]


def test_a_line_holding_only_the_end_marker_inside_quotes_is_data(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path
) -> None:
    # Unquoted, "\." ends COPY's data early; quoted, it is a value like any other.
    path = _file(tmp_path, HEADER + 'Dot,"before\n\\.\nafter",1,1\n"\\.",,2,2\n\\.,,3,3\n')
    assert import_products(conn, path) == 3
    assert _rows(url) == [
        ("Dot", "before\n\\.\nafter", Decimal("1"), 1),
        ("\\.", None, Decimal("2"), 2),
        ("\\.", None, Decimal("3"), 3),
    ]


def test_a_header_alone_imports_nothing(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    assert import_products(conn, _file(tmp_path, HEADER)) == 0


def test_a_json_lines_file_goes_in_with_exact_prices(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path
) -> None:
    lines = [
        {"name": "Tea", "price": "19.99", "inventory_count": 10},
        {"name": "Mug", "description": None, "price": "0.10", "inventory_count": 0},
        {"name": "Pot", "description": "", "price": "100", "inventory_count": 2147483647},
        {
            "description": 'Ünïcode, "quoted"\n\t',
            "name": "Café",
            "price": "3",
            "inventory_count": 1.0,
        },
    ]
    text = "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n   \n"  # blank lines
    text += "\r\n".join(json.dumps(line) for line in lines[2:])
    seen: list[int] = []
    path = _file(tmp_path, text, "products.ndjson")
    assert import_products(conn, path, progress=seen.append) == 4
    assert sum(seen) == path.stat().st_size
    assert _rows(url) == [
        ("Tea", None, Decimal("19.99"), 10),
        ("Mug", None, Decimal("0.10"), 0),
        ("Pot", "", Decimal("100"), 2147483647),
        ("Café", 'Ünïcode, "quoted"\n\t', Decimal("3"), 1),
    ]


def test_format_comes_from_the_extension_or_the_option(url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, HEADER + GOOD, "export.txt")
    code, _, err = _cli(url, "import", "products", str(path))
    assert code == 2
    assert err.strip().startswith("Error: format: cannot tell the format of 'export.txt'")
    code, out, err = _cli(url, "import", "products", str(path), "--format", "csv")
    assert code == 0, err
    assert out.startswith("imported 2 products in ")
    assert len(_rows(url)) == 2


def test_progress_counts_every_byte_of_a_csv_file(
    conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_source, "CHUNK_SIZE", 64)
    path = _file(tmp_path, HEADER + GOOD * 20)
    seen: list[int] = []
    assert import_products(conn, path, progress=seen.append) == 40
    assert len(seen) > 10
    assert sum(seen) == path.stat().st_size


def test_an_import_inside_the_callers_transaction_is_the_callers_to_commit(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path
) -> None:
    path = _file(tmp_path, HEADER + GOOD)
    with conn.transaction():
        assert import_products(conn, path) == 2
        raise psycopg.Rollback
    assert _rows(url) == []


# --- bad rows -----------------------------------------------------------------------

BAD_CSV_FIELDS = [
    ("Kettle,,abc,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,NaN,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,-Infinity,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,-1,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,-0.01,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,1_000,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,1e131072,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,1e10,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,1e-16384,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,, 9.99,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,1e3,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,007,1", "price", "must be a string of digits with at most 2 decimals"),
    ("Kettle,,0.001,1", "price", "must be a string of digits with at most 2 decimals"),
    (",,1,1", "name", "must not be empty"),
    ('"",,1,1', "name", "must not be empty"),
    ("Kettle," + "d" * 10_001 + ",1,1", "description", "must be at most 10000 characters"),
    ("   ,,1,1", "name", "must not be blank"),
    ("x" * 201 + ",,1,1", "name", "must be at most 200 characters"),
    ("Ket\x00tle,,1,1", "name", "must not contain the NUL character"),
    ("Kettle,A\x00B,1,1", "description", "must not contain the NUL character"),
    (b"Ket\xfftle,,1,1", "name", "must be valid Unicode text"),
    ("Kettle,,1,-1", "inventory_count", "must be at least 0"),
    ("Kettle,,1,1.5", "inventory_count", "must be a whole number"),
    ("Kettle,,1,2147483648", "inventory_count", "must be at most 2147483647"),
    ("Kettle,,1,99999999999999999999999", "inventory_count", "must be at most 2147483647"),
    ("Kettle,,1,ten", "inventory_count", "must be a whole number"),
    ("Kettle,,1,", "inventory_count", "must not be empty"),
]


@pytest.mark.parametrize("case", BAD_CSV_FIELDS, ids=lambda case: repr(case[0])[:40])
def test_a_bad_csv_value_is_reported_by_line_and_field_and_nothing_is_imported(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path, case: tuple[str | bytes, str, str]
) -> None:
    line, field, reason = case
    raw = line if isinstance(line, bytes) else line.encode()
    path = _file(tmp_path, (HEADER + GOOD).encode() + raw + b"\nPot,,1,1\n")
    failed = _failure(conn, path)
    assert failed.count == 1
    assert failed.problems == (RowProblem(4, field, failed.problems[0].reason),)
    assert failed.problems[0].reason.startswith(reason)
    assert (failed.code, failed.http_status) == ("import_failed", 422)
    assert failed.field == field
    assert _rows(url) == []


BAD_CSV_RECORDS = [
    ("Kettle,,1", "has 3 fields; the header has 4"),
    ("Kettle,,1,1,extra", "has 5 fields; the header has 4"),
    ("", "is empty"),
    ("\\.", "has 1 field; the header has 4"),  # PostgreSQL's end-of-data marker
    ('Ket"tle,,1,1', "has a double quote inside a field that does not start with one"),
    ('"Ket"tle,,1,1', "is not valid CSV"),
    ("Kettle,,1,1\r", "ends with CR LF, but the header ends with LF"),
    ("Ket\rtle,,1,1", "is not valid CSV"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_CSV_RECORDS)
def test_a_malformed_csv_record_is_reported_by_line(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path, line: str, reason: str
) -> None:
    failed = _failure(conn, _file(tmp_path, HEADER + GOOD + line + "\nPot,,1,1\n"))
    assert [(p.line, p.field) for p in failed.problems] == [(4, None)]
    assert failed.problems[0].reason.startswith(reason)
    assert _rows(url) == []


@pytest.mark.parametrize(
    ("header", "reasons"),
    [
        ("name,price,inventory_count,sku", ["column 4 is not a known column (expected name, "]),
        ("name,description", ["missing columns: price, inventory_count"]),
        ("name,price,name,inventory_count", ["column 'name' appears twice"]),
        ("", ["there is no header"]),
    ],
)
def test_a_bad_header_is_reported_on_line_1(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path, header: str, reasons: list[str]
) -> None:
    failed = _failure(conn, _file(tmp_path, header + "\n" if header else ""))
    assert [p.line for p in failed.problems] == [1] * len(reasons)
    for problem, reason in zip(failed.problems, reasons, strict=True):
        assert problem.reason.startswith(reason)
    assert _rows(url) == []


def test_rows_are_still_checked_after_a_bad_header(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path = _file(tmp_path, "name,price,inventory_count,sku\nTea,abc,1,x\nMug,1,1,y\n")
    failed = _failure(conn, path)
    assert [(p.line, p.field) for p in failed.problems] == [(1, None), (2, "price")]


NOT_TEXT = 'must be a string such as "19.99" (a number could lose cents)'
BAD_JSON = [
    ('{"name": "x\\u0000y", "price": "1", "inventory_count": 1}', "name", "must not contain"),
    (
        '{"name": "x", "description": "\\u0000", "price": "1", "inventory_count": 1}',
        "description",
        "must not contain the NUL",
    ),
    (
        '{"name": "\\ud800", "price": "1", "inventory_count": 1}',
        "name",
        "must be valid Unicode text",
    ),
    ('{"name": "", "price": "1", "inventory_count": 1}', "name", "must not be empty"),
    ('{"name": 5, "price": "1", "inventory_count": 1}', "name", "must be a string"),
    (
        '{"name": "x", "description": 5, "price": "1", "inventory_count": 1}',
        "description",
        "must be a string or null",
    ),
    (
        '{"name": "x", "price": "abc", "inventory_count": 1}',
        "price",
        "must be a string of digits with at most 2 decimals",
    ),
    ('{"name": "x", "price": NaN, "inventory_count": 1}', "price", NOT_TEXT),
    (
        '{"name": "x", "price": "Infinity", "inventory_count": 1}',
        "price",
        "must be a string of digits with at most 2 decimals",
    ),
    ('{"name": "x", "price": -1, "inventory_count": 1}', "price", NOT_TEXT),
    ('{"name": "x", "price": true, "inventory_count": 1}', "price", NOT_TEXT),
    ('{"name": "x", "price": null, "inventory_count": 1}', "price", NOT_TEXT),
    # A JSON number is no price, as in the API (it could lose cents): a string is.
    ('{"name": "x", "price": 9.99, "inventory_count": 1}', "price", NOT_TEXT),
    ('{"name": "x", "price": 4, "inventory_count": 1}', "price", NOT_TEXT),
    (
        '{"name": "x", "price": " 9.99", "inventory_count": 1}',
        "price",
        "must be a string of digits with at most 2 decimals",
    ),
    (
        '{"name": "x", "price": "9.999", "inventory_count": 1}',
        "price",
        "must be a string of digits with at most 2 decimals",
    ),
    ('{"name": "x", "price": "1", "inventory_count": -1}', "inventory_count", "must be at least 0"),
    (
        '{"name": "x", "price": "1", "inventory_count": 1.5}',
        "inventory_count",
        "must be an integer",
    ),
    (
        '{"name": "x", "price": "1", "inventory_count": 2147483648}',
        "inventory_count",
        "must be at most 2147483647",
    ),
    (
        '{"name": "x", "price": "1", "inventory_count": "3"}',
        "inventory_count",
        "must be an integer",
    ),
    (
        '{"name": "x", "price": "1", "inventory_count": 1, "sku": "a"}',
        "sku",
        "is not a known field",
    ),
    ('{"name": "x", "price": "1"}', "inventory_count", "is missing"),
    ('{"name": "x", "price": "1", "inventory_count": 1', None, "is not valid JSON"),
    (
        '{"name": "x", "name": "y", "price": "1", "inventory_count": 1}',
        None,
        "is not valid JSON (a key appears twice)",
    ),
    ("[1, 2]", None, "must be a JSON object"),
    ('"Tea"', None, "must be a JSON object"),
    (b'{"name": "\xff", "price": "1", "inventory_count": 1}', None, "is not valid UTF-8"),
]


@pytest.mark.parametrize("case", BAD_JSON, ids=lambda case: repr(case[0])[:50])
def test_a_bad_json_line_is_reported_by_line_and_field_and_nothing_is_imported(
    conn: psycopg.Connection[Any],
    url: str,
    tmp_path: Path,
    case: tuple[str | bytes, str | None, str],
) -> None:
    line, field, reason = case
    good = b'{"name": "Tea", "price": "4.50", "inventory_count": 10}\n'
    raw = line if isinstance(line, bytes) else line.encode()
    failed = _failure(conn, _file(tmp_path, good + raw + b"\n" + good, "products.jsonl"))
    assert [(p.line, p.field) for p in failed.problems] == [(2, field)]
    assert failed.problems[0].reason.startswith(reason)
    assert _rows(url) == []


# --- all or nothing, and the report -----------------------------------------------


def test_a_bad_last_row_after_thousands_of_good_ones_leaves_the_table_empty(
    url: str, tmp_path: Path
) -> None:
    good = "".join(f"Product {i},Line {i},{i}.99,{i}\n" for i in range(5000))
    path = _file(tmp_path, HEADER + good + "Last,,1,-1\n")
    code, out, err = _cli(url, "import", "products", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "Error: line 5002: inventory_count: must be at least 0",
        "Error: 1 problem; nothing was imported",
    ]
    assert _rows(url) == []


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_rows_already_sent_are_rolled_back_when_a_later_chunk_is_bad(
    conn: psycopg.Connection[Any],
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    # Small chunks: many are sent to COPY before the bad one is read, and
    # quoted line ends fall across chunk boundaries.
    monkeypatch.setattr(csv_source, "CHUNK_SIZE", 4096)
    monkeypatch.setattr(jsonl_source, "CHUNK_SIZE", 4096)
    rows = [(f"Product {i}", f'Line {i}, "one"\nand two', f"{i}.50", i) for i in range(5000)]
    good = _as_file(rows, suffix)
    path = _file(tmp_path, good, "good" + suffix)
    assert import_products(conn, path) == 5000
    assert len(_rows(url)) == 5000
    conn.execute("TRUNCATE products CASCADE")
    conn.commit()
    bad = _as_file([*rows, ("Last", None, "1", 2**31)], suffix)
    failed = _failure(conn, _file(tmp_path, bad, "bad" + suffix))
    last = 5000 * 2 + 2 if suffix == ".csv" else 5001  # CSV: a header, two lines a row
    assert [(p.line, p.field) for p in failed.problems] == [(last, "inventory_count")]
    assert _rows(url) == []


def _as_file(rows: Sequence[tuple[str, str | None, str, int]], suffix: str) -> str:
    if suffix == ".jsonl":
        keys = ("name", "description", "price", "inventory_count")
        return "".join(json.dumps(dict(zip(keys, row, strict=True))) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "description", "price", "inventory_count"])
    writer.writerows(rows)
    return out.getvalue()


def test_every_problem_is_counted_and_the_first_20_are_shown(url: str, tmp_path: Path) -> None:
    bad = "".join(f"Bad {i},,{i},-{i + 1}\n" for i in range(30))
    path = _file(tmp_path, HEADER + GOOD + bad)
    code, out, err = _cli(url, "import", "products", str(path))
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 21
    assert lines[0] == "Error: line 4: inventory_count: must be at least 0"
    assert lines[19] == "Error: line 23: inventory_count: must be at least 0"
    assert lines[20] == "Error: 30 problems (10 more not shown); nothing was imported"
    assert _rows(url) == []


def test_import_into_a_database_without_tables_says_to_run_setup(
    empty_db: str, tmp_path: Path
) -> None:
    code, _, err = _cli(empty_db, "import", "products", str(_file(tmp_path, HEADER + GOOD)))
    assert code == 2
    assert err.strip() == "Error: table products does not exist: run `shopdb setup` first"


def test_the_connection_stays_usable_after_a_refused_file(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path
) -> None:
    _failure(conn, _file(tmp_path, HEADER + "Tea,,abc,1\n"))
    assert import_products(conn, _file(tmp_path, HEADER + GOOD)) == 2
    assert len(_rows(url)) == 2


# --- Python and PostgreSQL read CSV alike -------------------------------------------

_NASTY = st.text(alphabet='ab ,"\n\r\\.é', max_size=6)
_PLAIN = st.text(alphabet="ab .é", min_size=1, max_size=6)
_PRICES = st.one_of(
    st.sampled_from(["1", "0", "4.50", "-0", " 7 ", "1e3", ".5", "5.", "NaN", "-1", "1_0"]),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.text(alphabet="0123456789.-+e ", max_size=5),
)
_COUNTS = st.one_of(
    st.sampled_from(["0", "+3", " 7", "-0", "1.0", "", "2147483647", "2147483648", "-1"]),
    st.integers(0, 10**6).map(str),
    st.text(alphabet="0123456789.-+ ", max_size=5),
)
_COLUMNS = (st.one_of(_PLAIN, _NASTY), st.one_of(_PLAIN, _NASTY), _PRICES, _COUNTS)


@st.composite
def _raw_csv(draw: st.DrawFn) -> str:
    """Records of (mostly) four fields, each quoted properly or not at all, any line end."""
    records = []
    for _ in range(draw(st.integers(1, 4))):
        width = draw(st.sampled_from([4] * 12 + [3, 5, 1]))
        fields = []
        for column in range(width):
            value = draw(_COLUMNS[column % 4])
            if draw(st.booleans()):
                value = '"' + value.replace('"', '""') + '"'
            fields.append(value)
        records.append(",".join(fields) + draw(st.sampled_from(["\n"] * 10 + ["\r\n", ""])))
    return "".join(records)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_raw_csv())
def test_what_the_checks_accept_postgresql_stores_as_python_read_it(
    shop_db: str, body: str
) -> None:
    with tempfile.TemporaryDirectory() as folder, psycopg.connect(shop_db) as conn:
        path = _file(Path(folder), HEADER + body)
        with conn.transaction():
            conn.execute("TRUNCATE products CASCADE")  # rolled back with the rest
            try:
                count = import_products(conn, path)
            except ImportFailed:
                event("refused")
                return
            event("imported")
            stored = conn.execute(
                "SELECT name, description, price, inventory_count FROM products ORDER BY id"
            ).fetchall()
            raise psycopg.Rollback
    expected = [
        (name, description or None, Decimal(price.strip()), int(number))
        for name, description, price, number in csv.reader(io.StringIO(body, newline=""))
    ]
    assert count == len(expected)
    assert stored == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(*_COLUMNS), min_size=1, max_size=4),
    eol=st.sampled_from(["\n", "\r\n"]),
)
def test_a_file_is_refused_exactly_when_postgresql_would_refuse_a_row(
    shop_db: str, rows: list[tuple[str, str, str, str]], eol: str
) -> None:
    # RFC 4180 (csv.writer would leave a carriage return unquoted with "\n" line ends).
    body = "".join(",".join(map(_quoted, row)) + eol for row in rows)
    with tempfile.TemporaryDirectory() as folder, psycopg.connect(shop_db) as conn:
        path = _file(Path(folder), HEADER.replace("\n", eol) + body)
        with conn.transaction():
            try:
                import_products(conn, path)
                imported = True
            except ImportFailed:
                imported = False
            raise psycopg.Rollback
        with conn.transaction():
            accepted = all(_postgresql_accepts(conn, row) for row in rows)
            raise psycopg.Rollback
    event("accepted" if accepted else "refused")
    # A price is spelled as the API takes one (limits.PRICE_PATTERN: no sign,
    # exponent, blank or leading zero), which PostgreSQL alone would not ask.
    spelled = all(re.fullmatch(PRICE_PATTERN, price) for _, _, price, _ in rows)
    assert imported == (accepted and spelled)


def _quoted(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _postgresql_accepts(conn: psycopg.Connection[Any], row: tuple[str, str, str, str]) -> bool:
    name, description, price, number = row
    try:
        with conn.transaction():
            # The casts from text are the input functions COPY uses.
            conn.execute(
                "INSERT INTO products (name, description, price, inventory_count) "
                "VALUES (%s, %s, %s::text::numeric, %s::text::integer)",
                (name, description or None, price, number),
            )
    except psycopg.Error:
        return False
    return True


@settings(max_examples=1000, deadline=None)
@given(body=_raw_csv())
def test_the_quick_check_accepts_only_what_the_row_by_row_check_accepts(body: str) -> None:
    layout = csv_source._Layout(
        tuple(bulk.COLUMNS), {c: i for i, c in enumerate(bulk.COLUMNS)}, "\n"
    )
    problems = Problems()
    checker = csv_source._CsvChecker(layout, problems, first_line=2)
    data = body.encode()
    quick = checker._quick(data)
    event("quick" if quick is not None else "row by row")
    if quick is not None:
        assert checker._row_by_row(data, 2) == quick
        assert problems.first == []
