# The README's two commands: `make demo` and `make test`. Both create .venv when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests and the demo find real data through MIAMIND_DATA; default to ../shared/data when it exists,
# else miamind's own default (~/.cache/miamind/data), where `make demo` fetches what it can.
SHARED_DATA := $(wildcard $(abspath ../shared/data))
ifneq ($(SHARED_DATA),)
export MIAMIND_DATA ?= $(SHARED_DATA)
endif

.PHONY: demo test install clean

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

clean:
	rm -rf $(VENV) .pytest_cache
