# qwem-book: build the book and run the tests.  No activated environment needed: every
# tool is called as $(VENV)/bin/... .
#
#   make venv    create $(VENV) and install requirements.txt (again only when
#                requirements.txt or pyproject.toml change)
#   make book    execute the chapters (cached) and build the HTML into _build/html;
#                prints each chapter's execution time and the build's wall time
#   make test    unit tests + every chapter notebook, at QWEM_SCALE=small
#   make sync    point the chapters' Colab links and install lines at _config.yml's
#                repository, and rewrite each chapter's .ipynb from its .md
#   make clean   remove _build (with the execution cache) and test caches
#
# Variables: VENV (default .venv), PYTHON (interpreter that creates the venv, 3.11+),
# QWEM_SCALE (book: full, test: small), PYTEST_ARGS (extra pytest arguments).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.qwem-installed

BOOK_SCALE = $(or $(QWEM_SCALE),full)
TEST_SCALE = $(or $(QWEM_SCALE),small)

# The kernel named "python3" must be the venv's.  The venv's spec (installed by
# ipykernel, argv "python", which jupyter_client replaces by the sys.executable of the
# venv's jupyter-book or pytest) already wins over a python3 kernel in the user's home
# while jupyter_core prefers the environment; putting it first in JUPYTER_PATH keeps it
# first when JUPYTER_PREFER_ENV_PATH=0 (checked: a fake user kernel then loses).
KERNEL_ENV = JUPYTER_PATH="$(abspath $(VENV))/share/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH}"

# Notebook pages: the chapters book/NN_topic.md and book/replication.md, each paired with
# its .ipynb (committed, no outputs).
CHAPTERS = $(wildcard book/[0-9][0-9]_*.md) book/replication.md

# jupyter-cache keys a notebook on its cells only, and Sphinx re-reads (so re-executes)
# only pages whose source changed.  Everything else a chapter's outputs depend on goes
# into this hash; when it changes, `make book` drops both the execution cache and
# Sphinx's saved environment (_build/.doctrees), so every chapter runs again.
CACHE_STAMP := _build/.qwem-cache-key

.PHONY: help venv book test sync clean distclean

# The interpreter that creates the venv must be Python 3.11 or newer (the pinned numpy
# and scipy, the tokeniser's possessive regular expressions, tomllib).  Checked only
# when the venv is about to be made, as one line, before anything is written.
ifeq ($(wildcard $(BIN)/python),)
ifneq ($(filter venv book test,$(or $(MAKECMDGOALS),help)),)
PY_OK := $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' \
           2>/dev/null)
ifneq ($(PY_OK),1)
$(error qwem-book needs Python 3.11 or newer, but PYTHON=$(PYTHON) reports \
  "$(strip $(shell $(PYTHON) --version 2>&1 | head -n 1))": run make venv \
  PYTHON=python3.11 (or a newer Python))
endif
endif
endif

help:
	@sed -n '4,14p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

book: $(STAMP)
	@mkdir -p _build
	@key=$$( { find qwem_lib -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
	           | LC_ALL=C sort -z | xargs -0 sha256sum; \
	         sha256sum requirements.txt pyproject.toml; \
	         echo "QWEM_SCALE=$(BOOK_SCALE) QWEM_DATA=$${QWEM_DATA:-}"; } \
	       | sha256sum | cut -c1-64 ); \
	if [ "$$(cat $(CACHE_STAMP) 2>/dev/null)" != "$$key" ]; then \
	  echo "qwem_lib, requirements or QWEM_SCALE/QWEM_DATA changed:" \
	       "re-executing every chapter"; \
	  rm -rf _build/.jupyter_cache _build/.doctrees; \
	fi; \
	echo "$$key" > $(CACHE_STAMP)
	@# "The paper, result by result" reads what the chapters recorded in this build:
	@# Sphinx re-reads (and myst-nb, told execution_mode: force, re-runs) a page only
	@# when its source is newer, so make it newer.  Sphinx reads pages in sorted
	@# order, so the chapters (book/0*) run before it.
	@touch book/replication.md
	@start=$$(date +%s); status=0; \
	QWEM_SCALE=$(BOOK_SCALE) $(KERNEL_ENV) $(BIN)/jupyter-book build . -W -n --keep-going \
	  || status=$$?; \
	$(BIN)/python bench/book_times.py --since $$start || true; \
	echo "make book: $$(( $$(date +%s) - start )) s wall (QWEM_SCALE=$(BOOK_SCALE))"; \
	exit $$status

# nbval: plain --nbval.  nbval 0.11 compares outputs only for cells the notebook records
# as run (execution_count set); the committed notebooks are stripped (test_book.py
# enforces it), so every cell is "unrun" and only exceptions fail -- chapters check their
# claims with assert, never by comparing printed floats.  (Checked: a stripped cell that
# prints passes; a cell with a stored, differing output fails "Cell outputs differ";
# a failing assert fails in both --nbval and --nbval-lax.)  --nbval-current-env starts
# the kernel with this venv's python.
test: $(STAMP)
	QWEM_SCALE=$(TEST_SCALE) MPLBACKEND=Agg $(KERNEL_ENV) \
	  $(BIN)/python -m pytest --nbval --nbval-current-env --nbval-cell-timeout=3600 \
	  tests book $(PYTEST_ARGS)

sync: $(STAMP)
	@$(BIN)/python -c 'from qwem_lib import book; \
	  [print("repository address set in", p) for p in book.point_at_repository(".")]'
	@for md in $(CHAPTERS); do \
	  if sed -n '1,30p' "$$md" | grep -q '^jupytext:'; then \
	    $(BIN)/jupytext --quiet --to ipynb --output "$${md%.md}.ipynb" "$$md"; \
	    echo "synced $${md%.md}.ipynb"; \
	  fi; \
	done

clean:
	rm -rf _build .pytest_cache
	find qwem_lib tests book -name __pycache__ -prune -exec rm -rf {} +
	find book -name .ipynb_checkpoints -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv .venv-ci
