""":func:`install`: the problem+json exception handlers, the body cap and the OpenAPI rewrite."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shopdb.errors import JSON, PROBLEM_TYPE, InvalidInput, ShopError
from shopdb.web.body_limit import BODY_MAX, BodyLimit
from shopdb.web.problems import MEDIA_TYPE, Problem

#: The logger server errors are written to, each with its ``correlation_id``.
LOGGER_NAME = "shopdb.web"
_log = logging.getLogger(LOGGER_NAME)
#: Longest request path a log line repeats.
_PATH_MAX = 200
_SCHEMAS = "#/components/schemas/"


def install(app: Starlette, *, body_max: int | None = BODY_MAX) -> None:
    """Make every error ``app`` answers with an RFC 9457 problem (``application/problem+json``).

    Call it once, where the app is made (before it serves). It installs handlers for:

    * :class:`~shopdb.errors.ShopError`: its ``problem()``, ``http_status`` and
      ``headers()``;
    * FastAPI's ``RequestValidationError``: :class:`~shopdb.errors.InvalidInput`'s
      422, naming every refused field in plain English, never its value;
    * Starlette's ``HTTPException`` (FastAPI's too): 404 for an unknown route,
      405 keeping its ``Allow`` header, 400 for an unreadable body, and the
      app's own, with the status, headers and detail they carry;
    * any other exception: a 500 ``internal_error`` holding no text of the
      exception, only a ``correlation_id`` (and ``instance``: ``urn:uuid:<id>``),
      logged on the ``shopdb.web`` logger with the same id and the traceback.

    A ShopError with a 5xx status is shown by kind only (``code``, ``title``,
    ``retryable``, its details) with a correlation id: its text, which may
    hold the database's own words, goes to the log. (Starlette re-raises an
    unexpected exception after answering, so the server logs it too.)

    ``body_max`` caps request bodies (:class:`~shopdb.web.BodyLimit`, a 413
    before the body is parsed); ``None`` leaves bodies uncapped. On FastAPI,
    the OpenAPI document lists :class:`~shopdb.web.Problem` responses
    (:func:`~shopdb.web.responses`, and FastAPI's own 422) under
    ``application/problem+json``.
    """
    app.add_exception_handler(ShopError, _shop_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    if body_max is not None:
        app.add_middleware(BodyLimit, limit=body_max)
    if isinstance(app, FastAPI):
        # FastAPI's documented way to change the document: assign app.openapi.
        app.openapi = _documented(app)  # type: ignore[method-assign]


def _answer(
    problem: dict[str, JSON], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(problem, status, headers, media_type=MEDIA_TYPE)


def _incident(request: Request, exc: BaseException, *, trace: bool) -> dict[str, JSON]:
    """Log ``exc`` under a new correlation id; the members that tell the client that id."""
    occurrence = uuid.uuid4()
    correlation_id = occurrence.hex
    path = request.url.path
    _log.log(
        logging.ERROR if trace else logging.WARNING,
        "%s %r failed (correlation_id=%s): %s: %s",
        request.method,
        path if len(path) <= _PATH_MAX else path[:_PATH_MAX] + "...",
        correlation_id,
        type(exc).__name__,
        exc,
        exc_info=exc if trace else None,
        extra={"correlation_id": correlation_id},
    )
    return {
        "detail": "the server could not complete the request; its log holds the details "
        f"under correlation id {correlation_id}",
        "instance": occurrence.urn,
        "correlation_id": correlation_id,
    }


async def _shop_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ShopError):  # pragma: no cover (registered for ShopError only)
        raise exc
    problem = exc.problem()
    if exc.http_status >= 500:
        # A passing fault (retryable) is a warning; one someone must fix, an error and its trace.
        problem.update(_incident(request, exc, trace=not exc.retryable))
    return _answer(problem, exc.http_status, exc.headers())


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    refused = InvalidInput.from_errors(exc.errors())
    return _answer(refused.problem(), refused.http_status, refused.headers())


def _code(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "http_error"
    return re.sub(r"[^a-z]+", "_", phrase.lower()).strip("_")


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    status = exc.status_code
    if status in (204, 304) or status < 400:  # no body may follow (Starlette's rule too)
        return Response(status_code=status, headers=exc.headers)
    code = _code(status)
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    problem: dict[str, JSON] = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": exc.detail if isinstance(exc.detail, str) else title,
        "code": code,
        "retryable": False,
    }
    return _answer(problem, status, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    problem: dict[str, JSON] = {
        "type": PROBLEM_TYPE + "internal_error",
        "title": "The server failed",
        "status": 500,
        "code": "internal_error",
        "retryable": False,
        **_incident(request, exc, trace=True),
    }
    return _answer(problem, 500)


def _documented(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``, with every problem response under ``application/problem+json``."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _rewrite(plain())  # FastAPI keeps the document as app.openapi_schema
        return app.openapi_schema or {}

    return openapi


def _rewrite(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem_ref = _SCHEMAS + Problem.__name__
    used = False
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                ref = str(content.get("application/json", {}).get("schema", {}).get("$ref", ""))
                if ref == problem_ref:
                    content[MEDIA_TYPE] = content.pop("application/json")
                elif ref == _SCHEMAS + "HTTPValidationError":  # FastAPI's own 422: now a Problem
                    content.pop("application/json")
                    content[MEDIA_TYPE] = {"schema": {"$ref": problem_ref}}
                    used = True
    if used:
        _, defined = models_json_schema(
            [(Problem, "serialization")], ref_template=_SCHEMAS + "{model}"
        )
        for name, schema in defined.get("$defs", {}).items():
            schemas.setdefault(name, schema)
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, if nothing names them
        if unused in schemas and f'"{_SCHEMAS}{unused}"' not in json.dumps(document):
            del schemas[unused]
