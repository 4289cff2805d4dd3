"""What an error looks like on the wire, for OpenAPI: :class:`Problem` and :func:`responses`.

:class:`Problem` is the JSON Schema of :meth:`shopdb.errors.ShopError.problem`
(RFC 9457 problem details with shopdb's extension members), and of every
other problem :func:`shopdb.web.install` answers with. :func:`responses`
lists an operation's error responses with it, for FastAPI's ``responses=``;
:func:`~shopdb.web.install` then documents them under
``application/problem+json``, the media type they are sent as.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: The media type of every problem (RFC 9457).
MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    """One refused field (dotted for a nested one) and why, in plain English."""

    field: str
    reason: str


class ProblemShortage(BaseModel):
    """A product a cart wants more of than there is (``insufficient_inventory``)."""

    product_id: int
    wanted: int
    available: int


class ProblemPriceChange(BaseModel):
    """A cart line whose price moved since it was put in the cart (``price_changed``)."""

    product_id: int
    old_unit_price: str
    new_unit_price: str


class Problem(BaseModel):
    """An RFC 9457 problem details object, as every error of a shopdb app is sent.

    ``type``, ``title``, ``status`` and ``detail`` as the RFC defines them;
    ``code`` names the kind of error (``not_found``, ``invalid_input``, ...)
    and ``retryable`` says whether the same request may succeed if simply sent
    again. The members after them depend on the kind (see the README,
    "Errors"); a server error (5xx) carries ``instance`` and
    ``correlation_id``, the id its log record holds too.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:shopdb:problem:<code>")
    title: str
    status: int
    detail: str
    code: str
    retryable: bool
    instance: str | None = Field(
        default=None, description="urn:uuid:<correlation_id>: this occurrence (server errors)"
    )
    correlation_id: str | None = Field(
        default=None, description="The id the server's log gives this error (server errors)"
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="invalid_input: the first 20 refused fields"
    )
    count: int | None = Field(default=None, description="invalid_input: how many were refused")
    field: str | None = Field(default=None, description="already_exists: the field taken")
    entity: str | None = Field(default=None, description="not_found: the kind of row")
    id: int | str | None = Field(default=None, description="not_found: the id asked for")
    shortages: list[ProblemShortage] | None = None
    retry_after: int | None = Field(
        default=None, description="Seconds to wait (429), as in the Retry-After header"
    )
    required_role: str | None = None
    actual_total: str | None = None
    changes: list[ProblemPriceChange] | None = None
    cart_id: int | None = None
    limit: int | None = None
    outcome_unknown: bool | None = Field(
        default=None,
        description="unavailable: the write may have happened although no answer came; "
        "`retryable` is then false unless the request carried an Idempotency-Key",
    )
    order_id: int | None = Field(
        default=None, description="idempotency_key_reused: the order the key placed"
    )


#: What each status means, as :func:`responses` documents it unless told otherwise.
MEANINGS: Mapping[int, str] = {
    400: "The request could not be read (a body that is not UTF-8 or not JSON)",
    401: "Not signed in",
    403: "Signed in, but not allowed (`required_role` says who may)",
    404: "Not found",
    405: "The path does not take this method (the Allow header lists those it takes)",
    409: "Refused by the state of things (taken, out of stock, empty or full cart, "
    "an idempotency key used for another checkout, ...)",
    413: "The request body is larger than the app accepts (`limit`, in bytes)",
    422: "A field was refused: `errors` names every one",
    429: "Too many attempts lately: wait `retry_after` seconds (also in the Retry-After header)",
    500: "The server failed: the body says nothing more than `correlation_id`, "
    "which the server's log holds too",
    503: "The database is unavailable or busy: `retryable` says whether to send it again "
    "(not a write whose `outcome_unknown` is true, unless it carried an idempotency key)",
}


def responses(
    *statuses: int, body: bool = False, meanings: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The error responses of one operation, for FastAPI's ``responses=``.

    ``statuses`` are those the operation answers on purpose (404, 409, ...);
    every operation may also answer 422 (a refused parameter), 500 and 503, and
    one that reads a ``body`` 400 (unreadable) and 413 (too large). Each is a
    :class:`Problem`, documented under ``application/problem+json`` once
    :func:`shopdb.web.install` has run on the app. ``meanings`` overrides
    the description of a status (:data:`MEANINGS` gives the rest)::

        @app.post("/cart/items", responses=shopdb.web.responses(401, 404, 409, body=True))
    """
    described = {**MEANINGS, **(meanings or {})}
    listed = sorted({*statuses, 422, 500, 503, *((400, 413) if body else ())})
    return {
        status: {"model": Problem, "description": described.get(status, "An error")}
        for status in listed
    }
