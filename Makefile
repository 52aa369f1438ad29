# The README's two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/overview
PYTEST_ARGS ?=

.PHONY: demo test bench docs results install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,distributed,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gandyn run --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist worksteal $(PYTEST_ARGS) tests

bench: $(STAMP)
	$(PY) bench/ensemble_sga.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Rerun each catalog entry with the command its page names; store its summary.json as the page's results and
# the figures the page shows (docs/figures/FIGURE.png, as the run names them).
results: $(STAMP)
	@for page in docs/catalog/*.md; do \
	  name=$$(basename $$page .md); command=$$(sed -n 's/^command: //p' $$page); \
	  $(VENV)/bin/$$command --quiet --out runs/docs/$$name && cp runs/docs/$$name/summary.json docs/results/$$name.json || exit 1; \
	  for figure in $$(grep -o 'figures/[A-Za-z0-9_]*\.png' $$page | sort -u); do \
	    cp runs/docs/$$name/$$(basename $$figure) docs/$$figure || exit 1; \
	  done; \
	done

clean:
	rm -rf $(VENV) runs site .pytest_cache
