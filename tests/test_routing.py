"""The routing rules and the URLs they need, without a server: pure functions of their inputs.

The same rules on real servers, both flavours: ``tests/test_replicas.py``.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopdb.config import Settings, mask_url, parse_database_url, replica_urls
from shopdb.connect import libpq_url, primary_url
from shopdb.db.routing import Behind, Replica, Router, format_lsn, parse_lsn
from shopdb.errors import ConfigurationError, DatabaseUnavailable, InvalidInput, NotFound
from shopdb.store.core import ONE, Operation, Query, Steps, operation
from shopdb.store.freshness import token_position

# -- tokens --------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_a_wal_position_survives_its_text(position: int) -> None:
    assert parse_lsn(format_lsn(position)) == position


def test_positions_compare_as_postgresql_orders_them() -> None:
    assert parse_lsn("0/3000148") < parse_lsn("0/30001480") < parse_lsn("1/0")
    assert parse_lsn("16/b374d848") == parse_lsn("16/B374D848")
    assert format_lsn(parse_lsn("0/3000148")) == "0/3000148"


@pytest.mark.parametrize("bad", ["", "/", "1/", "/1", "1//1", "0x1/1", " 1/1", "-1/1", "1_0/1"])
def test_a_token_that_is_not_one_is_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        token_position(bad)
    assert caught.value.field == "token"
    assert token_position(None) is None


# -- routing ---------------------------------------------------------------------


def _steps() -> Steps[int]:
    yield Query("SELECT 1", (), ONE)
    return 1


NEVER = Operation(_steps, read_only=True)
FRESH = Operation(_steps, read_only=True, replica="fresh")
STALE = Operation(_steps, read_only=True, replica="stale")
WRITE = Operation(_steps, read_only=False)


@pytest.fixture
def router() -> Router[str]:
    """Two usable replicas whose pools are the strings ``r1`` and ``r2``; the primary is ``p``."""
    urls = [parse_database_url(f"postgresql://u:secret@r{i}/db") for i in (1, 2)]
    routing: Router[str] = Router("p", urls, max_lag=5.0)
    for replica, pool in zip(routing.replicas, ("r1", "r2"), strict=True):
        replica.pool, replica.usable, replica.problem = pool, True, None
    return routing


def test_only_what_may_leave_the_primary_does(router: Router[str]) -> None:
    assert router.route(WRITE, None).pool == "p"
    assert router.route(WRITE, 10).pool == "p"  # a token never moves a write
    assert router.route(NEVER, 10).pool == "p"
    assert router.route(FRESH, None).pool == "p"  # no token: the primary is fresh
    assert {router.route(STALE, None).pool for _ in range(4)} == {"r1", "r2"}
    assert router.stats().primary == 4
    assert [r.sent for r in router.stats().replicas] == [2, 2]


def test_a_token_goes_where_it_is_known_replayed_else_is_checked(router: Router[str]) -> None:
    first, second = router.replicas
    first.saw(100)
    known = router.route(FRESH, 100)
    assert (known.pool, known.check) == ("r1", None)
    unknown = router.route(STALE, 101)
    assert unknown.pool in {"r1", "r2"}
    assert unknown.check == 101
    second.saw(200)
    assert {router.route(FRESH, 150).pool for _ in range(4)} == {"r2"}


def test_the_replay_check_runs_first_on_the_read_connection(router: Router[str]) -> None:
    route = router.route(STALE, 0x3000148)
    steps = route.steps(_steps())
    assert next(steps) == Query("SELECT pg_last_wal_replay_lsn()::text", (), ONE)
    assert steps.send(("0/3000148",)) == Query("SELECT 1", (), ONE)  # caught up: the read
    behind = router.route(STALE, 0x3000149).steps(_steps())
    next(behind)
    with pytest.raises(Behind):
        behind.send(("0/3000148",))


def test_a_replica_behind_sends_the_read_to_the_primary(router: Router[str]) -> None:
    route = router.route(STALE, 500)
    moved = router.reroute(route, Behind("behind"))
    assert moved is not None
    assert moved.pool == "p"
    assert sum(r.behind for r in router.stats().replicas) == 1
    assert router.stats().usable == 2  # behind is not down


def test_a_replica_down_sends_the_read_on_and_is_left_out(router: Router[str]) -> None:
    route = router.route(STALE, None)
    moved = router.reroute(route, DatabaseUnavailable("gone"))
    assert moved is not None
    assert moved.pool in {"r1", "r2"} - {route.pool}
    again = router.reroute(moved, DatabaseUnavailable("gone too"))
    assert again is not None
    assert again.pool == "p"
    assert router.stats().usable == 0
    assert router.reroute(again, DatabaseUnavailable("primary down")) is None  # stands


def test_a_replica_s_answer_stands(router: Router[str]) -> None:
    route = router.route(STALE, None)
    assert router.reroute(route, NotFound("product", 7)) is None
    assert router.stats().usable == 2


def test_a_write_may_not_be_marked_for_a_replica() -> None:
    with pytest.raises(ValueError, match="read_only"):
        operation(replica="stale")(_steps)


# -- health ------------------------------------------------------------------------


def _replica(router: Router[str]) -> Replica[str]:
    return router.replicas[0]


def test_a_caught_up_replica_has_no_lag(router: Router[str]) -> None:
    router.observe_primary(100.0, "0/500")
    assert router.judge(_replica(router), 100.1, (True, "0/500", 3600.0)) is None
    assert _replica(router).lag == 0.0


def test_lag_is_bounded_by_the_primary_s_position_history(router: Router[str]) -> None:
    for when, position in ((100.0, "0/100"), (101.0, "0/200"), (102.0, "0/300")):
        router.observe_primary(when, position)
    # Has what the primary had at 101 s: at most 2 s behind at 103 s.
    assert router.judge(_replica(router), 103.0, (True, "0/250", None)) is None
    assert _replica(router).lag == 2.0
    # Its own last replayed commit, if younger, bounds it better.
    assert router.judge(_replica(router), 103.0, (True, "0/250", 0.5)) is None
    assert _replica(router).lag == 0.5


def test_a_replica_behind_the_bound_or_unknown_is_left_out(router: Router[str]) -> None:
    router.observe_primary(100.0, "0/100")
    router.observe_primary(110.0, "0/200")
    replica = _replica(router)
    assert router.judge(replica, 110.0, (True, "0/150", 9.0)) == ("lagging up to 9.0 s (bound 5 s)")
    fresh = Router("p", [replica.url], max_lag=5.0)
    fresh.observe_primary(100.0, "0/100")
    assert fresh.judge(fresh.replicas[0], 100.0, (True, "0/50", None)) == (
        "lag unknown (no commit replayed since it started)"
    )
    assert router.judge(replica, 110.0, (False, None, None)) == "not a standby (promoted?)"


@pytest.mark.parametrize(
    ("replayed_at", "verdict"),
    [(94, None), (93, "lagging over 5.0 s (bound 5 s)"), (98, None)],
)
def test_the_history_keeps_one_sample_as_old_as_the_bound(
    router: Router[str], replayed_at: int, verdict: str | None
) -> None:
    """At 99 s with a 5 s bound: a replica with the primary's position of 94 s is
    within it; one behind that lacks what the primary had 5 s ago."""
    for second in range(100):
        router.observe_primary(float(second), format_lsn(second * 100))
    position = format_lsn(replayed_at * 100)
    assert router.judge(_replica(router), 99.0, (True, position, None)) == verdict


def test_settling_makes_a_replica_usable_only_with_a_pool(router: Router[str]) -> None:
    replica = _replica(router)
    replica.pool = None
    router.settle(replica, None)
    assert not replica.usable
    replica.pool = "r1"
    router.settle(replica, None)
    assert replica.usable
    router.settle(replica, "down: refused")
    assert (replica.usable, replica.problem) == (False, "down: refused")


# -- configuration and URLs ------------------------------------------------------------


def test_replica_urls_are_split_on_commas_but_not_inside_a_multi_host_url() -> None:
    settings = Settings(
        _env_file=None,
        replica_urls=" postgresql://a:1/db, postgres://u:p@b:2,c:3/db?sslmode=disable "
        "postgresql://d/db,",
    )
    urls = replica_urls(settings)
    assert [mask_url(u) for u in urls] == [
        "postgresql://a:1/db",
        "postgresql://u:***@/db?host=b:2&host=c:3&sslmode=disable",
        "postgresql://d/db",
    ]
    assert replica_urls(Settings(_env_file=None)) == []
    assert Settings(_env_file=None, replica_urls=" , ").replica_urls is None


def test_a_bad_replica_url_names_the_setting_and_not_the_password() -> None:
    settings = Settings(_env_file=None, replica_urls="postgresql://a/db, mysql://u:hunter2@b/db")
    with pytest.raises(ConfigurationError) as caught:
        replica_urls(settings)
    assert "SHOPDB_REPLICA_URLS (URL 2)" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_multi_host_url_reaches_libpq_as_host_and_port_lists() -> None:
    url = parse_database_url("postgresql://u:p%40ss@h1:5432,[::1]:5433,h3/shop?sslmode=disable")
    params = psycopg.conninfo.conninfo_to_dict(libpq_url(primary_url(url)))
    assert params == {
        "user": "u",
        "password": "p@ss",
        "dbname": "shop",
        "host": "h1,::1,h3",
        "port": "5432,5433,",
        "sslmode": "disable",
        "target_session_attrs": "read-write",
    }
    assert "p@ss" not in mask_url(url)
    assert "p%40ss" not in mask_url(url)


def test_the_primary_url_asks_for_read_write_only_when_several_hosts_and_unsaid() -> None:
    single = parse_database_url("postgresql://h1/db")
    assert primary_url(single) == single
    said = parse_database_url("postgresql://h1,h2/db?target_session_attrs=primary")
    assert primary_url(said).query["target_session_attrs"] == "primary"
    socket = parse_database_url("postgresql://u@/db?host=/run/postgresql")
    assert libpq_url(socket) == "postgresql://u@/db?host=%2Frun%2Fpostgresql"


@pytest.mark.parametrize(
    ("text", "sqlalchemy_text"),
    [
        ("postgres://u:p%40ss@h:5433/db", "postgresql://u:p%40ss@h:5433/db"),
        ("postgresql://u@/db?host=/run/postgresql&sslmode=disable", None),
        (  # libpq's multi-host form, and SQLAlchemy's spelling of it
            "postgresql://u:p@h1:5432,[::1]:5433,h3/shop?sslmode=disable&application_name=a+b",
            "postgresql://u:p@/shop?host=h1:5432&host=[::1]:5433&host=h3&sslmode=disable"
            "&application_name=a+b",
        ),
        ("postgresql+psycopg://[::1]/my%20db?options=-c%20x%3D1", None),
        ("postgresql://h/db?host=a&host=b&empty=", None),
    ],
)
def test_a_url_reads_and_prints_as_sqlalchemy_reads_and_prints_it(
    text: str, sqlalchemy_text: str | None
) -> None:
    from sqlalchemy.engine import make_url

    ours = parse_database_url(text)
    theirs = make_url(sqlalchemy_text or text).set(drivername="postgresql+psycopg")
    assert ours.sqlalchemy() == theirs
    for hide in (True, False):
        assert ours.render_as_string(hide) == theirs.render_as_string(hide)
    assert "p@ss" not in repr(ours)
    assert "p@ss" not in str(ours)
