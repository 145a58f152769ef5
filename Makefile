# The README's two commands: `make study` and `make test`.
# Each builds .venv from constraints.txt when it is missing (or when the pins change).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dnnmeter-installed
OUT ?= study-out
PYTEST_ARGS ?=

.PHONY: study test venv clean bench-count

venv: $(STAMP)

$(STAMP): constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[timm,onnx,test]'
	touch $(STAMP)

# The models study (analysis, hardware model, benchmarks of the seed models), then the
# modifications study (the tiny AlexNet family trained on the built-in digits, quantized and
# pruned) into the same store and report.
study: $(STAMP)
	$(VENV)/bin/dnnmeter study --out $(OUT)
	$(VENV)/bin/dnnmeter study modifications --out $(OUT)

# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
test: $(STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests; failing" >&2; exit 1; fi; \
	exit $$status

bench-count: $(STAMP)
	$(PY) benchmarks/count_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
