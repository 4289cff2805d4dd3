"""Password guessing is throttled in the database: N tries per login per window, then 429.

Every test that takes a store takes both flavours; processes race through pools of
their own. That argon2 does not run for a refused login
is shown by counting calls to :func:`shopdb.passwords.derive`, the one
function a login computes a hash with (no timing involved).
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial

import pytest

from shopdb import Store, passwords
from shopdb.connect import libpq_url
from shopdb.db import Pool
from shopdb.errors import TooManyAttempts
from shopdb.limits import LOGIN_ATTEMPTS, LOGIN_WINDOW
from shopdb.schemas import UserRead

from .flavours import Sql
from .helpers import refusals, together

PASSWORD = "correct horse battery"
#: How long a process of the race may take (a hang guard, not a timing).
HANG_GUARD = 120.0
WRONG = "wrong password"


@pytest.fixture
def derived(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The settings of every argon2 computation a login ran, in this process."""
    calls: list[str] = []
    real = passwords.derive

    def counting(settings: str, length: int, password: str) -> str | None:
        calls.append(settings)
        return real(settings, length, password)

    monkeypatch.setattr(passwords, "derive", counting)
    return calls


def _refused(store: Store, login: str, password: str = WRONG) -> TooManyAttempts:
    with pytest.raises(TooManyAttempts) as caught:
        store.authenticate(login, password)
    return caught.value


@pytest.mark.parametrize("login", ["alice", "alice@example.com", "nobody", "nobody@example.com"])
def test_the_next_wrong_login_is_refused_without_argon2_known_or_not(
    store: Store, derived: list[str], login: str
) -> None:
    store.create_user("alice", "alice@example.com", PASSWORD)
    for _ in range(LOGIN_ATTEMPTS):
        assert store.authenticate(login, "wrong password") is None
    assert len(derived) == LOGIN_ATTEMPTS
    refused = _refused(store, login)
    # Even the right password waits: the answer cannot depend on it.
    again = _refused(store, login, PASSWORD)
    assert len(derived) == LOGIN_ATTEMPTS  # no argon2 for either
    assert 1 <= again.retry_after <= refused.retry_after <= LOGIN_WINDOW
    problem = refused.problem()
    assert (problem["status"], problem["code"], problem["retryable"]) == (
        429,
        "too_many_attempts",
        False,
    )
    assert problem["retry_after"] == refused.retry_after
    assert refused.headers() == {"Retry-After": str(refused.retry_after)}
    assert login not in str(refused)


def test_known_and_unknown_logins_are_refused_alike(store: Store) -> None:
    store.create_user("alice", "alice@example.com", PASSWORD)
    answers = []
    for login in ("alice", "nobody"):
        for _ in range(LOGIN_ATTEMPTS):
            store.authenticate(login, "wrong password")
        refused = _refused(store, login)
        answers.append((type(refused), str(refused).split(" in ")[0], refused.http_status))
    assert answers[0] == answers[1]


def test_case_and_unicode_variants_of_a_login_share_one_count(store: Store) -> None:
    store.create_user("alice", "alice@example.com", PASSWORD)
    variants = ["alice", "ALICE", "Alice", "\uff41lice"]  # the last: FULLWIDTH a, NFKC "alice"
    for n in range(LOGIN_ATTEMPTS):
        store.authenticate(variants[n % len(variants)], "wrong password")
    for login in variants:
        _refused(store, login)
    # Another login, and the same user's email (a login of its own), are not refused.
    assert store.authenticate("bob", "wrong password") is None
    assert store.authenticate("alice@example.com", PASSWORD) is not None


def test_a_success_resets_the_count(store: Store) -> None:
    alice = store.create_user("alice", "alice@example.com", PASSWORD)
    for _ in range(LOGIN_ATTEMPTS - 1):
        assert store.authenticate("alice", "wrong password") is None
    assert store.authenticate("alice", PASSWORD) == alice
    for _ in range(LOGIN_ATTEMPTS):
        assert store.authenticate("alice", "wrong password") is None
    _refused(store, "alice", PASSWORD)


