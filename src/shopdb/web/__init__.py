"""shopdb on the web: problem details (RFC 9457) for Starlette-based frameworks, FastAPI first.

One call makes every error an app can meet leave as ``application/problem+json``::

    from fastapi import FastAPI
    import shopdb.web

    app = FastAPI()
    shopdb.web.install(app)

    @app.get("/products/{product_id}", responses=shopdb.web.responses(404))
    async def get_product(product_id: int) -> ProductRead: ...

What :func:`install` answers with:

* every :class:`~shopdb.errors.ShopError`: its :meth:`~shopdb.errors.ShopError.problem`,
  :attr:`~shopdb.errors.ShopError.http_status` and
  :meth:`~shopdb.errors.ShopError.headers` (``Retry-After`` on a 429);
* FastAPI's request validation errors: an ``invalid_input`` 422 naming every
  refused field with a plain-English reason, never the value sent;
* Starlette's HTTP errors (404 for an unknown route, 405 with its ``Allow``
  header, 400 for a body that cannot be read, an app's own ``HTTPException``);
* an unexpected exception: a 500 ``internal_error`` whose body holds no text
  of the exception, only a ``correlation_id`` (and ``instance``,
  ``urn:uuid:<id>``), the exception being logged with the same id on the
  ``shopdb.web`` logger.

A server error (5xx) never shows its :class:`~shopdb.errors.ShopError` text
either: the body keeps the kind (``code``, ``title``, ``retryable``) and
gets a correlation id, and the log holds the text and the driver's error.
:func:`install` also caps request bodies (:class:`BodyLimit`, 1 MiB unless
told otherwise) and, on FastAPI, documents errors in OpenAPI under
``application/problem+json`` with the :class:`Problem` schema.

Needs the ``web`` extra (``pip install 'shopdb[web]'``: FastAPI).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401 (the extra's dependency, checked once with a clear message)
except ImportError as missing:  # pragma: no cover (the test environment has it)
    raise ImportError(
        "shopdb.web needs FastAPI: install shopdb's web extra (pip install 'shopdb[web]')"
    ) from missing

from shopdb.web.body_limit import BODY_MAX, BodyLimit, BodyTooLarge
from shopdb.web.handlers import LOGGER_NAME, install
from shopdb.web.problems import (
    MEANINGS,
    MEDIA_TYPE,
    FieldProblem,
    Problem,
    ProblemPriceChange,
    ProblemShortage,
    responses,
)

__all__ = [
    "BODY_MAX",
    "LOGGER_NAME",
    "MEANINGS",
    "MEDIA_TYPE",
    "BodyLimit",
    "BodyTooLarge",
    "FieldProblem",
    "Problem",
    "ProblemPriceChange",
    "ProblemShortage",
    "install",
    "responses",
]
