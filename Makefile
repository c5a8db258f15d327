# One way to run things: the README and CI use these targets.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/3

.PHONY: install demo test test-services bench lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/yinyi demo

test: $(STAMP)
	$(PY) -m pytest -q
	cd examples/hello_bank && $(abspath $(PY)) -m pytest -q

test-services: $(STAMP)
	YINYI_TEST_DATABASE_URL=$(PG_URL) YINYI_TEST_REDIS_URL=$(REDIS_URL) $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) bench/payment_roundtrip.py
	$(PY) bench/recon_match.py
	$(PY) bench/console_pages.py

docs: $(STAMP)
	$(PY) -m gateway.docgen

clean:
	rm -rf $(VENV) var .pytest_cache
