#!/usr/bin/env bash
# SDXL through the studio and through raw diffusers on the GPU machine, in one command (issue 15,
# item 10); the Python is bench/gpu/studio.py (its docstring says what is measured).
#
#   here, once (needs pip's index):    bash bench/gpu/studio.sh wheels
#       downloads into .whl/ the wheels the GPU machine lacks (its image has torch, transformers,
#       huggingface-hub, numpy …, not these), at the versions of requirements.lock
#   on the GPU machine (the device tool):
#       run(command="bash bench/gpu/studio.sh", carry=[".whl"], timeout_s=540)
#       installs them and Zishu itself (no deps, no network) into /tmp/site, then measures raw
#       diffusers fp16, fp16 + channels_last + fused QKV, the studio, and, in its own process with
#       its own limit (STUDIO_BENCH_COMPILE_SECONDS, default 200), torch.compile; about 6–8 minutes
#   on a CPU, to check the script (tiny SDXL, 64², 4 steps; no wheels needed where Zishu is installed):
#       STUDIO_BENCH_TINY=1 bash bench/gpu/studio.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

WHEELS=(diffusers huey peewee pydantic pydantic-core annotated-types typing-inspection redis semver truststore
        importlib-metadata)

if [[ "${1:-}" == "wheels" ]]; then
  exclude="$(git rev-parse --git-common-dir)/info/exclude"
  grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
  pins=()
  for name in "${WHEELS[@]}"; do
    pins+=("$(grep -i "^${name}==" requirements.lock)")
  done
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${pins[@]}"
  exit 0
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import diffusers, huey, peewee, pydantic, zishu_diffusers" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "this Python lacks Zishu's packages: run 'bash bench/gpu/studio.sh wheels' here first, then carry .whl"; exit 1; }
  started=$(date +%s)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
    --target /tmp/site .  # Zishu itself: its entry points register the diffusers engine
  export PYTHONPATH=/tmp/site
  echo "installed the carried wheels and Zishu in $(( $(date +%s) - started )) s"
else
  export PYTHONPATH="$PWD/host:$PWD/plugins:$PWD/tools${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
work=$(mktemp -d /tmp/studio-bench.XXXXXX)
export STUDIO_BENCH_DIR="$work" TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$work/inductor}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

"$PYTHON" bench/gpu/studio.py
folder="$work/sdxl"
if ! timeout "${STUDIO_BENCH_COMPILE_SECONDS:-200}" "$PYTHON" bench/gpu/studio.py compile "$folder"; then
  echo "torch.compile: not finished within ${STUDIO_BENCH_COMPILE_SECONDS:-200} s (compile time counts against the lease)"
fi
rm -rf "$work"
