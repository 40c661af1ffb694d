# serlib: the two commands of the README, plus helpers.
#   make demo  - set up .venv and run the full papermill reproduction on the generated demo corpus
#   make test  - set up .venv and run the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := $(VENV)/bin/python
# The install stamp depends on the dependency list, so a changed pyproject.toml reinstalls and an
# unchanged one costs nothing.
STAMP := $(VENV)/.serlib-installed

.PHONY: install demo test test-fast test-browser lint bench clean-runs

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name serlib --display-name "Python (serlib)" >/dev/null
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/serlib reproduce --preset demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-browser: $(STAMP)
	$(PY) -m pytest -q -m browser

lint: $(STAMP)
	$(VENV)/bin/ruff check serlib tests benchmarks
	$(VENV)/bin/ruff format --check serlib tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

clean-runs:
	rm -rf runs cache
