# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Dependencies come from requirements-dev.lock (every version pinned and hashed; plain pip
# installs it); the Dockerfile installs requirements.lock, the service's own part of it.
# After changing dependencies in pyproject.toml, `make lock` writes both again.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --custom-compile-command 'make lock'

.PHONY: run test lint lock bench clean

$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check || { echo "requirements-dev.lock is behind pyproject.toml: run 'make lock'"; exit 1; }
	touch $(STAMP)

# Needs only uv (the version the lock pins), so it runs while .venv is behind pyproject.toml.
lock:
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install --quiet "$$(grep -o '^uv==[^ ]*' requirements-dev.lock)"; }
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet pyproject.toml $(LOCK_FLAGS) -c requirements-dev.lock -o requirements.lock

run: $(STAMP)
	$(BIN)/caseclock serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy --strict service

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
