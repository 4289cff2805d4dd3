"""The reference web service on shopdb: the spec's endpoints as a FastAPI app on AsyncStore.

Run it with ``make api`` (or ``python -m examples.shop_api``): the database is
``DATABASE_URL``, ``.env`` or the embedded server, as for shopdb itself. The
app is :data:`examples.shop_api.app.app`; signed tokens are in
:mod:`examples.shop_api.tokens`. ``tests/test_shop_api.py`` walks every
endpoint over HTTP and ``tests/test_shop_api_fuzz.py`` fuzzes it from its
OpenAPI document with schemathesis.
"""
