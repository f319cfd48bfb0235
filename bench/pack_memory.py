"""Peak memory of packing and opening a big .zpkg: flat, whatever the package's size.

    python bench/pack_memory.py [--size-mib 2048] [--random-mib 64]

Builds, in a temp ZISHU_HOME, a character whose image LoRA holds one file of ``--size-mib``
(sparse: no disk used for the source except its last ``--random-mib`` MiB of random bytes, so
nothing compresses it away), packs it standalone (the LoRA embedded, stored), then opens and
verifies the package (every byte hashed and written out). Each step runs in a fresh process that
reports its peak resident memory (``ru_maxrss``); the baseline is the same process's peak after
importing Zishu. Prints MiB figures; memory should not grow with ``--size-mib``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tools")]

STEP = r"""
import json, resource, sys, time
from pathlib import Path
from zishu import plugins
from zishu.resources.versions import VersionStore
from zishu.packaging.packages import pack_character
from zishu.packaging.unpack import open_zpkg
plugins.load_plugins()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
home, out, step = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
if step == "pack":
    pack_character(VersionStore(home), "local/big", out)
else:
    open_zpkg(out, home / "tmp" / "bench-open")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"step": step, "baseline_mib": base, "peak_mib": peak, "seconds": time.perf_counter() - started}))
"""


def build(home: Path, size: int, random_tail: int) -> None:
    sys.path[:0] = PATHS
    from types import SimpleNamespace

    from zishu.catalog import RESOURCE
    from zishu.companion.characters import create_character
    from zishu.resources.install import sha256_of
    from zishu.resources.versions import VersionStore

    folder = home / "resources" / "alice" / "big-lora" / "1.0.0"
    folder.mkdir(parents=True)
    weights = folder / "big.safetensors"
    with weights.open("wb") as f:
        f.truncate(size - random_tail)  # sparse zeros
        f.seek(size - random_tail)
        for _ in range(random_tail // 2**20):
            f.write(os.urandom(2**20))
    entry = {"name": weights.name, "url": "https://example.org/big.safetensors", "sha256": sha256_of(weights),
             "size": size}
    manifest = {"id": "alice/big-lora", "kind": "lora", "name": "Big", "summary": "A big LoRA.", "license": "MIT",
                "maintainers": ["alice"], "versions": [{"version": "1.0.0", "released": "2026-01-01",
                                                        "files": [entry]}],
                "spec": {"target": "image", "base_model": "sd15"}}
    (folder / "manifest.json").write_bytes(RESOURCE.dump_json(RESOURCE.validate_python(manifest)))
    runtime = SimpleNamespace(home=home, registry=VersionStore(home))
    create_character(runtime, {"name": "Big", "persona": "You are big.", "image_style": {"lora": "alice/big-lora"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--random-mib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "big.zpkg"
        started = time.perf_counter()
        build(home, args.size_mib * 2**20, args.random_mib * 2**20)
        print(f"built a {args.size_mib:,} MiB LoRA in {time.perf_counter() - started:.1f} s")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(PATHS), "ZISHU_HOME": str(home)}
        for step in ("pack", "open"):
            done = subprocess.run([sys.executable, "-c", STEP, str(home), str(out), step], env=env,
                                  capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            size = out.stat().st_size / 2**20
            print(f"{step:5} {size:8,.0f} MiB package  peak RSS {r['peak_mib']:6.1f} MiB "
                  f"(after import {r['baseline_mib']:6.1f} MiB, +{r['peak_mib'] - r['baseline_mib']:.1f})  "
                  f"{r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
