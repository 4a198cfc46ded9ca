# Two entry points for a fresh machine: `make quickstart` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU machines take the pinned CPU wheel; GPU deployments install their own torch (see Dockerfile).
TORCH_SPEC ?= torch==2.13.0
DATA ?= examples/data/refinements.jsonl
STUDENT ?= .cache/students/tiny
OUT ?= out/quickstart

.PHONY: install quickstart score test lint student bench browser

# -qq: pip still reports errors (a failed or conflicting install), but not setuptools' informational notice
# about editable installs, which reads like a warning on a first run.
$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq "$(TORCH_SPEC)"
	$(BIN)/pip install -qq -e ".[dev]"
	touch $@

install: $(BIN)/.installed

student: install
	$(BIN)/python -m examples.student --shape tiny --out $(STUDENT)

quickstart: student
	$(BIN)/frontier curate $(DATA) --student $(STUDENT) --out $(OUT)

# `frontier score` alone: every candidate's student statistics, one JSON line each.
score: student
	$(BIN)/frontier score $(DATA) --student $(STUDENT) --out out/scores.jsonl

lint: install
	$(BIN)/ruff check core service workers frontier tests bench examples migrations
	$(BIN)/ruff format --check core service workers frontier tests bench examples migrations
	$(BIN)/mypy
	$(BIN)/lint-imports  # the process boundaries: [tool.importlinter] in pyproject.toml

# Headless Chromium for the dashboard's browser tests (tests/dashboard): Debian's package, driven by Playwright's
# Python driver; never `playwright install` (it downloads browsers). apt-get update only when the install fails.
browser:
	@test -x /usr/bin/chromium || apt-get install -y --no-install-recommends chromium \
		|| (apt-get update && apt-get install -y --no-install-recommends chromium)

test: install lint browser
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/scoring.py --shape tiny --samples 64
	$(BIN)/python bench/scoring.py --shape gpt2-small --samples 16

# The weak- vs strong-teacher experiment (docs/experiment.md): 3 seeds on CPU, rewrites the table and plot in docs/.
.PHONY: experiment
experiment: install
	$(BIN)/python -m bench.experiment --seeds 0 1 2 --jobs 2 --truth-draws 2 --out out/experiment --write-docs

# The check families (bench/experiment/families.py): the same protocol on tasks the defaults were never measured on.
.PHONY: experiment-check
experiment-check: install
	$(BIN)/python -m bench.experiment --families sorting digitsum --seeds 0 1 2 --jobs 2 --truth-draws 2 --out out/check --write-docs

# Where `make experiment`'s default probe was inconclusive, run the follow-up its report suggests.
.PHONY: experiment-followup
experiment-followup: install
	$(BIN)/python -m bench.experiment.followup --out out/experiment

# Re-rank every seed of `make experiment`'s run with a probe that runs 60% of the experiment's own recipe.
.PHONY: experiment-prefix
experiment-prefix: install
	$(BIN)/python -m bench.experiment.prefix --out out/experiment --share 0.6
