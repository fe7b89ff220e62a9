# Two commands do all the set-up on a fresh machine:
#   make demo   install, then run the main job on the embedded default (local files, SQLite, bundled samples)
#   make test   install the test dependencies, then run the whole suite (what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOME_DIR := $(abspath .dlcot/dagster_home)

export HF_HUB_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test dev bench clean

$(VENV)/.stamp-main: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-main
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.stamp-main

demo: $(VENV)/.stamp-main
	$(VENV)/bin/dlcot demo --home $(HOME_DIR)

test: $(VENV)/.stamp-test
	bash scripts/ensure-test-services.sh
	$(PY) -m pytest -q

dev: $(VENV)/.stamp-main
	mkdir -p $(HOME_DIR) && cp -n dagster.yaml $(HOME_DIR)/dagster.yaml || true
	DAGSTER_HOME=$(HOME_DIR) $(VENV)/bin/dagster dev -w workspace.yaml

bench: $(VENV)/.stamp-test
	$(PY) bench/bench_ingest.py

clean:
	rm -rf .dlcot
