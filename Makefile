# Two commands for a fresh machine with only Python 3.11+: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.shopdb-installed

.PHONY: run test lint typecheck pytest install clean bench bench-migrations bench-faults \
	bench-replicas bench-cart-view bench-search soak async-api api

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## run: install, start the database (embedded unless DATABASE_URL is set), migrate, show status
run: $(STAMP)
	$(BIN)/shopdb setup
	$(BIN)/shopdb status

## api: the reference web service (examples/shop_api) on http://127.0.0.1:8000 (PORT=...),
## on the database `make run` uses (migrated first); its docs at /docs
PORT ?= 8000
api: $(STAMP)
	$(BIN)/shopdb setup
	$(BIN)/python -m examples.shop_api --port $(PORT)

## test: lint, type-check and run every test against real PostgreSQL
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## bench: every implementation side by side; writes the table into docs/performance.md
bench: $(STAMP)
	$(BIN)/python -m bench.run --write-docs

## bench-cart-view: what returning the cart view from add_to_cart costs (after make bench)
bench-cart-view: $(STAMP)
	$(BIN)/python -m bench.cart_view --write-docs

## bench-search: catalog search on 1,000,000 products (ROWS_SEARCH=...) beside the naive
## ILIKE/OFFSET SQL; keeps its database between runs; writes docs/performance.md
ROWS_SEARCH ?= 1000000
bench-search: $(STAMP)
	$(BIN)/python -m bench.search --rows $(ROWS_SEARCH) --write-docs

## bench-migrations: every migration after 0004 applied and reverted beside live traffic on
## 2,000,000 products and cart_items (ROWS=...), earlier and current 0005; writes docs/migrations.md
ROWS ?= 2000000
bench-migrations: $(STAMP)
	$(BIN)/python -m bench.migrations --rows $(ROWS) --write-docs

## soak: the mixed workload for 5 minutes on 32 threads; writes docs/reliability.md
soak: $(STAMP)
	$(BIN)/python -m bench.soak --write-docs

## bench-faults: restart and cut off the server under load; writes recovery times into docs/reliability.md
bench-faults: $(STAMP)
	$(BIN)/python -m bench.faults --write-docs

## async-api: write src/shopdb/store/async_api.py from sync_api.py (a test checks it is current)
async-api: $(STAMP)
	$(BIN)/python tools/make_async_api.py

## bench-replicas: catalog reads with 0, 1 and 2 streaming replicas, the cost of read-your-writes,
## and how long a failover takes to serve writes again; writes docs/scaling.md
bench-replicas: $(STAMP)
	$(BIN)/python -m bench.replicas --write-docs

clean:
	rm -rf $(VENV) .shopdb .mypy_cache .ruff_cache
