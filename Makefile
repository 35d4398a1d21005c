# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   -> creates .venv from requirements.lock, installs vipcast, runs `vipcast demo`
#   make test   -> same set-up, then the default test suite (everything not marked slow/spark/browser/postgres)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vipcast-installed

.PHONY: setup demo test test-slow test-all lint benchmarks clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(PYTHON) -m uv venv --allow-existing --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip install --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(PYTHON) -m uv pip install --python $(BIN)/python --no-deps -e .
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

lock:
	$(PYTHON) -m uv pip compile pyproject.toml --extra spark --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .vipcast .pytest_cache
