# serlib: the two commands of the README, plus helpers.
#   make demo  - set up .venv from requirements.lock and run the full papermill reproduction on the
#                generated demo corpus
#   make test  - set up .venv from requirements.lock and run the whole test suite
#   make lock  - regenerate requirements.lock and environment.yml from pyproject.toml
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := $(VENV)/bin/python
# The exact pins (with hashes) that `make install` installs; pyproject.toml keeps the compatible ranges
# for installing serlib elsewhere. `make lock` regenerates it (and environment.yml) from pyproject.toml.
LOCK := requirements.lock
# uv installs the lock (measured: README, set-up line); INSTALLER=pip installs it with pip instead.
# Both write the .pyc files at install time (uv: --compile-bytecode; pip does by default): where
# PYTHONDONTWRITEBYTECODE is set (as on CI here) Python never caches them itself, and every process
# that imports TensorFlow would compile its ~1,800 modules again (about 15 CPU-seconds each time).
INSTALLER ?= uv
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# `make lock` resolves against PyPI as it was at this moment, so that running it again gives the same
# pins whatever has been released since. Move it forward to take newer releases.
LOCK_DATE := 2026-11-30T00:00:00Z
# The install stamp depends on the lock (and pyproject.toml, for serlib's own metadata), so a changed lock
# reinstalls and an unchanged one costs nothing.
STAMP := $(VENV)/.serlib-installed

.PHONY: install lock demo test test-fast test-browser lint bench clean-runs evidence evidence-check

install: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || echo "warning: $(LOCK) is resolved \
	for Python 3.11, $(PY) is $$($(PY) -V); set PYTHON=python3.11 and delete $(VENV) to match it"
ifeq ($(INSTALLER),uv)
	@$(UV) --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)' || $(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) --require-hashes $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
else
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
endif
	$(PY) -m ipykernel install --sys-prefix --name serlib --display-name "Python (serlib)" >/dev/null
	@# JupyterLab of this environment, for a course: no "official Jupyter news?" prompt, no update check
	@# (settings overrides), and new notebooks on the serlib kernel (the notebooks name it themselves).
	@mkdir -p $(VENV)/share/jupyter/lab/settings $(VENV)/etc/jupyter
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	@echo '{"MultiKernelManager": {"default_kernel_name": "serlib"}}' > $(VENV)/etc/jupyter/jupyter_server_config.json
	@touch $(STAMP)

# Resolve pyproject.toml's ranges (dependencies + dev extra) for Linux x86_64 / CPython 3.11 into exact
# pins with hashes, from scratch (not from the previous lock), then write environment.yml's pins.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(UV) --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)' || $(PY) -m pip install --quiet uv==$(UV_VERSION)
	@rm -f $(LOCK).new
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --exclude-newer $(LOCK_DATE) --no-config \
	  --custom-compile-command "make lock" --quiet --output-file $(LOCK).new
	$(PY) -m serlib.base.lockfile finish $(LOCK).new
	@mv $(LOCK).new $(LOCK)
	$(PY) -m serlib.base.lockfile environment --lock $(LOCK) --out environment.yml

# One TensorFlow thread per process, one ACNN run worker per core (demo preset protocol.n_jobs: 0).
demo: $(STAMP)
	SERLIB_TF_THREADS=1 $(VENV)/bin/serlib reproduce --preset demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n logical --dist loadgroup --durations=30

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-browser: $(STAMP)
	$(PY) -m pytest -q -m browser

lint: $(STAMP)
	$(VENV)/bin/ruff check serlib tests benchmarks docs/probes
	$(VENV)/bin/ruff format --check serlib tests benchmarks docs/probes
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# The report's generated blocks (<!-- evidence:... -->) from the committed results/ (results/README.md);
# evidence-check changes nothing and fails naming each number that differs (tests/test_evidence.py runs it).
evidence: $(STAMP)
	$(VENV)/bin/serlib evidence

evidence-check: $(STAMP)
	$(VENV)/bin/serlib evidence --check

bench: $(STAMP)
	$(PY) -m benchmarks

clean-runs:
	rm -rf runs cache
