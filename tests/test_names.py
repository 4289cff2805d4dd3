"""Names cannot impersonate or hide: usernames (PRECIS, one account per look), emails,
product names and descriptions, through the models, the Store, the bulk import and the
database; and migration 0010 on a database that already holds users and products."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shopdb import Store, names
from shopdb.bulk import import_products
from shopdb.config import Settings, parse_database_url
from shopdb.connect import Target
from shopdb.errors import AlreadyExists, ImportFailed, InvalidInput, MigrationError, NotFound
from shopdb.migrate import Migrator
from shopdb.migrate.print_schema import live_ddl
from shopdb.schemas import NewProduct, NewUser, ProductChanges, parse

from .helpers import PACKAGE_VERSIONS, refused

PASSWORD = "correct horse battery"

# -- every impersonation of the issue, and a few more ----------------------------

#: (what is tried beside ``alice``, what happens): "taken" is AlreadyExists on
#: username (it is alice, by its key), "refused" is InvalidInput on username.
IMPERSONATIONS = [
    ("\u0430lice", "taken"),  # Cyrillic a
    ("al\u200dice", "refused"),  # zero-width joiner
    ("\u200balice", "refused"),  # zero-width space
    ("alice\u202e", "refused"),  # right-to-left override
    ("\u202ealice", "refused"),
    ("alice\u2066", "refused"),  # left-to-right isolate
    ("ali\nce", "refused"),
    ("alice\x1b[0m", "refused"),  # an ANSI escape
    ("alice ", "refused"),  # a trailing space (PRECIS has no spaces)
    (" alice", "refused"),
    ("alice\u0301", "taken"),  # a combining accent: alicé is alice
    ("ali\u0307ce", "taken"),  # a dot above the i's dot
    ("a\u0301lice", "taken"),
    ("\u0301alice", "refused"),  # a combining mark first
    ("a\u00adlice", "refused"),  # a soft hyphen
    ("\u200b", "refused"),  # only invisible characters
    ("\u2800", "refused"),
    ("\u3164", "refused"),
    ("\u200b\u2800\u3164", "refused"),
    ("ALICE", "taken"),  # case
    ("Alice", "taken"),
    ("\uff41\uff4c\uff49\uff43\uff45", "taken"),  # full-width
    ("a1ice", "taken"),  # 1 looks like l
    ("\u0430\u04cf\u0456\u0441\u0435", "taken"),  # every letter Cyrillic
]


@pytest.mark.parametrize(
    ("name", "outcome"), IMPERSONATIONS, ids=[ascii(n) for n, _ in IMPERSONATIONS]
)
def test_no_name_can_pass_for_alice(store: Store, name: str, outcome: str) -> None:
    alice = store.create_user("alice", "alice@example.com", PASSWORD)
    error = AlreadyExists if outcome == "taken" else InvalidInput
    with pytest.raises(error) as caught:
        store.create_user(name, "mallory@example.com", PASSWORD)
    assert isinstance(caught.value, AlreadyExists | InvalidInput)
    assert caught.value.field == "username"
    # A login finds accounts as registration keys them: a look-alike is alice's own
    # login, and a refused spelling is nobody's (after the same argon2 work).
    found = store.authenticate(name, PASSWORD)
    assert found == (alice if outcome == "taken" else None)


def test_full_case_folding_makes_strasse_one_account(store: Store) -> None:
    first = store.create_user("stra\u00dfe", "s1@example.com", PASSWORD)
    assert first.username == "stra\u00dfe"  # PRECIS UsernameCaseMapped lowercases; ß stays
    with pytest.raises(AlreadyExists):
        store.create_user("STRASSE", "s2@example.com", PASSWORD)
    assert store.authenticate("Strasse", PASSWORD) == first
    assert store.find_user("STRASSE") == first


def test_a_username_is_stored_as_precis_prepares_it(store: Store) -> None:
    made = store.create_user("Zo\u00eb", "zoe@example.com", PASSWORD)
    assert made.username == "zo\u00eb"
    assert store.get_user(made.id).username == "zo\u00eb"
    assert store.authenticate("ZO\u00cb", PASSWORD) == made


def test_different_names_stay_different(store: Store) -> None:
    # Neither too eager: these are all distinct accounts.
    for number, name in enumerate(["alice", "alicia", "bob", "\u65e5\u672c", "\u0434\u043e\u043c"]):
        store.create_user(name, f"u{number}@example.com", PASSWORD)


def test_refused_usernames_say_why_without_echoing_them(store: Store) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.create_user("al\u200dice", "a@example.com", PASSWORD)
    assert caught.value.reason == (
        "must not contain an invisible or formatting character (U+200D ZERO WIDTH JOINER)"
    )
    assert "\u200d" not in str(caught.value.problem())


def test_the_key_is_what_the_database_keeps_unique(store: Store, sql: Any) -> None:
    made = store.create_user("Modern", "m@example.com", PASSWORD)
    assert sql("SELECT username, username_key FROM users WHERE id = %s", (made.id,)) == [
        ("modern", "rnodern")  # m looks like rn: the skeleton says so
    ]
    with pytest.raises(AlreadyExists):
        store.create_user("rnodern", "r@example.com", PASSWORD)


# -- names, unit by unit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("alice", "alice"),
        ("g00gle", "google"),  # 0 is O, folded again
        ("user0001", "useroool"),
        ("Zo\u00eb\u65e5\u672c", "zoe\u65e5\u672c"),
        ("\u0130stanbul", "istanbul"),
    ],
)
def test_username_keys(given: str, key: str) -> None:
    assert names.username_key(given) == key
    assert names.login_key(given) == key


@pytest.mark.parametrize("login", ["", "a b", "\u200b", "x@y", "\ud800", "x" * 65, "\u2800"])
def test_a_login_no_username_can_have_has_no_key(login: str) -> None:
    assert names.login_key(login) is None


def test_the_confusables_table_is_unicodes() -> None:
    header = (Path(names.__file__).parent / "confusables.tsv").read_text().splitlines()[:2]
    assert "confusables.txt (UTS #39)" in header[0]
    assert header[1].startswith("# version 17.0.0, SHA-256 ")
    table = names._prototypes()
    assert len(table) > 6000
    assert (table["\u0430"], table["1"], table["m"], table["0"]) == ("a", "l", "rn", "O")


# -- emails ---------------------------------------------------------------------------

BAD_EMAILS = [
    "alice\u200b@example.com",
    "alice@exam\u202eple.com",
    "ali\x1bce@example.com",
    "\u2800@example.com",
    "alice@example.com\u2028",
    "alice\U000e0041@example.com",  # an invisible tag
]


@pytest.mark.parametrize("email", BAD_EMAILS, ids=ascii)
def test_emails_refuse_control_invisible_and_bidi_characters(store: Store, email: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.create_user("eve", email, PASSWORD)
    assert caught.value.field == "email"
    with pytest.raises(InvalidInput):
        parse(NewUser, {"username": "eve", "email": email, "password": PASSWORD})


# -- product names and descriptions -----------------------------------------------------

BAD_NAMES = [
    "\u200b",
    "\u2800",
    "\u3164",
    " \u200b\u3164 ",
    "\u200b\u200c\u200d\u2060\ufeff",
    "Lamp\u202e",
    "\u2066Lamp\u2069",
    "\x1b[31mLamp\x1b[0m",
    "La\nmp",
    "Lamp\t",
    "Lamp\u2028",
    "\U000e0041\U000e0042",  # only invisible tags
]
GOOD_NAMES = [
    "Lamp",
    "Lamp \U0001f4a1",
    "\U0001f469\u200d\U0001f4bb sticker",
    "\u05de\u05e0\u05d5\u05e8\u05d4",
]
BAD_DESCRIPTIONS = ["green\x1b[31m tea", "a\rb", "\x00", "bell\x07", "c1\x85"]
GOOD_DESCRIPTIONS = ["line one\nline two\twith a tab", "\u202eright to left is allowed here"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=ascii)
def test_product_names_refuse_controls_bidi_and_invisible_only(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(NewProduct, {"name": name, "price": "1.00", "inventory_count": 1})
    assert caught.value.field == "name"
    with pytest.raises(InvalidInput) as caught:
        store.create_product(name, "1.00", 1)
    assert caught.value.field == "name"
    lamp = store.create_product("Lamp", "1.00", 1)
    with pytest.raises(InvalidInput):
        store.update_product(lamp.id, name=name)
    assert store.get_product(lamp.id).name == "Lamp"


@pytest.mark.parametrize("name", GOOD_NAMES, ids=ascii)
def test_product_names_in_any_script_with_emoji_are_fine(store: Store, name: str) -> None:
    assert store.create_product(name, "1.00", 1).name == name


@pytest.mark.parametrize("description", BAD_DESCRIPTIONS, ids=ascii)
def test_descriptions_refuse_controls_but_newline_and_tab(store: Store, description: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(ProductChanges, {"description": description})
    assert caught.value.field == "description"
    with pytest.raises(InvalidInput) as caught:
        store.create_product("Tea", "1.00", 1, description)
    assert caught.value.field == "description"


@pytest.mark.parametrize("description", GOOD_DESCRIPTIONS, ids=ascii)
def test_descriptions_keep_newlines_and_tabs(store: Store, description: str) -> None:
    assert store.create_product("Tea", "1.00", 1, description).description == description


@pytest.mark.parametrize(
    ("column", "value"),
    [("name", n) for n in BAD_NAMES if "\x00" not in n]
    + [("description", d) for d in BAD_DESCRIPTIONS if "\x00" not in d],
    ids=ascii,
)
def test_the_database_refuses_them_from_raw_sql_too(
    db_connection: Connection, column: str, value: str
) -> None:
    product = db_connection.execute(
        text(
            "INSERT INTO products (name, price, inventory_count) VALUES ('Tea', 1, 1) RETURNING id"
        )
    ).scalar_one()
    error = refused(
        db_connection, f"UPDATE products SET {column} = :v WHERE id = :p", v=value, p=product
    )
    assert isinstance(error, InvalidInput)
    assert error.field == column


@pytest.mark.parametrize(
    ("column", "value"),
    [("username", "al\u200dice"), ("username", "alice "), ("email", "a\u200b@x.io")],
    ids=ascii,
)
def test_the_database_refuses_hidden_characters_in_users_from_raw_sql(
    db_connection: Connection, column: str, value: str
) -> None:
    values = {"username": "amy", "email": "amy@x.io", column: value}
    error = refused(
        db_connection,
        "INSERT INTO users (username, username_key, email, password_hash) "
        "VALUES (:username, 'key', :email, 'h')",
        **values,
    )
    assert isinstance(error, InvalidInput)
    assert error.field == column


def test_a_user_without_a_key_is_refused_by_the_database(db_connection: Connection) -> None:
    error = refused(
        db_connection,
        "INSERT INTO users (username, email, password_hash) VALUES ('amy', 'amy@x.io', 'h')",
    )
    assert isinstance(error, InvalidInput)
    assert error.field == "username"


def test_an_orm_insert_gets_its_key_by_itself(db_session: Any) -> None:
    from shopdb.models import User

    user = User(username="Dave", email="dave@example.com", password_hash="x")
    db_session.add(user)
    db_session.flush()
    assert user.username_key == "dave"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_the_bulk_import_refuses_them_by_line_and_field(
    db_connection: Connection, tmp_path: Path, suffix: str
) -> None:
    rows = [("Lamp", "fine", "1.00", 1), ("\u2800", None, "1.00", 1), ("Mug", "a\x1bb", "2", 2)]
    path = tmp_path / f"products{suffix}"
    if suffix == ".csv":
        body = "name,description,price,inventory_count\n" + "".join(
            f"{n},{d or ''},{p},{c}\n" for n, d, p, c in rows
        )
    else:
        body = "".join(
            json.dumps({"name": n, "description": d, "price": p, "inventory_count": c}) + "\n"
            for n, d, p, c in rows
        )
    path.write_text(body, encoding="utf-8")
    raw = db_connection.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    with pytest.raises(ImportFailed) as caught:
        import_products(raw, path)
    first_line = 2 if suffix == ".csv" else 1
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (first_line + 1, "name"),
        (first_line + 2, "description"),
    ]
    assert caught.value.problems[0].reason == "must not be only invisible characters"


# -- migration 0010 on a database that already holds users and products --------------


def _migration_0010() -> ModuleType:
    path = PACKAGE_VERSIONS / "0010_staff_and_names.py"
    spec = importlib.util.spec_from_file_location("staff_and_names", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_applies_the_rules_the_models_state() -> None:
    checks = {name: condition for _, name, condition, _ in _migration_0010().CHECKS}
    assert checks["ck_users_username_text"] == names.USERNAME_CHECK
    assert checks["ck_users_email_text"] == names.EMAIL_CHECK
    assert checks["ck_products_name_text"] == names.NAME_CHECK
    assert checks["ck_products_description_text"] == names.DESCRIPTION_CHECK


def _before_0010(url: str, settings: Settings) -> Migrator:
    migrator = Migrator(Target(parse_database_url(url)), settings)
    migrator.run(upto="0009")
    return migrator


def _ddl(url: str) -> str:
    with psycopg.connect(url) as conn:
        return live_ddl(conn, ["users", "products", "carts", "cart_items"])


def test_the_upgrade_reports_look_alikes_and_hidden_characters_and_changes_nothing(
    empty_db: str, settings: Settings
) -> None:
    migrator = _before_0010(empty_db, settings)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, username, email, password_hash) VALUES "
            "(1, 'alice', 'alice@x.io', 'h'), (2, %s, 'mallory@x.io', 'h'), "
            "(3, %s, 'eve@x.io', 'h'), (4, 'Bob', 'bob@x.io', 'h'), (5, 'b0b', 'b0b@x.io', 'h'), "
            "(6, 'carol', %s, 'h')",
            ("\u0430lice", "al\u200dice", "carol\u200b@x.io"),
        )
        conn.execute(
            "INSERT INTO products (name, description, price, inventory_count) VALUES "
            "(%s, NULL, 1, 1), ('Tea', %s, 1, 1), ('Mug', 'fine\nand\tfine', 1, 1)",
            ("\u2800", "green\x1b[31m"),
        )
    before = _ddl(empty_db)
    with pytest.raises(MigrationError) as caught:
        migrator.run()
    message = str(caught.value)
    assert "existing rows break the new rules" in message
    assert (
        "1 users have a username the new rules refuse (user 3 'al\\u200dice': must not contain "
        "an invisible or formatting character (U+200D ZERO WIDTH JOINER))"
    ) in message
    assert (
        "2 users have a username that looks like another's and would be one account with it "
        "(users 1 'alice' and 2 '\\u0430lice'; users 4 'Bob' and 5 'b0b')"
    ) in message
    assert "1 users rows have an email holding a control, invisible or formatting" in message
    assert "1 products rows have a name holding a control character" in message
    assert "1 products rows have a description holding a control character" in message
    assert _ddl(empty_db) == before
    assert [m.revision for m in migrator.pending()] == ["0010", "0011", "0012"]

    # Fixed by hand, the upgrade keys everyone; a mixed-case name stays as it was.
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("UPDATE users SET username = 'mallory' WHERE id = 2")
        conn.execute("UPDATE users SET username = 'eve' WHERE id = 3")
        conn.execute("UPDATE users SET username = 'bobby' WHERE id = 5")
        conn.execute("UPDATE users SET email = 'carol@x.io' WHERE id = 6")
        conn.execute("UPDATE products SET name = 'Blank' WHERE name = %s", ("\u2800",))
        conn.execute("UPDATE products SET description = 'green' WHERE name = 'Tea'")
    migrator.run()
    with psycopg.connect(empty_db) as conn:
        rows = conn.execute("SELECT id, username, username_key, role FROM users ORDER BY id")
        assert rows.fetchall() == [
            (1, "alice", "alice", "customer"),
            (2, "mallory", "rnallory", "customer"),
            (3, "eve", "eve", "customer"),
            (4, "Bob", "bob", "customer"),
            (5, "bobby", "bobby", "customer"),
            (6, "carol", "carol", "customer"),
        ]
        store = Store.bound(conn)
        with pytest.raises(AlreadyExists):
            store.create_user("B\u043eb", "bob2@x.io", PASSWORD)  # a Cyrillic o
        with pytest.raises(NotFound):
            store.find_user("nobody")
        assert store.find_user("BOB").id == 4


def test_keys_are_written_a_page_at_a_time(empty_db: str, settings: Settings) -> None:
    migrator = _before_0010(empty_db, settings)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash) "
            "SELECT 'user' || i, 'user' || i || '@x.io', 'h' FROM generate_series(1, 2500) i"
        )
    migrator.run(upto="0010")
    with psycopg.connect(empty_db) as conn:
        keys = conn.execute("SELECT count(username_key), count(DISTINCT username_key) FROM users")
        assert keys.fetchone() == (2500, 2500)
        row = conn.execute("SELECT username_key FROM users WHERE username = 'user10'").fetchone()
        assert row == ("userlo",)
    # And back: the downgrade removes what the upgrade added.
    migrator.revert(1)
    with psycopg.connect(empty_db) as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name IN ('users', 'cart_items') AND column_name IN "
            "('role', 'username_key', 'unit_price')"
        ).fetchall()
        assert columns == []


def test_sql_says_where_python_keys_the_usernames(empty_db: str, settings: Settings) -> None:
    migrator = _before_0010(empty_db, settings)
    printed = migrator.sql("up")
    assert "-- 0010 keys every username in Python (shopdb.names.username_key)" in printed
    assert "-- 0010 writes users.username_key = shopdb.names.username_key(username) here" in printed
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_users_username_key" in printed
