"""shopdb.web: one call makes every error a FastAPI app answers with an RFC 9457 problem.

Small apps with the adapter installed, driven through
(httpx's ASGI transport: the app in process): unknown routes, wrong methods, refused fields,
shopdb's errors, unexpected exceptions (the body tells nothing, the log tells
all under the same correlation id), a body over the cap, the OpenAPI document,
and a database that was never migrated, on a real empty PostgreSQL database.
Every test runs on asyncio (``anyio_backend`` in conftest.py).
The reference service shows the same over real HTTP (tests/test_shop_api.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict

import shopdb.web
from shopdb import AsyncStore, establish_async_pool
from shopdb.errors import DatabaseUnavailable, NotFound, TooManyAttempts
from shopdb.testing import DatabaseFactory

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
#: A value no answer may repeat.
SENTINEL = "s3cret-SENTINEL-value"


class Line(BaseModel):
    """A strict body, as shopdb's schemas are."""

    model_config = ConfigDict(strict=True, extra="forbid")

    product_id: int
    quantity: int = 1


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response's problem details, checked to be ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:shopdb:problem:{code}"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert isinstance(body["retryable"], bool)
    return body


def make_app(body_max: int | None = shopdb.web.BODY_MAX) -> FastAPI:
    """An app with the adapter and a route per kind of error."""
    app = FastAPI()
    shopdb.web.install(app, body_max=body_max)

    @app.post("/cart/items", responses=shopdb.web.responses(404, body=True))
    async def add(line: Line) -> Line:
        return line

    @app.get("/items")
    async def items(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[int]:
        return list(range(limit))

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("product", 7)

    @app.get("/throttled")
    async def throttled() -> None:
        raise TooManyAttempts(42)

    @app.get("/down")
    async def down() -> None:
        raise DatabaseUnavailable(f"the database connection failed: {SENTINEL} 10.0.0.5:5432")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout", headers={"X-Pot": "tea"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"internal state: {SENTINEL}")

    return app


def http(app: FastAPI) -> httpx.AsyncClient:
    """A client on ``app`` in process; an unexpected exception is answered, not raised here."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://shop.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client on :func:`make_app`."""
    async with http(make_app()) as client:
        yield client


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/no/such/route"), 404, "not_found")
    assert body["title"] == "Not Found"
    assert body["retryable"] is False


async def test_a_wrong_method_is_a_405_problem_keeping_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/cart/items")
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_an_unexpected_exception_is_a_500_telling_only_a_correlation_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=shopdb.web.LOGGER_NAME):
        response = await client.get("/boom")
    body = problem(response, 500, "internal_error")
    assert SENTINEL not in response.text
    assert "RuntimeError" not in response.text
    correlation_id = body["correlation_id"]
    assert body["instance"] == f"urn:uuid:{correlation_id[:8]}-{correlation_id[8:12]}-" + (
        f"{correlation_id[12:16]}-{correlation_id[16:20]}-{correlation_id[20:]}"
    )
    assert correlation_id in body["detail"]
    [record] = [r for r in caplog.records if r.name == "shopdb.web"]
    assert record.levelno == logging.ERROR
    assert record.correlation_id == correlation_id  # type: ignore[attr-defined]
    assert correlation_id in record.getMessage()
    assert record.exc_info is not None
    assert SENTINEL in str(record.exc_info[1])  # the log has it all


async def test_each_500_has_its_own_correlation_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/boom")).json()["correlation_id"] for _ in range(3)}
    assert len(ids) == 3


