# make run   — the app: the Zishu window (or, with no display, the app served for a browser)
# make test  — set everything up on a clean machine, then run the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch's CPU build (a newer or unpinned torch pulls several GB of CUDA packages); pip's cache lives in
# the project so llama-cpp-python, which compiles llama.cpp for minutes, is built once per checkout
TORCH  ?= torch==2.13.0
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip

.PHONY: setup test run site bench clean

$(STAMP): pyproject.toml package.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q '$(TORCH)'
	$(PY) -m pip install -q -e '.[dev]'
	npm install --no-audit --no-fund --silent
	bash scripts/vendor-frontend.sh
	touch $(STAMP)

setup: $(STAMP)
	bash scripts/ensure-system-packages.sh

test: setup
	$(PY) -m pytest -n 2 -q

run: setup
	$(VENV)/bin/zishu app

# make site  — build the catalog website from registry_index/ and serve it on 127.0.0.1:8000
site: setup
	$(VENV)/bin/zishu catalog build registry_index --out .cache/site
	$(PY) -m http.server --directory .cache/site --bind 127.0.0.1 8000

bench: setup
	$(PY) bench/catalog_scale.py
	$(PY) bench/job_queue.py
	$(PY) bench/llm.py
	$(PY) bench/asr.py
	$(PY) bench/image.py
	$(PY) bench/voice_loop.py

clean:
	rm -rf $(VENV) node_modules .cache
