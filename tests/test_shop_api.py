"""The reference service (examples/shop_api), over real HTTP: every endpoint, as a client sees it.

A uvicorn process serves the app on a free port against a freshly migrated
database of its own; httpx talks to it over TCP.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from examples.shop_api import tokens
from shopdb import Store
from shopdb.limits import LOGIN_ATTEMPTS, LOGIN_WINDOW
from shopdb.testing import DatabaseFactory

from .shop_api_server import ROOT, SECRET, Service, running_service

PROBLEM = "application/problem+json"
#: Every user signed_up makes has this password.
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def database(shopdb_server: DatabaseFactory) -> Iterator[str]:
    """A migrated database of the module's own; yields its URL."""
    target = shopdb_server.create("shop_api", migrated=True)
    yield shopdb_server.url(target.database)
    shopdb_server.drop(target.database)


@pytest.fixture(scope="module")
def service(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service, running on :func:`database`."""
    with running_service(database, tmp_path_factory.mktemp("shop_api")) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    """An httpx client on the service; a test failing shows the server's log."""
    with httpx.Client(base_url=service.url, timeout=60) as http:
        yield http


def signed_up(client: httpx.Client) -> tuple[dict[str, Any], dict[str, str]]:
    """A new user (as the service shows it) and the headers that sign them in."""
    name = f"user_{secrets.token_hex(4)}"
    password = PASSWORD
    made = client.post(
        "/users", json={"username": name, "email": f"{name}@example.com", "password": password}
    )
    assert made.status_code == 201, made.text
    login = client.post("/login", json={"login": name, "password": password})
    assert login.status_code == 200, login.text
    return made.json(), {"Authorization": f"Bearer {login.json()['access_token']}"}


def make_staff(database: str, user_id: int) -> None:
    """What ``shopdb user staff NAME`` does: the admin call, on the service's database."""
    with psycopg.connect(database) as conn:
        Store.bound(conn).set_role(user_id, "staff")


@pytest.fixture
def staff(client: httpx.Client, database: str) -> dict[str, str]:
    """Headers that sign in a user who is staff, and so may change the catalog."""
    user, auth = signed_up(client)
    make_staff(database, user["id"])
    return auth


def product(
    client: httpx.Client, auth: dict[str, str], stock: int = 5, price: str = "4.50"
) -> dict[str, Any]:
    """A new product with ``stock`` units at ``price``."""
    made = client.post(
        "/products",
        json={"name": f"Tea {secrets.token_hex(3)}", "price": price, "inventory_count": stock},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response's problem details, checked to be ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:shopdb:problem:{code}"
    return body


def stock_of(client: httpx.Client, product_id: int) -> int:
    """The product's inventory_count as the service shows it."""
    count: int = client.get(f"/products/{product_id}").json()["inventory_count"]
    return count


# -- users and tokens -----------------------------------------------------------


def test_register_sign_in_and_see_yourself(client: httpx.Client) -> None:
    user, auth = signed_up(client)
    assert set(user) == {"id", "username", "email", "created_at", "role"}  # no password, no hash
    assert user["role"] == "customer"
    assert client.get("/users/me", headers=auth).json() == user

    again = client.post(
        "/users",
        json={
            "username": user["username"].upper(),
            "email": "other@example.com",
            "password": "long enough",
        },
    )
    assert problem(again, 409, "already_exists")["field"] == "username"

    wrong = client.post("/login", json={"login": user["email"], "password": "not the password"})
    problem(wrong, 401, "unauthorized")
    nobody = client.post("/login", json={"login": "nobody-at-all", "password": "whatever!"})
    problem(nobody, 401, "unauthorized")


def test_guessing_a_password_is_429_with_retry_after_known_login_or_not(
    client: httpx.Client,
) -> None:
    user, _ = signed_up(client)
    for login in (user["username"], f"nobody_{secrets.token_hex(4)}"):
        for _ in range(LOGIN_ATTEMPTS):
            wrong = client.post("/login", json={"login": login, "password": "not the password"})
            problem(wrong, 401, "unauthorized")
        throttled = client.post("/login", json={"login": login, "password": "not the password"})
        body = problem(throttled, 429, "too_many_attempts")
        assert 1 <= body["retry_after"] <= LOGIN_WINDOW
        assert throttled.headers["Retry-After"] == str(body["retry_after"])
        assert body["retryable"] is False
    # The right password waits as well; the user's email is a login of its own.
    right = client.post("/login", json={"login": user["username"], "password": PASSWORD})
    problem(right, 429, "too_many_attempts")
    by_email = client.post("/login", json={"login": user["email"], "password": PASSWORD})
    assert by_email.status_code == 200, by_email.text


def test_a_missing_forged_or_expired_token_is_401(client: httpx.Client) -> None:
    _, auth = signed_up(client)
    token = auth["Authorization"].removeprefix("Bearer ")
    user_id, expires, signature = token.split(".")
    other_user = f"{int(user_id) + 1}.{expires}.{signature}"
    later = f"{user_id}.{int(expires) + 3600}.{signature}"
    expired = tokens.issue(SECRET.encode(), int(user_id), int(time.time()) - 1)
    other_key = tokens.issue(b"not the service's secret", int(user_id), int(expires))
    for bad in (other_user, later, expired, other_key, "garbage", "1.2.3", "1.x.y", "-"):
        response = client.get("/cart", headers={"Authorization": f"Bearer {bad}"})
        problem(response, 401, "unauthorized")
    problem(client.get("/cart"), 401, "unauthorized")
    problem(client.get("/orders", headers={"Authorization": f"Basic {token}"}), 401, "unauthorized")
    problem(
        client.post("/products", json={"name": "x", "price": "1", "inventory_count": 1}),
        401,
        "unauthorized",
    )
    assert client.get("/cart", headers=auth).status_code == 200


# -- products -------------------------------------------------------------------


def test_products_search_filters_sorts_and_pages(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    auth = staff
    tag = f"t{secrets.token_hex(3)}"  # a word only this test's products have
    made = [
        client.post("/products", json=body, headers=auth).json()
        for body in (
            {"name": f"Steel Kettle {tag}", "price": "30", "inventory_count": 2},
            {"name": f"Glass Kettle {tag}", "price": "20.50", "inventory_count": 0},
            {"name": f"Kettle Descaler {tag}", "price": "4.99", "inventory_count": 9},
            {"name": f"Mug {tag}", "price": "5", "inventory_count": 9, "description": "tea"},
        )
    ]
    params: dict[str, str | int] = {
        "q": f"kettles {tag}",
        "sort": "price_asc",
        "max_price": "25",
        "limit": 1,
    }
    first = client.get("/products", params=params).json()
    assert [p["name"] for p in first["items"]] == [f"Kettle Descaler {tag}"]
    second = client.get("/products", params={**params, "cursor": first["next"]}).json()
    assert [p["name"] for p in second["items"]] == [f"Glass Kettle {tag}"]
    assert second["next"] is None
    in_stock = client.get("/products", params={"q": f"kettle {tag}", "in_stock": "true"}).json()
    assert {p["id"] for p in in_stock["items"]} == {made[0]["id"], made[2]["id"]}
    # The cursor belongs to its search: another search refuses it.
    problem(
        client.get("/products", params={**params, "q": "mug", "cursor": first["next"]}),
        422,
        "invalid_input",
    )
    refusals: list[tuple[dict[str, str | int], str]] = [
        ({"q": "x" * 201}, "q"),
        ({"q": " ".join("w" * 17)}, "q"),
        ({"q": "nul\x00"}, "q"),
        ({"min_price": "5", "max_price": "4"}, "min_price"),
        ({"min_price": "1.234"}, "min_price"),
        ({"sort": "cheapest"}, "sort"),
        ({"limit": 101}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ]
    for bad, field in refusals:
        refused = problem(client.get("/products", params=bad), 422, "invalid_input")
        assert refused["errors"][0]["field"] == field, (bad, refused)
    assert client.get("/products", params={"q": '"unclosed & | ! :*'}).status_code == 200


def test_products_create_get_list_update_delete(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    auth = staff
    tea = product(client, auth, stock=7, price="4.5")
    assert tea["price"] == "4.50"
    assert client.get(f"/products/{tea['id']}").json() == tea

    more = [product(client, auth) for _ in range(3)]
    page = client.get("/products", params={"limit": 2}).json()  # newest first
    assert [p["id"] for p in page["items"]] == [more[2]["id"], more[1]["id"]]
    rest = client.get("/products", params={"limit": 2, "cursor": page["next"]}).json()
    assert rest["items"][0] == more[0]
    problem(client.get("/products", params={"limit": 0}), 422, "invalid_input")

    changed = client.patch(
        f"/products/{tea['id']}", json={"price": "5", "description": "green"}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**tea, "price": "5.00", "description": "green"}
    cleared = client.patch(f"/products/{tea['id']}", json={"description": None}, headers=auth)
    assert cleared.json()["description"] is None
    refused = client.patch(
        f"/products/{tea['id']}", json={"name": None, "colour": "red"}, headers=auth
    )
    fields = {e["field"] for e in problem(refused, 422, "invalid_input")["errors"]}
    assert fields == {"name", "colour"}

    assert client.delete(f"/products/{tea['id']}", headers=auth).status_code == 204
    gone = problem(client.get(f"/products/{tea['id']}"), 404, "not_found")
    assert gone["entity"] == "product"
    problem(
        client.patch(f"/products/{tea['id']}", json={"price": "1"}, headers=auth), 404, "not_found"
    )
    problem(client.get("/products/0"), 422, "invalid_input")
    problem(client.get("/products/2147483648"), 422, "invalid_input")


def test_only_staff_may_change_the_catalog(
    client: httpx.Client, database: str, staff: dict[str, str]
) -> None:
    user, customer = signed_up(client)
    tea = product(client, staff, stock=5, price="4.00")
    before = _snapshot(database)
    writes = [
        ("POST", "/products", {"name": "Free lamp", "price": "0.00", "inventory_count": 1}),
        ("PATCH", f"/products/{tea['id']}", {"price": "0.00", "inventory_count": 2**31 - 1}),
        ("DELETE", f"/products/{tea['id']}", None),
    ]
    for method, path, body in writes:
        response = client.request(method, path, json=body, headers=customer)
        assert problem(response, 403, "forbidden")["required_role"] == "staff"
    assert _snapshot(database) == before
    assert client.get("/users/me", headers=customer).json()["role"] == "customer"

    make_staff(database, user["id"])  # shopdb user staff NAME
    assert client.get("/users/me", headers=customer).json()["role"] == "staff"
    statuses = [client.request(m, p, json=b, headers=customer).status_code for m, p, b in writes]
    assert statuses == [201, 200, 204]
    with psycopg.connect(database) as conn:
        Store.bound(conn).set_role(user["id"], "customer")  # and back: no token reissued
    problem(client.post("/products", json=writes[0][2], headers=customer), 403, "forbidden")


def test_a_registration_cannot_make_itself_staff(client: httpx.Client, database: str) -> None:
    name = f"mallory_{secrets.token_hex(4)}"
    body = {"username": name, "email": f"{name}@x.io", "password": "long enough", "role": "staff"}
    refused = problem(client.post("/users", json=body), 422, "invalid_input")
    assert {"field": "role", "reason": "is not a known field"} in refused["errors"]
    with psycopg.connect(database) as conn:
        found = conn.execute("SELECT count(*) FROM users WHERE username = %s", (name,))
        assert found.fetchone() == (0,)


# -- the cart, checkout and orders ----------------------------------------------


def test_checkout_sells_only_at_the_total_the_shopper_saw(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    _, auth = signed_up(client)
    lamp = product(client, staff, stock=5, price="10.00")
    cart = client.post("/cart/items", json={"product_id": lamp["id"]}, headers=auth).json()
    assert cart["total"] == "10.00"  # what the shopper sees, and agrees to
    raised = client.patch(f"/products/{lamp['id']}", json={"price": "999.99"}, headers=staff)
    assert raised.status_code == 200, raised.text

    seen = {"expected_total": cart["total"]}
    refused = problem(client.post("/cart/checkout", json=seen, headers=auth), 409, "price_changed")
    assert refused["actual_total"] == "999.99"
    assert "expected_total" not in refused  # the caller's own value is not sent back
    assert refused["changes"] == [
        {"product_id": lamp["id"], "old_unit_price": "10.00", "new_unit_price": "999.99"}
    ]
    assert stock_of(client, lamp["id"]) == 5
    assert client.get("/cart", headers=auth).json()["id"] == cart["id"]  # still open
    assert client.get("/orders", headers=auth).json() == {"items": [], "next": None}
    for bad in ("NaN", "10.001", "-1", 10.0):
        wrong = client.post("/cart/checkout", json={"expected_total": bad}, headers=auth)
        assert problem(wrong, 422, "invalid_input")["errors"][0]["field"] == "expected_total"

    # The shopper sees the new total and agrees to it: sold, at that price.
    now = client.get("/cart", headers=auth).json()["total"]
    order = client.post("/cart/checkout", json={"expected_total": now}, headers=auth)
    assert order.status_code == 201, order.text
    assert order.json()["total"] == "999.99"
    assert order.json()["items"][0]["unit_price"] == "999.99"
    assert stock_of(client, lamp["id"]) == 4


# -- the cart, checkout and orders (continued) ----------------------------------


def test_the_cart_add_set_remove_view(client: httpx.Client, staff: dict[str, str]) -> None:
    _, auth = signed_up(client)
    tea, cake = product(client, staff, stock=5), product(client, staff, stock=2, price="2.25")

    empty = client.get("/cart", headers=auth).json()
    assert (empty["status"], empty["items"], empty["total"]) == ("open", [], "0.00")
    client.post("/cart/items", json={"product_id": tea["id"]}, headers=auth)
    cart = client.post(
        "/cart/items", json={"product_id": tea["id"], "quantity": 2}, headers=auth
    ).json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(tea["id"], 3)]
    cart = client.put(f"/cart/items/{cake['id']}", json={"quantity": 2}, headers=auth).json()
    assert cart["total"] == "18.00"  # 3 x 4.50 + 2 x 2.25
    cart = client.put(f"/cart/items/{tea['id']}", json={"quantity": 1}, headers=auth).json()
    assert cart["total"] == "9.00"
    cart = client.delete(f"/cart/items/{cake['id']}", headers=auth).json()
    assert [i["product_id"] for i in cart["items"]] == [tea["id"]]
    problem(client.delete(f"/cart/items/{cake['id']}", headers=auth), 404, "not_found")
    cart = client.put(f"/cart/items/{tea['id']}", json={"quantity": 0}, headers=auth).json()
    assert cart["items"] == []
    assert client.get("/cart", headers=auth).json() == cart
    missing = client.post("/cart/items", json={"product_id": 2_000_000_000}, headers=auth)
    assert problem(missing, 404, "not_found")["entity"] == "product"


def test_checkout_places_an_order_once_however_often_it_is_retried(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    _, auth = signed_up(client)
    tea = product(client, staff, stock=5)
    client.post("/cart/items", json={"product_id": tea["id"], "quantity": 2}, headers=auth)
    cart_id = client.get("/cart", headers=auth).json()["id"]

    placed = client.post("/cart/checkout", params={"cart_id": cart_id}, headers=auth)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["status"], order["total"], order["cart_id"]) == ("placed", "9.00", cart_id)
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(tea["id"], 2)]
    assert stock_of(client, tea["id"]) == 3

    # The response was lost: the client retries with the cart's id and gets the same order.
    for _ in range(2):
        again = client.post("/cart/checkout", params={"cart_id": cart_id}, headers=auth)
        assert again.json() == order
    assert stock_of(client, tea["id"]) == 3
    # A blind retry (no cart id) finds no open cart with anything in it.
    problem(client.post("/cart/checkout", headers=auth), 409, "empty_cart")
    assert client.get("/cart", headers=auth).json()["id"] != cart_id  # a new open cart

    listed = client.get("/orders", headers=auth).json()["items"]
    assert [o["id"] for o in listed] == [order["id"]]
    assert listed[0] == {k: v for k, v in order.items() if k != "items"}
    assert client.get(f"/orders/{order['id']}", headers=auth).json() == order

    cancelled = client.post(f"/orders/{order['id']}/cancel", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    assert stock_of(client, tea["id"]) == 5
    twice = problem(
        client.post(f"/orders/{order['id']}/cancel", headers=auth), 409, "invalid_transition"
    )
    assert (twice["order_status"], twice["wanted"]) == ("cancelled", "cancelled")
    assert stock_of(client, tea["id"]) == 5


def test_another_users_order_and_cart_do_not_exist_for_you(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    _, alice = signed_up(client)
    _, bob = signed_up(client)
    tea = product(client, staff)
    client.post("/cart/items", json={"product_id": tea["id"]}, headers=alice)
    cart_id = client.get("/cart", headers=alice).json()["id"]
    order = client.post("/cart/checkout", headers=alice).json()

    problem(client.get(f"/orders/{order['id']}", headers=bob), 404, "not_found")
    problem(client.post(f"/orders/{order['id']}/cancel", headers=bob), 404, "not_found")
    problem(
        client.post("/cart/checkout", params={"cart_id": cart_id}, headers=bob), 404, "not_found"
    )
    assert client.get("/orders", headers=bob).json()["items"] == []
    assert client.get(f"/orders/{order['id']}", headers=alice).json()["status"] == "placed"
    problem(client.get("/orders/2000000000", headers=alice), 404, "not_found")


def test_short_stock_is_409_with_every_shortage_and_changes_nothing(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    _, auth = signed_up(client)
    tea, cake = product(client, staff, stock=3), product(client, staff, stock=2)
    too_many = client.post(
        "/cart/items", json={"product_id": tea["id"], "quantity": 4}, headers=auth
    )
    shortages = problem(too_many, 409, "insufficient_inventory")["shortages"]
    assert shortages == [{"product_id": tea["id"], "wanted": 4, "available": 3}]

    client.post("/cart/items", json={"product_id": tea["id"], "quantity": 3}, headers=auth)
    client.post("/cart/items", json={"product_id": cake["id"], "quantity": 2}, headers=auth)
    for item in (tea, cake):  # stock sold elsewhere meanwhile
        client.patch(f"/products/{item['id']}", json={"inventory_count": 1}, headers=staff)
    short = problem(client.post("/cart/checkout", headers=auth), 409, "insufficient_inventory")
    assert short["shortages"] == [
        {"product_id": tea["id"], "wanted": 3, "available": 1},
        {"product_id": cake["id"], "wanted": 2, "available": 1},
    ]
    assert (stock_of(client, tea["id"]), stock_of(client, cake["id"])) == (1, 1)
    assert len(client.get("/cart", headers=auth).json()["items"]) == 2
    assert client.get("/orders", headers=auth).json() == {"items": [], "next": None}


def test_an_empty_cart_cannot_be_checked_out(client: httpx.Client) -> None:
    _, auth = signed_up(client)
    problem(client.post("/cart/checkout", headers=auth), 409, "empty_cart")
    client.get("/cart", headers=auth)  # opened, still empty
    problem(client.post("/cart/checkout", headers=auth), 409, "empty_cart")


# -- hostile bodies -------------------------------------------------------------

HOSTILE = [
    ("POST", "/products", '{"name":"a","price":"NaN","inventory_count":1}', "price"),
    ("POST", "/products", '{"name":"a","price":"Infinity","inventory_count":1}', "price"),
    ("POST", "/products", '{"name":"a","price":"-Infinity","inventory_count":1}', "price"),
    ("POST", "/products", '{"name":"a","price":NaN,"inventory_count":1}', "price"),
    ("POST", "/products", '{"name":"a","price":1e400,"inventory_count":1}', "price"),
    ("POST", "/products", '{"name":"a","price":"1.00","inventory_count":1e400}', "inventory_count"),
    ("POST", "/products", '{"name":"\\ud800","price":"1.00","inventory_count":1}', "name"),
    (
        "POST",
        "/products",
        '{"name":"a","price":"1.00","inventory_count":1,"description":"\\udfff"}',
        "description",
    ),
    ("PATCH", "/products/{product}", '{"price":"NaN"}', "price"),
    ("PATCH", "/products/{product}", '{"inventory_count":1e400}', "inventory_count"),
    ("PATCH", "/products/{product}", '{"name":"\\ud800"}', "name"),
    (
        "POST",
        "/users",
        '{"username":"\\ud800","email":"x@example.com","password":"long enough"}',
        "username",
    ),
    (
        "POST",
        "/users",
        '{"username":"x","email":"x@example.com","password":"\\ud800 long enough"}',
        "password",
    ),
    ("POST", "/cart/items", '{"product_id":{product},"quantity":1e400}', "quantity"),
    ("POST", "/cart/items", '{"product_id":{product},"quantity":NaN}', "quantity"),
    ("PUT", "/cart/items/{product}", '{"quantity":Infinity}', "quantity"),
    ("POST", "/products", '{"name":"a","price":"1.00",', "body"),
    ("POST", "/login", '{"login":"\\ud800","password":"\\ud800"}', "login"),
]


def _snapshot(database: str) -> tuple[Any, ...]:
    """Every row of every table the requests could touch, as one fingerprint."""
    tables = ("users", "products", "carts", "cart_items", "inventory_adjustments", "orders")
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT "
            + ", ".join(
                f"(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {t} t)"
                for t in tables
            )
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(("method", "path", "body", "field"), HOSTILE)
def test_hostile_bodies_are_422_naming_the_field_and_change_nothing(  # noqa: PLR0917
    client: httpx.Client,
    database: str,
    staff: dict[str, str],
    method: str,
    path: str,
    body: str,
    field: str,
) -> None:
    auth = staff  # who may change the catalog, and shop
    tea = product(client, auth)
    client.get("/cart", headers=auth)  # the cart exists before the snapshot
    before = _snapshot(database)
    response = client.request(
        method,
        path.replace("{product}", str(tea["id"])),
        content=body.replace("{product}", str(tea["id"])).encode(),
        headers={**auth, "Content-Type": "application/json"},
    )
    refused = problem(response, 422, "invalid_input")
    assert field in {e["field"] for e in refused["errors"]}, refused
    assert _snapshot(database) == before


# -- the OpenAPI document and the README's adapter ------------------------------


def test_the_openapi_document_is_shopdbs_schemas_and_problem_details(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"NewUser", "NewProduct", "ProductChanges", "CartView", "Order", "Problem"} <= set(
        schemas
    )
    assert schemas["NewProduct"]["properties"]["price"]["type"] == "string"
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM], (method, path, status)


def test_the_service_handles_errors_with_the_readmes_one_call_and_no_code_of_its_own() -> None:
    readme = (ROOT / "README.md").read_text()
    errors = readme.split("\n## Errors\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", errors, re.DOTALL)
    assert block is not None
    assert "shopdb.web.install(app)\n" in block.group(1)
    service = (ROOT / "examples" / "shop_api" / "app.py").read_text()
    assert "\nshopdb.web.install(app)\n" in service
    # No problem code of its own: no handler, no problem model, no response built by hand.
    for hand_written in (
        "exception_handler",
        "class Problem",
        "JSONResponse",
        "application/problem",
    ):
        assert hand_written not in service, hand_written
    assert not (ROOT / "examples" / "shop_api" / "body_limit.py").exists()


def test_unknown_routes_and_methods_are_problems_too(client: httpx.Client) -> None:
    problem(client.get("/no/such/route"), 404, "not_found")
    refused = problem(client.delete("/cart/checkout"), 405, "method_not_allowed")
    assert refused["detail"] == "Method Not Allowed"
    assert client.delete("/cart/checkout").headers["allow"] == "POST"
    unreadable = client.post(
        "/login", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert problem(unreadable, 422, "invalid_input")["errors"][0]["field"] == "body"


# -- bounds: what one client can make the service hold ---------------------------


def test_a_body_over_1_mib_is_413_before_it_is_parsed(client: httpx.Client) -> None:
    # The issue's body: a million keys, 11 MiB, which used to take 16 s and 1.1 GiB.
    body = json.dumps({f"k{i}": 1 for i in range(1_000_000)}).encode()
    refused = problem(
        client.post("/login", content=body, headers={"content-type": "application/json"}),
        413,
        "body_too_large",
    )
    assert refused["limit"] == 1024 * 1024
    # Chunked, with no Content-Length to refuse it by: read up to the cap, then refused.
    chunks = (b" " * 65536 for _ in range(20))
    problem(
        client.post("/login", content=chunks, headers={"content-type": "application/json"}),
        413,
        "body_too_large",
    )


def test_headers_over_16_kib_are_refused(client: httpx.Client, service: Service) -> None:
    # The service runs on httptools, which bounds no header: header_limit.py does.
    assert client.get("/health", headers={"x-pad": "a" * 8 * 1024}).status_code == 200
    refused = client.get("/health", headers={"x-pad": "a" * 17 * 1024})
    assert refused.status_code == 400
    # A head that never ends is cut off after the bound, not held: 400, then closed.
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        answer = b""
        with contextlib.suppress(ConnectionError):
            for _ in range(64):
                sock.sendall(b"a" * 4096)
        with contextlib.suppress(ConnectionError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]


def test_a_body_of_many_bad_keys_gets_a_small_answer(client: httpx.Client) -> None:
    keys = 60_000
    body = json.dumps({f"k{i}": 1 for i in range(keys)}).encode()
    assert len(body) < 1024 * 1024
    response = client.post("/login", content=body, headers={"content-type": "application/json"})
    refused = problem(response, 422, "invalid_input")
    assert len(refused["errors"]) == 20
    assert refused["count"] == keys + 2  # and login, password missing
    assert len(response.content) < 4096


def test_a_cart_of_100_products_refuses_the_101st(
    client: httpx.Client, staff: dict[str, str]
) -> None:
    _, auth = signed_up(client)
    seller = staff
    ids = [product(client, seller)["id"] for _ in range(101)]
    for product_id in ids[:100]:
        added = client.post("/cart/items", json={"product_id": product_id}, headers=auth)
        assert added.status_code == 200, added.text
    full = problem(
        client.post("/cart/items", json={"product_id": ids[100]}, headers=auth), 409, "cart_full"
    )
    assert full["limit"] == 100
    assert len(client.get("/cart", headers=auth).json()["items"]) == 100


def test_a_page_of_products_is_at_most_100(client: httpx.Client) -> None:
    refused = problem(client.get("/products", params={"limit": 1000}), 422, "invalid_input")
    assert refused["errors"][0]["field"] == "limit"


def test_the_log_holds_no_traceback(service: Service) -> None:
    # Runs after the tests above (pytest keeps file order): nothing reached a 500.
    assert "Traceback" not in service.output(), service.output()
