# The README's two commands: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck unit soak demo bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck unit

# The long nemesis soak (docs/testing.md): 200 seeds x 10 virtual minutes of random faults.
SOAK_SEEDS ?= 200
SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(PY) -m swimgossip.testing.nemesis --seeds $(SOAK_SEEDS) --minutes $(SOAK_MINUTES)

# The demo's live table needs the optional `demo` extra (rich); without a terminal (CI) the
# demo prints plain lines instead.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,demo]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m swimgossip demo

# The side-by-side harness (benchmarks/compare/) installs Serf (apt, as root), kinship and
# swim-protocol (own virtualenvs in benchmarks/.peers/) itself; its plots need matplotlib.
BENCH_STAMP := $(VENV)/.installed-plot
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,plot]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_doors.py
	$(PY) benchmarks/bench_start.py
	$(PY) benchmarks/bench_table.py
	$(PY) benchmarks/bench_join.py
	$(PY) benchmarks/bench_idle.py
	$(PY) benchmarks/compare/run.py

bench-quick: $(BENCH_STAMP)
	$(PY) benchmarks/bench_core.py --quick
	$(PY) benchmarks/bench_doors.py --quick
	$(PY) benchmarks/bench_start.py --quick
	$(PY) benchmarks/bench_table.py --quick
	$(PY) benchmarks/bench_join.py --quick
	$(PY) benchmarks/bench_idle.py --quick
	$(PY) benchmarks/compare/run.py --quick

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