def test_logins_are_admitted_again_once_the_window_has_passed(store: Store, sql: Sql) -> None:
    alice = store.create_user("alice", "alice@example.com", PASSWORD)
    for login in ("alice", "nobody"):
        for _ in range(LOGIN_ATTEMPTS):
            store.authenticate(login, "wrong password")
        _refused(store, login)
    # The window passes (the owner moves the clock of the rows back).
    sql(
        "UPDATE login_attempts SET window_start = window_start - make_interval(secs => %s)",
        (LOGIN_WINDOW,),
    )
    assert store.authenticate("alice", PASSWORD) == alice
    assert store.authenticate("nobody", "wrong password") is None


def test_the_throttle_keeps_one_row_per_login_and_prunes_old_ones(store: Store, sql: Sql) -> None:
    # Rows from logins tried long ago, as a flood of made-up logins leaves them.
    sql(
        "INSERT INTO login_attempts (login_key, attempts, pending, window_start) "
        "SELECT sha256(i::text::bytea), 3, 0, now() - make_interval(secs => %s + i) "
        "FROM generate_series(1, 5) i",
        (LOGIN_WINDOW,),
    )
    for n in range(3):
        for _ in range(2):
            store.authenticate(f"someone{n}", "wrong password")
    rows = sql("SELECT attempts, window_start > now() - interval '1 minute' FROM login_attempts")
    assert sorted(rows) == [(2, True)] * 3  # old rows gone; one row per login tried
    # No login text is stored: the key is an HMAC-SHA256 of it.
    assert sql("SELECT DISTINCT length(login_key) FROM login_attempts") == [(32,)]


def test_racing_wrong_logins_get_exactly_n_checks_then_refusals(
    racing_store: Store, derived: list[str]
) -> None:
    store = racing_store
    store.create_user("racer", "racer@example.com", PASSWORD)
    for login in ("racer", "ghost"):
        derived.clear()
        tries = 3 * LOGIN_ATTEMPTS
        results = together([partial(store.authenticate, login, "wrong password")] * tries)
        refused = refusals(results, TooManyAttempts)
        failed = [r for r in results if r is None]
        assert len(failed) == LOGIN_ATTEMPTS, results
        assert len(refused) == tries - LOGIN_ATTEMPTS, results
        assert len(derived) == LOGIN_ATTEMPTS  # argon2 ran only for the admitted ones
    # The real password waits too; nothing else is affected.
    with pytest.raises(TooManyAttempts):
        store.authenticate("racer", PASSWORD)
    assert isinstance(store.authenticate("racer@example.com", PASSWORD), UserRead)


def test_the_database_enforces_the_limits_of_shopdb_limits(sql: Sql) -> None:
    """Migration 0009 freezes the limits into the login function: they must agree."""
    ((source,),) = sql("SELECT prosrc FROM pg_proc WHERE proname = 'shopdb_login_begin'")
    assert f"make_interval(secs => {LOGIN_WINDOW})" in source
    assert f"OR a.attempts < {LOGIN_ATTEMPTS}\n" in source


#: One process's share of a guessing race: wrong logins, one after another; prints
#: how many were checked and how many refused.
GUESSER = """
import sys
from shopdb import Store, establish_connection_pool
from shopdb.config import Settings
from shopdb.errors import TooManyAttempts

url, login, tries = sys.argv[1], sys.argv[2], int(sys.argv[3])
checked = refused = 0
settings = Settings(_env_file=None, connect_retry=0)
with establish_connection_pool(url, settings=settings, announce=False) as pool:
    store = Store(pool, retries=0)  # a deadlock fails the race: it is not run again
    for _ in range(tries):
        try:
            assert store.authenticate(login, "wrong password") is None
            checked += 1
        except TooManyAttempts:
            refused += 1
print(checked, refused)
"""


def test_processes_guessing_at_once_share_one_count(committed_pool: Pool) -> None:
    Store(committed_pool).create_user("shared", "shared@example.com", PASSWORD)
    url = libpq_url(committed_pool.target.url)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", GUESSER, url, login, str(LOGIN_ATTEMPTS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for login in ("shared", "SHARED", "Shared")
    ]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=HANG_GUARD)
        assert process.returncode == 0, err
        answers.append(tuple(int(n) for n in out.split()))
    # (An unknown login races the same way: the threads above show it.)
    assert sum(checked for checked, _ in answers) == LOGIN_ATTEMPTS, answers
    assert sum(refused for _, refused in answers) == 2 * LOGIN_ATTEMPTS, answers
