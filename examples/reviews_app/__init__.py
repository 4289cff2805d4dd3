"""A small application on shopdb with a table of its own: product reviews by users.

Its tables are in :mod:`examples.reviews_app.models`; its migrations, on top of
shopdb's, in ``migrations/``. Use it as shopdb's README does::

    export SHOPDB_APP_MIGRATIONS_DIR=examples/reviews_app/migrations
    export SHOPDB_APP_METADATA=examples.reviews_app.models:metadata
    shopdb setup
"""
