"""One table of values, one verdict each, given by every layer that takes the value.

Issue 19: a rule on stored values lives once (:mod:`shopdb.limits`) and the
models, the Store, the bulk importer and the database's CHECKs all apply it.
:data:`TABLE` says, for each value of each field, whether it is accepted; each
layer gets the same rows and must give the same verdict:

* ``model``: the pydantic input models of :mod:`shopdb.schemas`, from Python
  values and from JSON text;
* ``store``: the Store (both flavours), which refuses with ``InvalidInput``;
* ``csv`` and ``jsonl``: ``shopdb.bulk.import_products`` on a one-row file;
* ``db``: raw SQL as the owner, past every Python check: a refused value must
  meet a CHECK constraint (``"check"``) or the column's type (``"type"``: an
  INTEGER's range, text that cannot hold NUL or a lone surrogate).

A layer that cannot see a value as the others do says so in the row
(``blind``), with the reason: the database sees a number, not how it was
spelled; a CSV cell is text, so ``5`` and ``"5"`` are one cell.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from shopdb import Store, schemas
from shopdb.bulk import import_products
from shopdb.errors import ImportFailed, InvalidInput
from shopdb.limits import (
    DESCRIPTION_MAX,
    EMAIL_MAX,
    INT_MAX,
    ORDER_STATUSES,
    PRICE_LIMIT,
    PRODUCT_NAME_MAX,
    USER_ROLES,
    USERNAME_MAX,
)
from shopdb.testing import DatabaseFactory

Layer = Literal["model", "store", "csv", "jsonl", "db"]
LAYERS: tuple[Layer, ...] = ("model", "store", "csv", "jsonl", "db")
PRODUCT_FIELDS = ("name", "description", "price", "inventory_count")

# Why a layer cannot see a value (the reasons the table gives, written once).
NOT_A_PRODUCT = "the bulk importer imports products only"
NO_STATUS_INPUT = "the Store takes no status: pay, ship and cancel name the move"
DB_SEES_A_NUMBER = "the database gets the number, not how it was spelled"
CSV_IS_TEXT = "a CSV cell is text: this value and its digits are one cell"
DB_GETS_NFKC = "Python stores the value's NFKC form; raw SQL must write that form itself"

OK, REFUSED = True, False


@dataclasses.dataclass(frozen=True)
class Row:
    """``value`` for ``field``: accepted (``OK``) or ``REFUSED`` by every layer not ``blind``."""

    field: str
    value: object
    verdict: bool
    what: str
    #: How the database refuses it: a CHECK constraint or the column's type.
    db: Literal["check", "type"] = "check"
    #: Layers that cannot see this value as the others do, and why.
    blind: Mapping[Layer, str] = dataclasses.field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.field}-{self.what}"


def _blind(*layers: Layer, why: str) -> dict[Layer, str]:
    return dict.fromkeys(layers, why)


_USERS_ONLY = _blind("csv", "jsonl", why=NOT_A_PRODUCT)
_STATUS_ONLY = {**_blind("csv", "jsonl", why=NOT_A_PRODUCT), "store": NO_STATUS_INPUT}
_SPELLING = _blind("db", why=DB_SEES_A_NUMBER)
_EMAIL_TAIL = "@example.com"

TABLE: tuple[Row, ...] = (
    # --- text, through a product name --------------------------------------------
    Row("name", "Tea", OK, "plain"),
    Row("name", "", REFUSED, "empty"),
    Row("name", "   ", REFUSED, "only spaces"),
    Row("name", "\u200b\u2800", REFUSED, "only invisible"),
    Row("name", "Te\x00a", REFUSED, "NUL", db="type"),
    Row("name", "Te\ud800a", REFUSED, "lone surrogate", db="type"),
    Row("name", "n" * PRODUCT_NAME_MAX, OK, "exactly max length"),
    Row("name", "n" * (PRODUCT_NAME_MAX + 1), REFUSED, "max length + 1"),
    Row("name", " Tea ", OK, "leading and trailing space kept"),
    Row("name", "\ufb01ne tea", OK, "not NFKC (product names are not normalized)"),
    Row("name", "Tea\nPot", REFUSED, "line break"),
    Row("name", "Tea\u202eaeT", REFUSED, "bidi override"),
    Row("name", "Café 茶", OK, "non-ASCII"),
    # --- descriptions -------------------------------------------------------------
    Row("description", None, OK, "none"),
    Row("description", "   ", OK, "blank is fine"),
    Row("description", "Green\ttea\nfrom Shizuoka", OK, "tab and newline"),
    Row("description", "d" * DESCRIPTION_MAX, OK, "exactly max length"),
    Row("description", "d" * (DESCRIPTION_MAX + 1), REFUSED, "max length + 1"),
    Row("description", "a\x01b", REFUSED, "control character"),
    Row("description", "a\x00b", REFUSED, "NUL", db="type"),
    Row("description", "a\udc80b", REFUSED, "lone surrogate", db="type"),
    # --- prices -------------------------------------------------------------------
    Row("price", "9.99", OK, "string"),
    Row("price", "0", OK, "zero"),
    Row("price", "999999999.99", OK, "largest"),
    Row("price", "9.999", REFUSED, "three decimals"),
    Row("price", "-1", REFUSED, "negative"),
    Row("price", str(PRICE_LIMIT), REFUSED, "at the limit"),
    Row("price", "NaN", REFUSED, "NaN"),
    Row(
        "price",
        9.99,
        REFUSED,
        "JSON number",
        blind={"csv": CSV_IS_TEXT, "db": DB_SEES_A_NUMBER},
    ),
    Row("price", "1e3", REFUSED, "exponent", blind=_SPELLING),
    Row("price", " 9.99", REFUSED, "leading space", blind=_SPELLING),
    Row("price", "09.99", REFUSED, "leading zero", blind=_SPELLING),
    # --- inventory counts -----------------------------------------------------------
    Row("inventory_count", 0, OK, "zero"),
    Row("inventory_count", -1, REFUSED, "negative"),
    Row("inventory_count", INT_MAX, OK, "INT_MAX"),
    Row("inventory_count", INT_MAX + 1, REFUSED, "INT_MAX + 1", db="type"),
    Row(
        "inventory_count",
        "5",
        REFUSED,
        "string",
        blind={"csv": CSV_IS_TEXT, "db": "the database parses the text '5' as the integer 5"},
    ),
    Row("inventory_count", True, REFUSED, "boolean", db="type"),
    # --- cart quantities ------------------------------------------------------------
    Row("quantity", 1, OK, "one", blind=_USERS_ONLY),
    Row("quantity", 0, REFUSED, "zero", blind=_USERS_ONLY),
    Row("quantity", -1, REFUSED, "negative", blind=_USERS_ONLY),
    Row("quantity", INT_MAX, OK, "INT_MAX", blind=_USERS_ONLY),
    Row("quantity", INT_MAX + 1, REFUSED, "INT_MAX + 1", db="type", blind=_USERS_ONLY),
    Row(
        "quantity",
        "5",
        REFUSED,
        "string",
        blind={**_USERS_ONLY, "db": "the database parses the text '5' as the integer 5"},
    ),
    Row("quantity", True, REFUSED, "boolean", db="type", blind=_USERS_ONLY),
    # --- emails -------------------------------------------------------------------
    Row("email", "dora@example.com", OK, "plain", blind=_USERS_ONLY),
    Row("email", "", REFUSED, "empty", blind=_USERS_ONLY),
    Row("email", "dora.example.com", REFUSED, "no @", blind=_USERS_ONLY),
    Row("email", "dora@example", REFUSED, "no dot in the domain", blind=_USERS_ONLY),
    Row("email", "do ra@example.com", REFUSED, "space", blind=_USERS_ONLY),
    Row("email", "do\u200bra@example.com", REFUSED, "invisible", blind=_USERS_ONLY),
    Row("email", "do\x00ra@example.com", REFUSED, "NUL", db="type", blind=_USERS_ONLY),
    Row(
        "email",
        "e" * (EMAIL_MAX - len(_EMAIL_TAIL)) + _EMAIL_TAIL,
        OK,
        "exactly max length",
        blind=_USERS_ONLY,
    ),
    Row(
        "email",
        "e" * (EMAIL_MAX + 1 - len(_EMAIL_TAIL)) + _EMAIL_TAIL,
        REFUSED,
        "max length + 1",
        blind=_USERS_ONLY,
    ),
    # --- usernames ----------------------------------------------------------------
    Row("username", "dora", OK, "plain", blind=_USERS_ONLY),
    Row("username", "", REFUSED, "empty", blind=_USERS_ONLY),
    Row("username", "u" * USERNAME_MAX, OK, "exactly max length", blind=_USERS_ONLY),
    Row("username", "u" * (USERNAME_MAX + 1), REFUSED, "max length + 1", blind=_USERS_ONLY),
    Row("username", "do ra", REFUSED, "space", blind=_USERS_ONLY),
    Row("username", " dora", REFUSED, "leading space", blind=_USERS_ONLY),
    Row("username", "do@ra", REFUSED, "@", blind=_USERS_ONLY),
    Row("username", "do\x00ra", REFUSED, "NUL", db="type", blind=_USERS_ONLY),
    Row(
        "username",
        "\ufb01dora",
        OK,
        "not NFKC (stored as 'fidora')",
        blind={**_USERS_ONLY, "db": DB_GETS_NFKC},
    ),
    # --- order statuses and user roles ------------------------------------------------
    *(Row("status", status, OK, status, blind=_STATUS_ONLY) for status in ORDER_STATUSES),
    Row("status", "PLACED", REFUSED, "upper case", blind=_STATUS_ONLY),
    Row("status", "refunded", REFUSED, "unknown", blind=_STATUS_ONLY),
    Row("status", "", REFUSED, "empty", blind=_STATUS_ONLY),
    *(Row("role", role, OK, role, blind=_USERS_ONLY) for role in USER_ROLES),
    Row("role", "admin", REFUSED, "unknown", blind=_USERS_ONLY),
    Row("role", "Staff", REFUSED, "upper case", blind=_USERS_ONLY),
)


def _rows(layer: Layer) -> list[Any]:
    return [pytest.param(row, id=row.id) for row in TABLE if layer not in row.blind]


def test_the_table_covers_every_rule_and_every_layer_sees_most_of_it() -> None:
    fields = {row.field for row in TABLE}
    assert fields == {*PRODUCT_FIELDS, "quantity", "email", "username", "status", "role"}
    for row in TABLE:
        assert set(row.blind) <= set(LAYERS), row.id
        assert all(row.blind.values()), f"{row.id}: say why a layer cannot see it"
    for the_field in fields:
        verdicts = {row.verdict for row in TABLE if row.field == the_field}
        assert verdicts == {OK, REFUSED}, f"{the_field}: both verdicts, or the rule is untested"
    assert len({row.id for row in TABLE}) == len(TABLE)


# --- (a) the pydantic models ----------------------------------------------------------

_PRODUCT: dict[str, object] = {
    "name": "Tea",
    "description": None,
    "price": "4.50",
    "inventory_count": 1,
}
_USER: dict[str, object] = {
    "username": "someone",
    "email": "someone@example.com",
    "password": "correct horse",
}
_LINE: dict[str, object] = {"cart_id": 1, "product_id": 1, "quantity": 1}
_MODELS: dict[str, tuple[type[BaseModel], Mapping[str, object]]] = {
    **dict.fromkeys(PRODUCT_FIELDS, (schemas.NewProduct, _PRODUCT)),
    "quantity": (schemas.NewCartItem, _LINE),
    "email": (schemas.NewUser, _USER),
    "username": (schemas.NewUser, _USER),
}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "status": TypeAdapter(schemas.OrderStatus),
    "role": TypeAdapter(schemas.UserRole),
}


def _model_verdict(row: Row, validate: Callable[[], object]) -> bool:
    try:
        validate()
    except ValidationError as exc:
        refused: ValidationError | None = exc
    else:
        refused = None
    if refused is None:
        return OK
    # Refused for this field (or, for JSON text, for the whole of it).
    assert {error["loc"][:1] for error in refused.errors()} <= {(row.field,), ()}, refused
    return REFUSED


@pytest.mark.parametrize("row", _rows("model"))
def test_the_models_give_the_tables_verdict(row: Row) -> None:
    if row.field in _ADAPTERS:
        adapter = _ADAPTERS[row.field]
        assert _model_verdict(row, lambda: adapter.validate_python(row.value)) is row.verdict
        text = json.dumps(row.value)
        assert _model_verdict(row, lambda: adapter.validate_json(text)) is row.verdict
        return
    model, base = _MODELS[row.field]
    data = {**base, row.field: row.value}
    assert _model_verdict(row, lambda: model.model_validate(data)) is row.verdict
    # The same value as JSON text: what an API receives.
    text = json.dumps(data)
    assert _model_verdict(row, lambda: model.model_validate_json(text)) is row.verdict


# --- (b) the Store --------------------------------------------------------------------


def _store_call(store: Store, row: Row) -> object:
    value: Any = row.value
    if row.field in PRODUCT_FIELDS:
        args: dict[str, Any] = {**_PRODUCT, row.field: value}
        return store.create_product(**args)
    if row.field == "quantity":
        product = store.create_product("Tea", "4.50", INT_MAX)
        cart = store.create_cart(store.create_user("qa", "qa@example.com", "correct horse").id)
        return store.add_to_cart(cart.id, product.id, value)
    if row.field in ("email", "username"):
        args = {**_USER, row.field: value}
        return store.create_user(**args)
    assert row.field == "role"
    user = store.create_user("roles", "roles@example.com", "correct horse")
    return store.set_role(user.id, value)


def _model_reason(row: Row) -> str | None:
    """Why the input model refuses ``row.value``, in the words users see; None if it does not."""
    model, base = _MODELS[row.field]
    try:
        schemas.parse(model, {**base, row.field: row.value})
    except InvalidInput as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("row", _rows("store"))
def test_the_store_gives_the_tables_verdict(store: Store, row: Row) -> None:
    try:
        _store_call(store, row)
    except InvalidInput as exc:
        refused: InvalidInput | None = exc
    else:
        refused = None
    assert (refused is None) is row.verdict, refused
    if refused is not None:
        assert refused.field == row.field, refused
        if row.field in _MODELS:
            # The same rule, checked in Python before the database (whose CHECK
            # would refuse too, in its own words), says the same thing.
            assert refused.reason == _model_reason(row)


# --- (c) the bulk importer, and (d) the database ------------------------------------


@pytest.fixture(scope="module")
def owner_url(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database of this module's, reached as its owner (no app role)."""
    target = shopdb_server.create("shopdb_rules", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture
def owner(owner_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the owner, in a transaction rolled back after the test."""
    with psycopg.connect(owner_url) as conn:
        yield conn
        conn.rollback()


def _import_verdict(conn: psycopg.Connection[Any], path: Path, row: Row) -> bool:
    try:
        with conn.transaction():
            assert import_products(conn, path) == 1
            raise psycopg.Rollback
    except ImportFailed as exc:
        refused: ImportFailed | None = exc
    else:
        refused = None
    if refused is None:
        return OK
    assert [problem.field for problem in refused.problems] == [row.field], refused.problems
    return REFUSED


@pytest.mark.parametrize("row", _rows("csv"))
def test_a_csv_import_gives_the_tables_verdict(
    owner: psycopg.Connection[Any], tmp_path: Path, row: Row
) -> None:
    record = {**_PRODUCT, row.field: row.value}
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(PRODUCT_FIELDS)
    writer.writerow(["" if record[f] is None else str(record[f]) for f in PRODUCT_FIELDS])
    path = tmp_path / "products.csv"
    # A lone surrogate becomes the bytes a broken file would hold (not UTF-8).
    path.write_bytes(text.getvalue().encode("utf-8", "surrogatepass"))
    assert _import_verdict(owner, path, row) is row.verdict


@pytest.mark.parametrize("row", _rows("jsonl"))
def test_a_json_lines_import_gives_the_tables_verdict(
    owner: psycopg.Connection[Any], tmp_path: Path, row: Row
) -> None:
    path = tmp_path / "products.jsonl"
    path.write_text(json.dumps({**_PRODUCT, row.field: row.value}) + "\n", encoding="ascii")
    assert _import_verdict(owner, path, row) is row.verdict


def _insert(conn: psycopg.Connection[Any], row: Row) -> None:
    """``row.value`` in its column, with raw SQL: no Python check on the way."""
    value = row.value
    if row.field in PRODUCT_FIELDS:
        record = {**_PRODUCT, row.field: value}
        conn.execute(
            "INSERT INTO products (name, description, price, inventory_count) "
            "VALUES (%(name)s, %(description)s, %(price)s, %(inventory_count)s)",
            record,
        )
        return
    user_id = conn.execute(
        "INSERT INTO users (username, username_key, email, password_hash) "
        "VALUES (%(username)s, 'rules-key', %(email)s, 'x') RETURNING id",
        {**_USER, row.field: value} if row.field in ("username", "email") else _USER,
    ).fetchone()[0]  # type: ignore[index]
    if row.field == "role":
        conn.execute("UPDATE users SET role = %s WHERE id = %s", (value, user_id))
        return
    cart_id = conn.execute(
        "INSERT INTO carts (user_id) VALUES (%s) RETURNING id", (user_id,)
    ).fetchone()[0]  # type: ignore[index]
    if row.field == "quantity":
        product_id = conn.execute(
            "INSERT INTO products (name, price, inventory_count) VALUES ('Tea', 1, 1) RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (%s, %s, %s)",
            (cart_id, product_id, value),
        )
    elif row.field == "status":
        conn.execute(
            "INSERT INTO orders (user_id, cart_id, status, total) VALUES (%s, %s, %s, 0)",
            (user_id, cart_id, value),
        )


def _database_verdict(conn: psycopg.Connection[Any], row: Row) -> str:
    """``"ok"``, or how the database refused: ``"check"`` or ``"type"``."""
    try:
        with conn.transaction():
            _insert(conn, row)
            raise psycopg.Rollback
    except psycopg.errors.CheckViolation:
        return "check"
    except (psycopg.DataError, psycopg.errors.DatatypeMismatch, UnicodeEncodeError):
        return "type"  # out of range, not text PostgreSQL can hold, not an integer
    return "ok"


@pytest.mark.parametrize("row", _rows("db"))
def test_the_database_gives_the_tables_verdict(owner: psycopg.Connection[Any], row: Row) -> None:
    expected = "ok" if row.verdict else row.db
    assert _database_verdict(owner, row) == expected
