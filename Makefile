# Two commands do all the set-up on a machine with Python 3.11+:
#   make demo   the whole system on one machine (SQLite, a broker started for you, simulated lockers)
#   make test   the test suite
# uv itself is installed into .tools/ from PyPI; nothing needs root.

PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
SYNCED := .venv/.synced

.PHONY: demo test lint check sync clean bench web-vendor

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"

$(SYNCED): $(UV) uv.lock pyproject.toml protocol/pyproject.toml edge/pyproject.toml cloud/pyproject.toml firmware_sim/pyproject.toml
	$(UV) sync --frozen --all-packages
	touch $@

sync: $(SYNCED)

# `make demo DEMO_ARGS=--port=8001` (any `helmet-sim demo --help` option)
demo: $(SYNCED)
	$(UV) run --frozen --no-sync helmet-sim demo $(DEMO_ARGS)

# Tests start their own brokers, databases and processes: two at a time fill this machine's cores. A file's tests
# stay on one worker (loadfile): browser and town modules build on one module-scoped town, in file order
# (loadgroup would be finer, but pytest-xdist 3.8 cannot tag node ids under pytest 9.2).
test: $(SYNCED)
	$(UV) run --frozen --no-sync pytest --numprocesses=auto --maxprocesses=4 --dist loadfile

lint: $(SYNCED)
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .
	$(UV) run --frozen --no-sync mypy
	$(UV) run --frozen --no-sync lint-imports

check: lint test

# The benchmark suite (bench/README.md): writes bench/RESULTS.md. `make bench BENCH_ARGS=--quick` for a short run.
bench: $(SYNCED)
	$(UV) run --frozen --no-sync python bench/run.py $(BENCH_ARGS)

# Front-end files from npm (pinned in web/package-lock.json) into the cloud's static/vendor/, where they are committed.
web-vendor:
	cd web && npm ci --no-audit --no-fund && node vendor.mjs

clean:
	rm -rf .venv $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
