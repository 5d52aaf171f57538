# The README's two commands: `make demo` and `make test`. Both create .venv when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-stamp
# Tests and the demo find real data through MIAMIND_DATA; default to ../shared/data when it exists.
SHARED_DATA := $(wildcard $(abspath ../shared/data))
ifneq ($(SHARED_DATA),)
export MIAMIND_DATA ?= $(SHARED_DATA)
endif

.PHONY: demo test docs install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints/ci.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -c constraints/ci.txt -e ".[test,mindspore]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/miamind demo

test: $(STAMP)
	$(PY) -m pytest -q

# API reference and guides into site/; every mkdocs warning is an error (mkdocs.yml: strict).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -c constraints/ci.txt -e ".[docs]"
	touch $(DOCS_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache site
