# Tonearm — `make run` sets everything up and starts the server with a demo catalog; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TONEARM_DATA_DIR ?= ./var
export TONEARM_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: help setup system-deps test-deps run serve worker demo migrate test test-fast lint typecheck bench clean

help: ## list every target
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

system-deps: ## install ffmpeg and the DejaVu font (accents on generated covers) from Debian if missing
	@{ command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && [ -d /usr/share/fonts/truetype/dejavu ]; } || \
	  { echo "installing ffmpeg and fonts…"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg fonts-dejavu-core) >/dev/null; }

test-deps: system-deps ## also Debian's chromium (browser tests) and nginx (X-Accel-Redirect test); needs root
	@{ command -v chromium >/dev/null && [ -x /usr/sbin/nginx ]; } || \
	  { echo "installing chromium and nginx…"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nginx) >/dev/null; }

$(BIN)/tonearm: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# The web player's browser libraries come from npm (package-lock.json pins them) and are served
# from static/vendor/ (gitignored); redone only when the lock file changes.
VENDOR := src/tonearm/web/static/vendor
$(VENDOR)/hls.light.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/hls.js/LICENSE $(VENDOR)/hls.js.LICENSE
	cp node_modules/hls.js/dist/hls.light.min.js $@

setup: system-deps $(BIN)/tonearm $(VENDOR)/hls.light.min.js ## create the virtualenv, install Tonearm with its dev tools, vendor hls.js

migrate: setup ## upgrade the database schema
	$(BIN)/tonearm migrate

demo: setup ## synthesize and import the demo catalog (idempotent)
	$(BIN)/tonearm demo

run: setup ## set up, seed the demo catalog on first start, and serve on http://127.0.0.1:8080
	$(BIN)/tonearm demo
	$(BIN)/tonearm serve

serve: setup ## start the server without seeding
	$(BIN)/tonearm serve

worker: setup ## start a separate job worker process
	$(BIN)/tonearm worker

test: test-deps setup ## the whole suite: unit, contract, integration (SQLite + PostgreSQL), end-to-end
	$(BIN)/pytest -q

test-fast: setup ## unit and contract tests only
	$(BIN)/pytest -q tests/unit tests/contract

lint: setup ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup ## run the benchmarks (see docs/benchmarks.md)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
	$(BIN)/python bench/run_all.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache node_modules $(VENDOR)
