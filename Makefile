# make run   — the app: the Zishu window (or, with no display, the app served for a browser)
# make test  — set everything up on a clean machine, then run the whole suite
# make check — ruff, mypy and the import-linter contracts (settings in pyproject.toml)
# make lock  — after changing a dependency range in pyproject.toml: re-resolve requirements.lock
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# pip's cache lives in the project so llama-cpp-python, which compiles llama.cpp for minutes, is built
# once per checkout
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
# The lock pins the registry's torch 2.14.1 and torchvision 0.29.1 (spandrel, the upscaler, imports
# torchvision; no CPU-only pair of the two installs here). That is a CUDA build: it brings nvidia-* and
# triton packages (about 5.5 GB in the venv) and runs on the CPU as well as on a GPU.
# the tool that compiles the lock, and the installer that reads it, themselves pinned
UV     := uv==0.13.9
PIP    := pip==26.3

.PHONY: setup test check lock run site bench clean

# Exactly the lock: --no-deps, so nothing outside it is resolved today; pip check proves it is complete.
$(STAMP): $(LOCK) pyproject.toml package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q '$(PIP)'
	$(PY) -m pip install -q --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	npm ci --no-audit --no-fund --silent
	bash scripts/vendor-frontend.sh
	touch $(STAMP)

setup: $(STAMP)
	bash scripts/ensure-system-packages.sh

test: setup
	$(MAKE) --no-print-directory check
	$(PY) -m pytest -n 2 -q

# The lock is resolved for CPython 3.11 on linux x86_64 (this machine and CI). Pins already in it are
# kept where pyproject's ranges still allow them; `make lock LOCK_FLAGS=--upgrade` moves every package
# to the newest version its range allows.
LOCK_FLAGS ?=
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q '$(UV)'
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) --quiet \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --overrides scripts/lock-overrides.txt \
	  --custom-compile-command 'make lock' --output-file $(LOCK)

# all three run, each reporting everything it finds; the target fails if any of them did
check: $(STAMP)
	status=0; \
	$(VENV)/bin/ruff check host plugins tools tests bench || status=1; \
	$(VENV)/bin/mypy || status=1; \
	$(VENV)/bin/lint-imports || status=1; \
	exit $$status

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
