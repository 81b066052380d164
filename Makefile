# Two entry points for a fresh machine: `make run` and `make test`. Everything else is plumbing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup system-deps run test lint typecheck check clean

# The virtual environment, rebuilt when the dependencies change.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

setup: $(INSTALLED)

# Debian packages the tests use: xmlsec1 (the independent XML-signature implementation signatures
# are cross-checked with) and chromium (the browser the auditor page is tested in, via Playwright).
system-deps:
	@command -v xmlsec1 >/dev/null && command -v chromium >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq xmlsec1 chromium >/dev/null; }

## Serve on http://127.0.0.1:8080 with the embedded PostgreSQL, the demo registry (keys kept in
## var/demo/keys.json and printed at each start) and, on the first run, 60 demo documents (Ctrl-C stops).
run: setup
	$(BIN)/exchange demo --traffic 60 --if-empty
	EXCHANGE_PUBLIC__ENABLED=true $(BIN)/exchange serve

lint: setup
	$(BIN)/ruff check exchange adapters tests bench certs

typecheck: setup
	$(BIN)/mypy

## Lint, type-check and run the whole test suite (RUN_SLOW=1 adds the slow reliability tests).
test: system-deps lint typecheck
	$(BIN)/pytest $(if $(RUN_SLOW),,-m "not slow")

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
