"""staff_and_names: staff, names that cannot impersonate, the price a cart line was added at.

Revision ID: 0010
Revises: 0009

* ``users.role``: ``customer`` (the default) or ``staff`` (``ck_users_role_known``).
* ``users.username_key``: the username's key (``shopdb.names.username_key``:
  PRECIS UsernameCaseMapped, full case folding, UTS #39 confusable skeleton),
  present on every row (``ck_users_username_key_present``) and unique
  (``uq_users_username_key``), so look-alikes are one account.
* Names hold no control, invisible or bidi characters (``ck_users_username_text``,
  ``ck_users_email_text``, ``ck_products_name_text``; a product name also
  holds something visible) and descriptions no control character but newline
  and tab (``ck_products_description_text``).
* ``cart_items.unit_price``: the price when the line was added or last set
  (NULL for the lines already there), so checkout can say what moved.
* The login functions of 0009 find a username by its key (the Store passes
  ``shopdb.names.login_key(login)``), so a look-alike spelling signs in to
  the one account and counts against its one throttle; emails are found as
  before. ``CREATE OR REPLACE`` keeps their owner and ``EXECUTE`` grants.

Existing rows: every username is checked against the new rules and keyed
in Python (PostgreSQL cannot run PRECIS); usernames that break a rule, pairs
that would become one account, and emails, product names and descriptions
that hold a refused character stop the upgrade before anything changes,
naming the users (with their ids) and counting the rest.

Online: the columns are added as catalog changes (``role``'s constant
default needs no rewrite on PostgreSQL 11 and later), keys are written a
page of rows at a time (row locks only), every CHECK is added NOT VALID and
validated apart, and the unique index is built CONCURRENTLY. Keys are
written, then ``ck_users_username_key_present`` is added NOT VALID (from then
on a user cannot be inserted without one), then written again for users
inserted meanwhile, then validated. During a rolling deploy, processes still
running older code cannot register users from that point: deploy the code
first, or expect their registrations to fail for that while.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import context

from shopdb import online_ddl
from shopdb.errors import MigrationError
from shopdb.names import username_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shopdb.online_ddl import OnlineDDL

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The character classes of shopdb.names as this migration applies them (a test
# checks they are still the models'): a later change of the rules is a new migration.
CONTROL = r"\u0000-\u001f\u007f-\u009f"
SPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Default ignorable code points, U+2800 (drawn blank), then those above U+FFFF.
INVISIBLE = (
    r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\u2800"
)
ASTRAL = r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
CHECKS = [
    ("users", "ck_users_role_known", "role IN ('customer', 'staff')", None),
    (
        "cart_items",
        "ck_cart_items_unit_price_amount",
        "unit_price >= 0 AND unit_price = round(unit_price, 2) AND unit_price < 'Infinity'",
        None,
    ),
    ("users", "ck_users_username_key_present", "username_key IS NOT NULL", None),
    (
        "users",
        "ck_users_username_text",
        f"username !~ '[@{CONTROL}{SPACE}{INVISIBLE}{ASTRAL}]'",
        None,  # checked in Python, with every other username rule
    ),
    (
        "users",
        "ck_users_email_text",
        rf"email !~ '[{CONTROL}{INVISIBLE}\u2028\u2029{ASTRAL}]'",
        "users rows have an email holding a control, invisible or formatting character",
    ),
    (
        "products",
        "ck_products_name_text",
        rf"name !~ '[{CONTROL}\u202a-\u202e\u2066-\u2069\u2028\u2029]' "
        f"AND name ~ '[^{SPACE}{INVISIBLE}{ASTRAL}]'",
        "products rows have a name holding a control character, bidi control or line break, "
        "or only invisible characters",
    ),
    (
        "products",
        "ck_products_description_text",
        r"description !~ '[\u0000-\u0008\u000b-\u001f\u007f-\u009f]'",
        "products rows have a description holding a control character other than newline and tab",
    ),
]
_CHECK = {name: (table, condition) for table, name, condition, _ in CHECKS}
PRECHECKS = [
    (
        f"SELECT count(*) FILTER (WHERE NOT ({condition})) FROM {table}",
        [problem],
    )
    for table, _, condition, problem in CHECKS
    if problem is not None
]
#: Users read, keyed and written back per statement.
PAGE = 1000
#: Users named in the report, of each kind of problem.
SHOWN = 10

USERS = "SELECT id, username FROM users WHERE id > %(after)s ORDER BY id LIMIT %(limit)s"
UNKEYED = (
    "SELECT id, username FROM users WHERE username_key IS NULL AND id > %(after)s "
    "ORDER BY id LIMIT %(limit)s"
)
# Only a row whose username is still the one keyed, and still without a key.
FILL = """
UPDATE users u SET username_key = v.key
FROM unnest(%(ids)s::integer[], %(names)s::varchar[], %(keys)s::varchar[]) AS v(id, name, key)
WHERE u.id = v.id AND u.username = v.name AND u.username_key IS NULL
"""


def _login_functions(by_key: bool) -> list[str]:
    """0009's login functions, finding a username by its key (``by_key``) or as 0009 did."""
    earlier = context.script.get_revision("0009").module
    functions = [earlier.LOGIN_BEGIN, earlier.LOGIN_FINISH]
    if not by_key:
        return functions
    by_name = "lower(u.username) = lower(login)"
    assert all(by_name in f for f in functions)  # noqa: S101 (0009 is frozen)
    return [f.replace(by_name, "u.username_key = login") for f in functions]


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.refuse_rows(PRECHECKS, found_already=_username_problems(ddl))
        ddl.brief(
            "ALTER TABLE users ADD COLUMN IF NOT EXISTS role VARCHAR NOT NULL DEFAULT 'customer'"
        )
        ddl.add_check("users", "ck_users_role_known", _CHECK["ck_users_role_known"][1])
        ddl.brief("ALTER TABLE users ADD COLUMN IF NOT EXISTS username_key VARCHAR")
        ddl.brief("ALTER TABLE cart_items ADD COLUMN IF NOT EXISTS unit_price NUMERIC")
        ddl.add_check(
            "cart_items",
            "ck_cart_items_unit_price_amount",
            _CHECK["ck_cart_items_unit_price_amount"][1],
        )
        _fill_keys(ddl)
        present = "ck_users_username_key_present"
        ddl.add_check_not_valid("users", present, _CHECK[present][1])
        _fill_keys(ddl)  # the users inserted before the check came
        ddl.validate_check("users", present)
        ddl.create_index("uq_users_username_key", "users", ["username_key"], unique=True)
        for name in (
            "ck_users_username_text",
            "ck_users_email_text",
            "ck_products_name_text",
            "ck_products_description_text",
        ):
            table, condition = _CHECK[name]
            ddl.add_check(table, name, condition)
        for function in _login_functions(by_key=True):
            ddl.unblocking(function)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        for function in _login_functions(by_key=False):
            ddl.unblocking(function)
        ddl.drop_index("uq_users_username_key")
        for table, name, _, _ in reversed(CHECKS):
            ddl.drop_constraint(table, name)
        ddl.brief("ALTER TABLE cart_items DROP COLUMN IF EXISTS unit_price")
        ddl.brief("ALTER TABLE users DROP COLUMN IF EXISTS username_key")
        ddl.brief("ALTER TABLE users DROP COLUMN IF EXISTS role")


