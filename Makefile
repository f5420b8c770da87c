# coop100: every target sets itself up; a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PY_DIRS := $(wildcard src tests benchmarks)

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,docs]'
	touch $@

install: $(STAMP) ## Create .venv with the pinned dependencies (constraints.txt)

# The documentation site (mkdocs.yml, docs/), which the site serves at /docs/: rebuilt
# when a page, a file it includes or what it is generated from (the CLI, the settings)
# changes. --strict: a broken link, include or nav entry fails the build.
DOCS := build/site/docs/index.html
DOCS_SOURCES := mkdocs.yml $(shell find docs -type f 2>/dev/null) README.md CHANGELOG.md CHANGES.md \
	src/coop100/cli.py src/coop100/settings.py src/coop100/site/settings.py
$(DOCS): $(STAMP) $(DOCS_SOURCES)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	touch $@

docs: $(DOCS) ## Build the documentation site into build/site/docs/ (served at /docs/)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

format: $(STAMP) ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix $(PY_DIRS)
	$(BIN)/ruff format $(PY_DIRS)

typecheck: $(STAMP) ## mypy --strict on src/
	$(BIN)/mypy

build: $(STAMP) ## Regenerate every published file from records/
	$(BIN)/coop100 build

validate: $(STAMP) ## Validate the published package (frictionless + cross-format checks)
	$(BIN)/coop100 validate

serve: $(STAMP) $(DOCS) ## Build the SQLite database from the package and serve it on http://127.0.0.1:8001
	$(BIN)/coop100 serve

serve-replicas: $(STAMP) $(DOCS) ## Serve two replicas behind a caching nginx on http://127.0.0.1:8000 (installs nginx via apt)
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && apt-get install -y -qq nginx)
	$(BIN)/python -m coop100.site.replicas --replicas 2 --port 8000

bench-replicas: $(STAMP) ## Throughput of one replica, two, and the warm nginx cache at 1M statements (benchmarks/results/)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && apt-get install -y -qq nginx)
	$(BIN)/python benchmarks/replicas_load.py --statements 1000000 --out benchmarks/results

bench-serve: $(STAMP) ## Load-check the served site with wrk: req/s, p50, p95, p99 (installs wrk via apt)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/serve_load.py

bench-errors: $(STAMP) ## Flood the served site with bad requests and time the landing page meanwhile (wrk)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/errors_load.py --out benchmarks/results

test: $(STAMP) ## Lint, typecheck and run the test suite but the slow benchmark runs
	$(MAKE) lint typecheck
	$(BIN)/pytest -m "not slow"

test-all: $(STAMP) ## What CI runs: lint, typecheck and the whole test suite, benchmark runs included
	$(MAKE) lint typecheck
	$(BIN)/pytest

bad-records: $(STAMP) ## Rewrite the expected errors in tests/bad_records/ (review the diff!)
	COOP100_REWRITE_BAD_RECORDS=1 $(BIN)/pytest -q tests/e2e/test_bad_records.py -k build
data-diff: $(STAMP) ## What the data changed since BASE (default main), as Markdown: rows added, removed, changed
	bash .ci/data-diff $(or $(BASE),main)
bench-abuse: $(STAMP) ## The site under 20 hostile clients per class, against the code before the SQL guard (~8 min; benchmarks/results/abuse.md)
	$(BIN)/python benchmarks/abuse.py --baseline auto

# The full floor of benchmarks/run.py loads the package with Debian's sqlite3 shell.
SQLITE3_SHELL := command -v sqlite3 >/dev/null || (apt-get update -qq && apt-get install -y -qq sqlite3)
# Where bench-1m and bench-10m write (benchmarks/run.py merges by size into its
# results.json); STATEMENTS overrides bench-10m's size, e.g. to try the target;
# BEFORE=<git ref> also builds and validates with that code in the same run.
BENCH_OUT ?= benchmarks/results
STATEMENTS ?= 10000000
BENCH_BEFORE = $(if $(BEFORE),--before $(BEFORE))

bench: $(STAMP) ## Benchmark 10k/100k/1M statements against the floors and baselines, then serving (~45 min; benchmarks/results/)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(SQLITE3_SHELL)
	$(BIN)/python benchmarks/run.py --sizes 10000 100000 1000000 --frictionless-timeout 1800 --serve --repeat 2 $(BENCH_BEFORE)

bench-1m: $(STAMP) ## 1M statements only: build and floors twice, validate, start-up; no naive baselines or serving (~8 min)
	$(SQLITE3_SHELL)
	$(BIN)/python benchmarks/run.py --sizes 1000000 --skip-naive --repeat 2 --out $(BENCH_OUT) $(BENCH_BEFORE)

bench-10m: $(STAMP) ## 10M statements: build and floors, merged beside 1M in benchmarks/results/ (tens of minutes)
	$(SQLITE3_SHELL)
	$(BIN)/python benchmarks/run.py --sizes $(STATEMENTS) --skip-naive --skip-steps --skip-startup --skip-validate --out $(BENCH_OUT)

bench-remote: $(STAMP) ## Bytes polars and pyarrow fetch over HTTP for one person's statements at 1M, Parquet layout before/after (benchmarks/results/remote.md)
	$(BIN)/python benchmarks/remote.py --statements 1000000 --out $(BENCH_OUT)

bench-diff: $(STAMP) ## Time coop100 diff of the 1M package (benchmarks/work/1000000, from make bench) against an edited copy
	$(BIN)/python benchmarks/diff_bench.py --root benchmarks/work/1000000

upgrade: ## Re-resolve the newest allowed dependencies and rewrite constraints.txt
	rm -rf .venv-upgrade
	$(PYTHON) -m venv .venv-upgrade
	.venv-upgrade/bin/pip install --quiet -e '.[test]'
	.venv-upgrade/bin/pip freeze --exclude-editable > constraints.txt
	echo "hatchling==1.33.0" >> constraints.txt
	rm -rf .venv-upgrade

.PHONY: help install docs lint format typecheck build validate serve serve-replicas bench-replicas bench-serve bench-errors bench-diff bench-remote bench-abuse test test-all bench bench-1m bench-10m upgrade bad-records data-diff
