# Two commands on a fresh machine (python3 + pip only):
#   make demo   -> the main job (creates .venv on first use)
#   make test   -> the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-portable test-slow test-training test-all check bench docs lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,data,docs,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/groupconv demo

check: $(STAMP)
	$(VENV)/bin/groupconv check

bench: $(STAMP)
	$(VENV)/bin/groupconv bench

test: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow and not training"

# the fast suite again on torch's portable CPU kernels (no AVX2/AVX-512 paths) with one thread
# per worker: an assertion that holds only on one CPU's vector path fails here, not on a user's
test-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 GROUPCONV_TEST_THREADS=1 \
		$(PY) -m pytest -n 2 -q -m "not slow and not training"

# slow tests: torch.compile of every module, the Sphinx -W build, notebook execution
test-slow: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "slow and not training"

# full training runs (minutes each): the accuracy claims of the experiments
test-training: $(STAMP)
	$(PY) -m pytest -n 2 -q -m training

test-all: test test-slow test-training

# the site, notebooks executed in fast mode (cached in docs/_build/.jupyter_cache by their cells;
# after changing groupconv itself: make docs SPHINXOPTS="-D nb_execution_mode=force")
SPHINXOPTS ?=
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going $(SPHINXOPTS) -b html docs docs/_build/html

# ruff, then mypy on groupconv/ at the strictness documented in pyproject.toml [tool.mypy]
lint: $(STAMP)
	$(VENV)/bin/ruff check groupconv tests
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
