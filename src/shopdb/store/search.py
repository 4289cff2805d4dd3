"""Catalog search: words, a price range, in stock only, five sorts, keyset pages.

``Store.search_products`` is one statement on indexes migration 0011 built:

* **Words** match ``products.search`` (the name, weight A, and description,
  weight B, in the :data:`~shopdb.limits.SEARCH_CONFIG` configuration, so
  words are stemmed and stop words dropped) through its GIN index. The text
  goes through ``websearch_to_tsquery``, which reads whatever a person types
  (``"steel kettle" -red or blue``) and never raises a syntax error. Blank
  text is no text filter. Text of stop words or punctuation only ("the",
  "&|!") matches nothing: the server finds no word in it, and showing the
  whole catalog for it, sorted by a relevance that does not exist, would be
  no answer either.
* **Sorts**, each a total order with the id as the last key, each served by
  an index: ``price_asc``/``price_desc`` (price, id) and ``name`` (name in
  byte order, :data:`~shopdb.limits.NAME_COLLATION`, then id) by their
  btree indexes, ``newest`` (id descending: ids grow with time) by the
  primary key, ``relevance`` (``ts_rank``, then id descending) from the text
  index's matches. Without ``sort`` the order is relevance for a text query
  and newest otherwise; relevance without words is newest.
* **Pages** are keyset pages, never OFFSET: the cursor (``Page.next``)
  holds the last row's sort key and id, and the next page is the rows after
  it in the order. Following ``next`` returns every matching product once,
  in order, while products are written between pages: one that did not
  change its sort key (nor whether it matches) is neither lost nor
  repeated; one that did shows up where it now belongs: again, if it moved
  ahead of the cursor after it was shown, or not at all, if it moved
  behind. (Never twice would need the cursor to remember every product it
  showed, or a snapshot held open between requests.)
  Page N costs what page 1 costs.
* **Bounded**: with words, the statement takes the newest
  :data:`~shopdb.limits.SEARCH_MATCHES_MAX` matches (a materialized ``hits``:
  by id, so the same set on every call; a LIMIT without an order would take
  whatever a synchronized sequential scan meets first), filters, ranks or
  sorts those, and returns the page after the cursor among them. A text
  matching more is ordered within those, not all of them: the price of a
  known cost per search (ranking every match of a word in a quarter of the
  catalog took 0.3 s; two common words that never meet, sorted by price,
  made the planner walk the whole price index in search of them). Without words, the sort's index
  is walked from the cursor and the filters checked on the way.
* **The relevance key** is ``ts_rank``'s ``real`` value itself, and the
  cursor compares it as ``real`` again: JSON carries a float exactly, so
  the comparison on the server sees the very value it sorted by.

The cursor is validated, not signed (the data layer has no secret): base64
of compact JSON ``[version, sort, fingerprint, key, id]``, where the
fingerprint is a hash of the text, the filters and the sort. Anything that
does not decode to exactly that shape, with values of the right types and
bounds, for this call's sort and filters, is :class:`InvalidInput` (field
``cursor``). Editing the key of a well-formed cursor only moves where the
page starts within the same results: the cursor cannot change the query.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from shopdb.errors import InvalidInput
from shopdb.limits import (
    AMOUNT_PATTERN,
    INT_MAX,
    NAME_COLLATION,
    PRICE_SCALE,
    PRODUCT_NAME_MAX,
    SEARCH_CONFIG,
    SEARCH_MATCHES_MAX,
    SEARCH_PAGE_DEFAULT,
    SEARCH_PAGE_MAX,
    SEARCH_QUERY_MAX,
    SEARCH_WORDS_MAX,
    price_problem,
    storable,
)
from shopdb.schemas import Page, Price, ProductRead, _Input
from shopdb.store.arguments import cursor_payload, cursor_text, integer, refused_cursor
from shopdb.store.core import ALL, Query, Steps, operation, validated
from shopdb.store.products import COLUMNS, as_price, product_page

Sort: TypeAlias = Literal["relevance", "price_asc", "price_desc", "name", "newest"]
#: The sorts, as ``search_products(sort=...)`` takes them.
SORTS: tuple[Sort, ...] = ("relevance", "price_asc", "price_desc", "name", "newest")
#: The cursor format's version (the first member of its JSON).
CURSOR_VERSION = 1
_AMOUNT = re.compile(AMOUNT_PATTERN)
_CENT = Decimal(1).scaleb(-PRICE_SCALE)

_TSQUERY = f"websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, %(q)s)"
_RANK = f"ts_rank(search, {_TSQUERY})"
_NAME = f'name COLLATE "{NAME_COLLATION}"'
#: Per sort: ORDER BY, and the keyset condition for "after the cursor".
_ORDER: dict[Sort, tuple[str, str]] = {
    "relevance": ("rank DESC, id DESC", "(rank, id) < (%(key)s::real, %(id)s)"),
    "price_asc": ("price, id", "(price, id) > (%(key)s, %(id)s)"),
    "price_desc": ("price DESC, id DESC", "(price, id) < (%(key)s, %(id)s)"),
    "name": (f"{_NAME}, id", f"({_NAME}, id) > (%(key)s, %(id)s)"),
    "newest": ("id DESC", "id < %(id)s"),
}


class _PriceRange(_Input):
    # Price's own rules; left out means no bound (None is not validated).
    min_price: Price = None  # type: ignore[assignment]
    max_price: Price = None  # type: ignore[assignment]


@functools.cache  # a few hundred shapes at most, each written once
def statement(*, text: bool, sort: Sort, low: bool, high: bool, in_stock: bool, after: bool) -> str:
    """The SQL of one query shape: only fixed fragments, every value a parameter.

    Without text, the sort's index is walked from the cursor, the filters checked
    on the way. With text, the hits are the newest
    :data:`~shopdb.limits.SEARCH_MATCHES_MAX` matches (by id: the same set on
    every call), and the page is the first of those that pass the filters, in
    the order, after the cursor: a text query the planner judges right costs
    at most that many matches read, whatever its words, filters and sort.
    """
    order, keyset = _ORDER[sort]
    filters = ["price >= %(low)s"] if low else []
    filters += ["price <= %(high)s"] if high else []
    filters += ["inventory_count > 0"] if in_stock else []
    after_cursor = [keyset] if after else []
    if not text:
        where = _where(filters + after_cursor)
        return f"SELECT {COLUMNS} FROM products{where} ORDER BY {order} LIMIT %(limit)s"
    # The filters apply to the hits, not inside them: inside, the planner may AND
    # the text index's few matches with a price range's quarter of a million
    # index entries (30 ms for 3,000 matches), where checking the matches' own
    # prices costs a heap visit each, which the hits pay anyway.
    rank = f", {_RANK} AS rank" if sort == "relevance" else ""
    return (
        f"WITH hits AS MATERIALIZED (SELECT {COLUMNS}{rank} FROM products "
        f"WHERE search @@ {_TSQUERY} ORDER BY id DESC LIMIT {SEARCH_MATCHES_MAX}) "
        f"SELECT * FROM hits{_where(filters + after_cursor)} ORDER BY {order} LIMIT %(limit)s"
    )


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _refused() -> InvalidInput:
    return refused_cursor()


def _text(query: object) -> str | None:
    if query is None:
        return None
    if not isinstance(query, str):
        raise InvalidInput("query", f"must be text, not {type(query).__name__}")
    if len(query) > SEARCH_QUERY_MAX:
        raise InvalidInput("query", f"must be at most {SEARCH_QUERY_MAX} characters")
    if not storable(query):
        raise InvalidInput("query", "must be valid Unicode text without the NUL character")
    words = query.split()
    if len(words) > SEARCH_WORDS_MAX:
        raise InvalidInput("query", f"must be at most {SEARCH_WORDS_MAX} words")
    return " ".join(words) or None


def fingerprint(
    text: str | None, low: Decimal | None, high: Decimal | None, in_stock: bool, sort: Sort
) -> str:
    """A short hash of what a search asks for: a cursor is valid only for the same."""
    asked = [
        text,
        None if low is None else f"{low:f}",
        None if high is None else f"{high:f}",
        in_stock,
        sort,
    ]
    digest = hashlib.blake2b(json.dumps(asked).encode(), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def encode_cursor(sort: Sort, mark: str, key: Any, last_id: int) -> str:
    """The cursor after a row whose sort key is ``key`` and id ``last_id``."""
    if isinstance(key, Decimal):
        # Two decimals, as the database's check guarantees (a price written by raw
        # SQL may carry trailing zeros: 24.990 is 24.99).
        key = f"{key.quantize(_CENT):f}"
    return cursor_text([CURSOR_VERSION, sort, mark, key, last_id])


def decode_cursor(cursor: object, sort: Sort, mark: str) -> tuple[Any, int]:
    """``(key, id)`` from a cursor made by :func:`encode_cursor` for this sort and fingerprint."""
    decoded = cursor_payload(cursor)
    if len(decoded) != 5:
        raise _refused()
    version, its_sort, its_mark, key, last_id = decoded
    if (
        version != CURSOR_VERSION
        or type(version) is not int
        or its_sort != sort
        or its_mark != mark
    ):
        raise _refused()
    if type(last_id) is not int or not 1 <= last_id <= INT_MAX:
        raise _refused()
    return _key(sort, key), last_id


def _as_real(value: float) -> float:
    """``value`` rounded to the nearest single-precision float (PostgreSQL's real)."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def _key(sort: Sort, key: object) -> Any:
    if sort == "newest":
        if key is not None:
            raise _refused()
        return None
    if sort == "relevance":
        # A ts_rank value: a finite, non-negative float that a real holds exactly.
        if type(key) is not float or not math.isfinite(key) or key < 0:
            raise _refused()
        if _as_real(key) != key:
            raise _refused()
        return key
    if not isinstance(key, str):
        raise _refused()
    if sort == "name":
        if not 1 <= len(key) <= PRODUCT_NAME_MAX or not storable(key):
            raise _refused()
        return key
    if not _AMOUNT.fullmatch(key) or price_problem(Decimal(key)) is not None:
        raise _refused()
    return Decimal(key)


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked search: its statement and parameters, its sort, and its fingerprint."""

    sql: str
    params: dict[str, Any]
    sort: Sort
    mark: str
    limit: int
    #: Whether the statement may be prepared: only a shape without words or a
    #: price range. A generic plan cannot know how many rows the words or the
    #: range match (it assumes a fixed share), and the plan that suits one word
    #: or range can be a hundred times slower for another; those are planned
    #: with their values each time (a fraction of a ms). A sort alone, in
    #: stock or not, from a cursor or not, has one good plan: its index.
    prepare: bool


def plan(
    query: str | None = None,
    *,
    min_price: Decimal | int | str | None = None,
    max_price: Decimal | int | str | None = None,
    in_stock: bool = False,
    sort: Sort | None = None,
    limit: int = SEARCH_PAGE_DEFAULT,
    cursor: str | None = None,
) -> Plan:
    """Check a search's arguments and write its statement (no I/O): :class:`InvalidInput`
    names the first refused argument."""
    text = _text(query)
    given = {"min_price": min_price, "max_price": max_price}
    prices = validated(_PriceRange, **{k: as_price(v) for k, v in given.items() if v is not None})
    low, high = prices.min_price, prices.max_price
    if low is not None and high is not None and low > high:
        raise InvalidInput("min_price", "must not be above max_price")
    if type(in_stock) is not bool:
        raise InvalidInput("in_stock", "must be true or false")
    if sort is not None and sort not in SORTS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORTS)}")
    integer(limit, "limit", 1, SEARCH_PAGE_MAX)
    order: Sort = sort or "relevance"
    if order == "relevance" and text is None:
        order = "newest"
    mark = fingerprint(text, low, high, in_stock, order)
    # One row more than the page: whether there is a next page, without a count.
    params: dict[str, Any] = {"q": text, "low": low, "high": high, "limit": limit + 1}
    if cursor is not None:
        params["key"], params["id"] = decode_cursor(cursor, order, mark)
    sql = statement(
        text=text is not None,
        sort=order,
        low=low is not None,
        high=high is not None,
        in_stock=in_stock,
        after=cursor is not None,
    )
    prepare = text is None and low is None and high is None
    return Plan(sql, params, order, mark, limit, prepare)


@operation(read_only=True, replica="stale")
def search(
    query: str | None = None,
    *,
    min_price: Decimal | int | str | None = None,
    max_price: Decimal | int | str | None = None,
    in_stock: bool = False,
    sort: Sort | None = None,
    limit: int = SEARCH_PAGE_DEFAULT,
    cursor: str | None = None,
) -> Steps[Page[ProductRead]]:
    """A page of the products that match, in the order asked; see the module docs."""
    checked = plan(
        query,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    rows = yield Query(checked.sql, checked.params, ALL, prepare=checked.prepare)
    return page_of(checked, rows)


def page_of(checked: Plan, rows: list[tuple[Any, ...]]) -> Page[ProductRead]:
    """The page a search's rows make, with the cursor of the next one."""
    limit = checked.limit
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        key = _sort_key(checked.sort, last)
        following = encode_cursor(checked.sort, checked.mark, key, last[0])
    return product_page(rows[:limit], following)


def _sort_key(sort: Sort, row: tuple[Any, ...]) -> Any:
    if sort == "relevance":
        # The real's exact value (psycopg reads its shortest decimal text as a
        # double, which is only the nearest double to it).
        return _as_real(row[5])
    if sort in ("price_asc", "price_desc"):
        return row[3]
    if sort == "name":
        return row[1]
    return None
