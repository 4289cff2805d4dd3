"""schemathesis fuzzes the running reference service from its own /openapi.json.

Every operation, signed in (a valid bearer token on every request), for a
bounded number of examples: no response may be a server error, have a status
the document does not list, another content type, or a body its schema
refuses. The fuzzer runs as its CLI does for anyone (``schemathesis run``),
against a uvicorn process over TCP. ``SHOP_API_FUZZ_EXAMPLES`` and
``SHOP_API_FUZZ_SEED`` change the budget and the seed (fixed, so CI repeats
the same run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from shopdb import Store
from shopdb.testing import DatabaseFactory

from .shop_api_server import Service, running_service

# Not positive_data_acceptance nor negative_data_rejection: a JSON Schema cannot
# express Unicode normalization, so a username or email the schema accepts may
# be refused after NFKC ("\u00b4" becomes a space), and one it refuses may be
# accepted ("\uff20" becomes "@"); nor PRECIS, which refuses symbols in a username
# the schema lets through; see the README, "Models and JSON".
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
EXAMPLES = int(os.environ.get("SHOP_API_FUZZ_EXAMPLES", "40"))
SEED = int(os.environ.get("SHOP_API_FUZZ_SEED", "20261127"))
#: A hang guard only: the run takes well under a minute on a quiet machine.
FUZZ_TIMEOUT = 900


@pytest.fixture(scope="module")
def database(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database of the module's own; yields its URL."""
    target = shopdb_server.create("shop_api_fuzz", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture(scope="module")
def service(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service on :func:`database`."""
    with running_service(database, tmp_path_factory.mktemp("shop_api_fuzz")) as running:
        yield running


def seeded(service: Service, database: str) -> str:
    """Products, a cart and an order to find (ids 1, 2, ...); a token for their user, who
    is staff (so the fuzzer reaches the catalog writes too)."""
    with httpx.Client(base_url=service.url, timeout=60) as client:
        user = {"username": "fuzzer", "email": "fuzzer@example.com", "password": "fuzz password"}
        made = client.post("/users", json=user)
        assert made.status_code == 201
        with psycopg.connect(database) as conn:
            Store.bound(conn).set_role(made.json()["id"], "staff")
        login = client.post("/login", json={"login": "fuzzer", "password": "fuzz password"})
        token: str = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for n in range(1, 6):
            made = client.post(
                "/products",
                json={"name": f"Product {n}", "price": f"{n}.25", "inventory_count": 1000},
                headers=auth,
            )
            assert made.status_code == 201, made.text
        client.post("/cart/items", json={"product_id": 1, "quantity": 2}, headers=auth)
        assert client.post("/cart/checkout", headers=auth).status_code == 201
        client.post("/cart/items", json={"product_id": 2, "quantity": 1}, headers=auth)
    return token


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    service: Service, database: str, tmp_path: Path
) -> None:
    token = seeded(service, database)
    operations = sum(
        len(methods)
        for methods in httpx.get(f"{service.url}/openapi.json").json()["paths"].values()
    )
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{service.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    run = subprocess.run(
        command,
        cwd=tmp_path,  # schemathesis and hypothesis write their files here
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=FUZZ_TIMEOUT,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"{report}\n--- the service's log ---\n{service.output()[-20000:]}"
    assert re.search(rf"Tested:\s+{operations}\b", report), report
    assert "Traceback" not in service.output(), service.output()
