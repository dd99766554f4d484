# The two commands of the README: `make demo` (install and run) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo run devcluster test chaos lint typecheck bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev,postgres]'
	touch $@

install: $(VENV)/.installed

# Installs and runs the controller on the embedded default: dev cluster + SQLite.
demo: install
	$(VENV)/bin/reconciler demo

run: install
	$(VENV)/bin/reconciler run

devcluster: install
	$(VENV)/bin/reconciler devcluster

# Installs everything the tests need (system packages too) and runs the whole suite.
# Guard rails first (lint, layer contracts, types), then the suite.
# A test whose worker process dies (a native crash, which no assertion can catch) is run once
# more on a fresh worker; `--only-rerun` matches no ordinary failure, so those never rerun.
# The dead worker's stack is printed at the end (tests/support/crashes.py).
test: install
	scripts/install-test-deps.sh
	$(MAKE) --no-print-directory lint typecheck
	$(PY) -m pytest -n 2 --reruns 1 --only-rerun 'RERUN-ONLY-WHEN-THE-WORKER-DIED' $(PYTEST_ARGS)

# The reliability suite's long form (20 kills, a 50-app sync through the fault proxy, 2000
# examples per fuzz property), one worker so its figures do not race other tests; prints the
# table that docs/reliability.md keeps. Its short form runs in `make test`.
chaos: install
	RELIABILITY_LONG=1 FUZZ_EXAMPLES=2000 $(PY) -m pytest tests/reliability \
		tests/core/test_fuzz_load.py -q $(PYTEST_ARGS)

# The benchmarks, one after the other, each alone on the machine (their figures are timings
# and memory; nothing else may run beside them). Each prints its figures and ends with its
# summary line; docs/benchmarks.md keeps them, says what each includes and what each needs
# (converge: a Python 3.9 for marathon-deploy). One or some: `make bench BENCHES="scale"`.
BENCHES ?= noop_diff drift latency failover page_hop row_steps status_rows memory scale converge
bench: install
	scripts/install-test-deps.sh
	for name in $(BENCHES); do $(PY) bench/$$name.py || exit 1; done

lint: install
	$(PY) -m ruff check reconciler tests bench scripts testbed
	$(VENV)/bin/lint-imports

typecheck: install
	$(PY) -m mypy reconciler

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
