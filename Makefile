# `make run` and `make test` do all the set-up on a fresh machine with Python >= 3.10 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.frugal-installed

.PHONY: install run test test-all bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: its CPU build; a looser range would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: the built-in search (zoo:minilm on zoo:stdlib-docs, edge-cpu). Re-running resumes the
# same Optuna study from the store, so finished trials are not repeated.
run: install
	$(VENV)/bin/frugal optimize -o frugal-out --overwrite

test: install
	$(PY) -m pytest

test-all: install
	$(PY) -m pytest -m ''

bench: install
	$(PY) benchmarks/profile_overhead.py
	$(PY) benchmarks/subgroup_gate.py
	$(PY) benchmarks/search_efficiency.py
	$(PY) benchmarks/scaling_sweep.py
	$(PY) benchmarks/data_audit.py
	$(PY) benchmarks/data_active.py
	$(PY) benchmarks/data_pruning.py
	$(PY) benchmarks/serve_load.py
	$(PY) benchmarks/serve_cascade.py

clean:
	rm -rf $(VENV) .frugal .pytest_cache frugal-out