def _users(ddl: OnlineDDL) -> Iterator[tuple[int, str]]:
    """Every user's (id, username), read a page at a time by id."""
    after = 0
    while page := ddl.rows(USERS, {"after": after, "limit": PAGE}):
        for row in page:
            yield int(row[0]), str(row[1])
        after = int(page[-1][0])


def _username_problems(ddl: OnlineDDL) -> list[str]:
    """Users whose username breaks the new rules, and users who would be one account."""
    ddl.note(
        "0010 keys every username in Python (shopdb.names.username_key) here, and stops if "
        "one breaks the new rules or two would be one account: --sql cannot show it"
    )
    broken: list[str] = []
    first: dict[str, tuple[int, str]] = {}
    twins: list[str] = []
    for user_id, name in _users(ddl):
        try:
            key = username_key(name)
        except ValueError as exc:
            broken.append(f"user {user_id} {name!a}: {exc}")
            continue
        if key in first:
            other_id, other = first[key]
            twins.append(f"users {other_id} {other!a} and {user_id} {name!a}")
        else:
            first[key] = (user_id, name)
    problems = []
    if broken:
        problems.append(
            f"{len(broken)} users have a username the new rules refuse ({_some(broken)})"
        )
    if twins:
        problems.append(
            f"{len(twins)} users have a username that looks like another's and would be one "
            f"account with it ({_some(twins)})"
        )
    return problems


def _some(items: list[str]) -> str:
    more = len(items) - SHOWN
    return "; ".join(items[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _fill_keys(ddl: OnlineDDL) -> None:
    """Write the key of every user who has none, a page of rows per statement."""
    ddl.note("0010 writes users.username_key = shopdb.names.username_key(username) here")
    unkeyable: list[str] = []
    after = 0
    while page := ddl.rows(UNKEYED, {"after": after, "limit": PAGE}):
        after = int(page[-1][0])
        keyed = []
        for user_id, name in page:
            try:
                keyed.append((int(user_id), str(name), username_key(str(name))))
            except ValueError as exc:
                unkeyable.append(f"user {user_id} {name!a}: {exc}")
        if keyed:
            ids, names, keys = (list(column) for column in zip(*keyed, strict=True))
            ddl.update_rows(FILL, {"ids": ids, "names": names, "keys": keys})
    if unkeyable:
        # Registered after the check above by code that does not know the rules.
        raise MigrationError(
            f"{len(unkeyable)} users registered during the migration have a username the "
            f"new rules refuse ({_some(unkeyable)}): fix them, then run again"
        )