async def test_a_refused_field_is_named_and_its_value_never_repeated(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/cart/items", json={"product_id": SENTINEL, "quantity": 2})
    body = problem(response, 422, "invalid_input")
    assert body["errors"] == [{"field": "product_id", "reason": "must be an integer"}]
    assert body["count"] == 1
    assert SENTINEL not in response.text

    unknown = problem(
        await client.post("/cart/items", json={"product_id": 1, "x": 1}), 422, "invalid_input"
    )
    assert unknown["errors"] == [{"field": "x", "reason": "is not a known field"}]
    query = problem(await client.get("/items", params={"limit": 1000}), 422, "invalid_input")
    assert query["errors"] == [{"field": "limit", "reason": "must be at most 100"}]
    json_body = {"content-type": "application/json"}
    cut = b'{"product_id": ' + SENTINEL.encode()
    garbled = await client.post("/cart/items", content=cut, headers=json_body)
    refused = problem(garbled, 422, "invalid_input")
    assert refused["errors"] == [{"field": "body", "reason": "is not valid JSON"}]
    assert SENTINEL not in garbled.text
    # Not UTF-8 inside a string: FastAPI's own 400, a problem too.
    garbled = await client.post("/cart/items", content=cut + b'\xff"}', headers=json_body)
    problem(garbled, 400, "bad_request")
    assert SENTINEL not in garbled.text


async def test_shopdb_errors_are_their_own_problems_with_their_headers(
    client: httpx.AsyncClient,
) -> None:
    missing = problem(await client.get("/missing"), 404, "not_found")
    assert (missing["entity"], missing["id"], missing["detail"]) == (
        "product",
        7,
        "no product with id 7",
    )
    throttled = await client.get("/throttled")
    assert problem(throttled, 429, "too_many_attempts")["retry_after"] == 42
    assert throttled.headers["retry-after"] == "42"


async def test_a_server_error_of_shopdb_tells_its_kind_but_not_its_text(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=shopdb.web.LOGGER_NAME):
        response = await client.get("/down")
    body = problem(response, 503, "unavailable")
    assert body["retryable"] is True
    assert body["title"] == DatabaseUnavailable.title
    assert SENTINEL not in response.text
    assert "10.0.0.5" not in response.text
    [record] = [r for r in caplog.records if r.name == "shopdb.web"]
    assert record.correlation_id == body["correlation_id"]  # type: ignore[attr-defined]
    assert SENTINEL in record.getMessage()


async def test_an_apps_own_http_exception_keeps_its_status_detail_and_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/teapot")
    body = problem(response, 418, "i_m_a_teapot")
    assert body["detail"] == "short and stout"
    assert response.headers["x-pot"] == "tea"


async def test_a_body_over_the_cap_is_a_413_problem() -> None:
    async with http(make_app(body_max=100)) as client:
        fine = await client.post("/cart/items", json={"product_id": 1})
        assert fine.status_code == 200, fine.text
        big = await client.post("/cart/items", json={"product_id": 1, "pad": "x" * 200})
        assert problem(big, 413, "body_too_large")["limit"] == 100
    async with http(make_app(body_max=None)) as client:  # uncapped: the field is refused
        problem(
            await client.post("/cart/items", json={"product_id": 1, "pad": "x" * 200}),
            422,
            "invalid_input",
        )


async def test_the_openapi_document_lists_problems_under_their_media_type(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert {"Problem", "FieldProblem"} <= set(schemas)
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is never sent
    assert "ValidationError" not in schemas
    documented = document["paths"]["/cart/items"]["post"]["responses"]
    assert sorted(documented) == ["200", "400", "404", "413", "422", "500", "503"]
    for status, response in documented.items():
        if status != "200":
            assert response["content"] == {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, status
    undocumented = document["paths"]["/items"]["get"]["responses"]["422"]  # FastAPI's default
    assert undocumented["content"] == {
        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert (await client.get("/openapi.json")).json() == document  # rewritten once, then kept


async def test_responses_takes_the_apps_own_words() -> None:
    listed = shopdb.web.responses(401, meanings={401: "No token"})
    assert listed[401] == {"model": shopdb.web.Problem, "description": "No token"}
    assert sorted(listed) == [401, 422, 500, 503]


# -- a database that was never migrated ----------------------------------------------


async def test_an_unmigrated_database_is_a_clear_problem_hinting_at_setup(
    empty_db: str, shopdb_server: DatabaseFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # The start-up schema check would refuse this database: turned off, so the app starts.
    settings = shopdb_server.settings(check_schema=False)
    pool = await establish_async_pool(empty_db, settings=settings)
    store = AsyncStore(pool)
    app = FastAPI()
    shopdb.web.install(app)

    @app.get("/products")
    async def products() -> list[int]:
        page = await store.search_products(None)
        return [p.id for p in page.items]

    try:
        with caplog.at_level(logging.ERROR, logger=shopdb.web.LOGGER_NAME):
            async with http(app) as client:
                response = await client.get("/products")
    finally:
        await pool.close()
    body = problem(response, 500, "schema_missing")
    assert body["title"] == "The database is not set up: run `shopdb setup`"
    assert body["retryable"] is False
    for internal in ("42P01", 'relation "', "does not exist", "products"):
        assert internal not in response.text, internal
    [record] = [r for r in caplog.records if r.name == "shopdb.web"]
    assert record.correlation_id == body["correlation_id"]  # type: ignore[attr-defined]
    assert 'relation "products" does not exist' in record.getMessage()
    assert "shopdb setup" in record.getMessage()
