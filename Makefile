# The README's two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/overview
PYTEST_ARGS ?=

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,distributed]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gandyn run --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS) tests

bench: $(STAMP)
	$(PY) bench/ensemble_sga.py

clean:
	rm -rf $(VENV) runs .pytest_cache
