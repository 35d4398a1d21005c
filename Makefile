# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   -> creates .venv from requirements.lock, installs vipcast, runs `vipcast demo`
#   make test   -> same set-up, then the default test suite (everything not marked slow/spark/browser/postgres)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vipcast-installed

.PHONY: setup venv-python demo test test-slow test-all lint benchmarks clean

setup: venv-python $(STAMP)

# Before the stamp is looked at: `make setup PYTHON=...` over an up-to-date venv of another Python
# said "Nothing to be done" and kept the old one.
venv-python:
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" != "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" ]; then \
		echo "$(VENV) was made by another Python: making it again with $(PYTHON)"; rm -rf $(VENV); fi

# uv goes into the project's own venv: a system Python under PEP 668 (Debian 12, Ubuntu 23.04+)
# refuses `pip install` outside a venv, and the set-up should not change the system's packages.
# `python -m venv` over a venv of another Python keeps that one's interpreter with this one's
# library (ssl failed to import): venv-python makes such a venv again.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed: on Debian or Ubuntu install python3-venv (apt-get install python3-venv), or pass PYTHON=/path/to/python3.11+" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(BIN)/python -m uv pip install --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/python -m uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: setup
	$(BIN)/vipcast demo

lint: setup
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -m "not slow and not spark and not browser and not postgres" -q

test-slow: setup
	$(BIN)/python -m pytest -m "slow or spark or browser or postgres" -q

test-all: setup lint
	$(BIN)/python -m pytest -q

lock: setup
	$(BIN)/python -m uv pip compile pyproject.toml --extra spark --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .vipcast .pytest_cache
