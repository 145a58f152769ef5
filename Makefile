# The README's two commands: `make study` and `make test` (every test layer, as CI runs it).
# `make test-fast` runs the fast layer only, as a plain `pytest` does (tests/conftest.py).
# Each builds .venv from constraints.txt when it is missing (or when the pins change).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dnnmeter-installed
OUT ?= study-out
PYTEST_ARGS ?=

.PHONY: study test test-fast chromium postgres venv clean bench-count

venv: $(STAMP)

$(STAMP): constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[timm,onnx,deploy,hf,fleet,test]'
	touch $(STAMP)

# The models study (analysis, hardware model, benchmarks of the seed models), then the
# modifications study (the tiny AlexNet family trained on the built-in digits, quantized and
# pruned) into the same store and report.
study: $(STAMP)
	$(VENV)/bin/dnnmeter study --out $(OUT)
	$(VENV)/bin/dnnmeter study modifications --out $(OUT)

# Every layer: fast, integration (processes), slow (zoo-wide), browser (headless Chromium;
# skipped with its reason where Chromium is missing, unless DNNMETER_REQUIRE_CHROMIUM=1) and
# database (a real PostgreSQL server; skipped where missing, unless DNNMETER_REQUIRE_POSTGRES=1).
# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
test: $(STAMP)
	@$(PY) -m pytest -m "" $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests; failing" >&2; exit 1; fi; \
	exit $$status

# The fast layer only (in-process unit tests): what a developer runs between edits.
test-fast: $(STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test-fast: pytest collected no tests; failing" >&2; exit 1; fi; \
	exit $$status

# Debian's chromium for the browser test (needs root or sudo, and the network); .ci/run calls it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }; }

# Debian's PostgreSQL server for the store's database tests (tests/pg_server.py runs it as a
# throwaway cluster; needs root or sudo, and the network); .ci/run calls it.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y postgresql || { $(SUDO) apt-get update && $(SUDO) apt-get install -y postgresql; }; }

bench-count: $(STAMP)
	$(PY) benchmarks/count_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
