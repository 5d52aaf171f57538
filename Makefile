# The README's two commands: `make demo` and `make test`. Both create .venv when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-stamp
DEV_STAMP := $(VENV)/.dev-stamp
# Tests and the demo find real data through MIAMIND_DATA; default to ../shared/data when it exists,
# else miamind's own default (~/.cache/miamind/data), where `make demo` fetches what it can.
SHARED_DATA := $(wildcard $(abspath ../shared/data))
ifneq ($(SHARED_DATA),)
export MIAMIND_DATA ?= $(SHARED_DATA)
endif

.PHONY: demo test test-slow test-cluster docs lint typecheck package-check check install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints/ci.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -c constraints/ci.txt -e ".[test,mindspore,slurm,tensorboard,mlflow]"
	# MIA-Mind's C++ CPU kernel, compiled once here (cached) rather than in the first training step
	$(PY) -c "from miamind.attention.kernel import kernel; kernel()"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/miamind demo

# `make test` skips the tests marked slow (over ~10 s each: inductor compiles, long gradchecks);
# CI runs them too (`make test-slow`).
# One test process per core (pytest-xdist); tests/conftest.py gives each its share of threads.
test: $(STAMP)
	$(PY) -m pytest -q -n auto -m "not slow and not cluster"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m "slow and not cluster"

# The SLURM executor on a real single-node SLURM started by the tests (root; Debian's
# slurmctld slurmd slurm-client munge: .ci/install-slurm). Skips with the reason elsewhere.
test-cluster: $(STAMP)
	$(PY) -m pytest -q -m cluster

# API reference and guides into site/; every mkdocs warning is an error (mkdocs.yml: strict).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -c constraints/ci.txt -e ".[docs]"
	touch $(DOCS_STAMP)

# Maintainer checks (CI runs `make check` before `make test`): ruff lint + format, mypy, the
# packaging check (sdist + wheel, twine, install into a fresh venv), the docs build.
$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -c constraints/ci.txt -e ".[dev]"
	touch $(DEV_STAMP)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests scripts docs/hooks.py
	$(VENV)/bin/ruff format --check src tests scripts docs/hooks.py

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

package-check: $(DEV_STAMP)
	PY=$(PY) bash .ci/package-check

check: lint typecheck docs package-check

clean:
	rm -rf $(VENV) .pytest_cache site
