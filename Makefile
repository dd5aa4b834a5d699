# Two commands do everything on a fresh machine (python3, python3-venv and make):
# `make run` and `make test`.
#   make run RUN_ARGS="--seconds 30 --fast"   bounded demo (any `ionm demo` options)
#   make test EXTRAS=test,systemd             also build systemd-python (needs libsystemd-dev)
PYTHON ?= python3
EXTRAS ?= test
RUN_ARGS ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

# setuptools' note that an install is editable is information, not a problem: not shown
$(STAMP): pyproject.toml setup.py appliance/frontend/ads1299/_reader.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ionm demo $(RUN_ARGS)

# two passes: most of the suite waits on real time (brokers, outages, browsers) and runs on two
# workers, a file's tests on one (they share its module fixtures: one broker, one console stack,
# in the file's order); the tests that hold real-time bounds (marked serial,
# tests/conftest.py) run alone
test: $(STAMP)
	@rc=0; $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not serial" || rc=$$?; \
	$(BIN)/python -m pytest -q -m serial || rc=$$?; exit $$rc

bench: $(STAMP)
	$(BIN)/ionm bench

lint: $(STAMP)
	$(BIN)/ruff check appliance tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
