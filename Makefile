# Two commands for a fresh machine with only Python 3.11+: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.shopdb-installed

.PHONY: run test lint typecheck pytest install clean bench bench-migrations bench-faults \
	bench-replicas bench-cart-view bench-abuse bench-flash-sale bench-e2e bench-cli bench-logins \
	bench-search soak sync api

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
## on the database `make run` uses (migrated first); its docs at /docs. One client is capped:
## request bodies at 1 MiB (413), headers at 16 KiB, 256 requests at once (503 past it),
## idle keep-alive connections closed after 5 s (examples/shop_api/__main__.py)
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

## bench-flash-sale: one hot product, fresh carts, 8 and 64 shoppers checking out for 10 s,
## against pgbench's bare decrement of the hot row (also part of make bench)
bench-flash-sale: $(STAMP)
	$(BIN)/python -m bench.flash_sale --write-docs

## bench-e2e: the whole request under wrk: the reference service, a FastAPI + SQLAlchemy async
## ORM peer and a raw asyncpg limit, one uvicorn worker each; writes docs/performance.md
bench-e2e: $(STAMP)
	$(BIN)/python -m bench.e2e --write-docs

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

## bench-abuse: issue 17's hostile requests against the reference service, before the bounds
## (commit BEFORE=...) and now: status, size, time, peak memory; writes docs/reliability.md
BEFORE ?= 11b50b0
bench-abuse: $(STAMP)
	$(BIN)/python -m bench.abuse --before $(BEFORE) --write-docs

## bench-cli: what `shopdb status` costs to start, beside `psql -c 'select 1'`, on a scratch
## database at 127.0.0.1:5432 (BENCH_CLI_URL=...); writes docs/performance.md
bench-cli: $(STAMP)
	$(BIN)/python -m bench.cli_startup --write-docs

## soak: the mixed workload for 5 minutes on 32 threads; writes docs/reliability.md
soak: $(STAMP)
	$(BIN)/python -m bench.soak --write-docs

## bench-faults: restart and cut off the server under load; writes recovery times into docs/reliability.md
bench-faults: $(STAMP)
	$(BIN)/python -m bench.faults --write-docs

## bench-logins: a 50-way flood of wrong logins, before and after the login throttle;
## writes the figures into docs/reliability.md
bench-logins: $(STAMP)
	$(BIN)/python -m bench.logins --write-docs

## sync: write every sync module from its async source (tools/async_to_sync.py; a test checks they are current)
sync: $(STAMP)
	$(BIN)/python tools/async_to_sync.py

## bench-replicas: catalog reads with 0, 1 and 2 streaming replicas, the cost of read-your-writes,
## and how long a failover takes to serve writes again; writes docs/scaling.md
bench-replicas: $(STAMP)
	$(BIN)/python -m bench.replicas --write-docs

clean:
	rm -rf $(VENV) .shopdb .mypy_cache .ruff_cache
