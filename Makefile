# Two commands do all the set-up on a fresh machine:
#   make demo   train the default preset on two moons; model, metrics and figures in runs/moons
#   make test   run the test suite
# Both create the virtual environment .venv when it is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench results clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

$(VENV)/.bench: $(STAMP)
	$(PY) -m pip install -e ".[test,bench]"
	touch $(VENV)/.bench

demo: $(STAMP)
	$(VENV)/bin/realnvp train --preset default --out runs/moons

test: $(STAMP)
	$(PY) -m pytest -q src tests README.md

bench: $(VENV)/.bench
	$(PY) benchmarks/peers.py --out benchmarks/results

results: $(STAMP)
	$(PY) benchmarks/results_table.py --out benchmarks/results

clean:
	rm -rf $(VENV) runs
