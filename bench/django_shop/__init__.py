"""A Django app over shopdb's tables (``managed = False``), for the benchmark."""
