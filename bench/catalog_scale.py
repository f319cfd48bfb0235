"""Catalog at 10,000 resources: generate valid synthetic manifests, build them, print the figures.

    .venv/bin/python bench/catalog_scale.py [--count 10000] [--keep DIR]

Prints build time, site size, gzipped index size, largest resource page and the rebuild time
after one manifest changes, each beside its target. Data is generated with a fixed seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import track
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
KINDS = ("character", "live2d", "lora", "model", "voice", "plugin")
WORDS = ("moon", "river", "violet", "ember", "silver", "quiet", "sakura", "nova", "echo", "jade",
         "storm", "lotus", "pixel", "amber", "frost", "willow", "comet", "harbor", "maple", "onyx")


def spec_for(kind: str, rng: random.Random, files: list[str]) -> dict:
    if kind == "character":
        return {"persona": "You are a gentle companion. " * rng.randint(2, 20),
                "greetings": ["Hello!", "你好！"], "emotions": {"happy": {"expression": "smile"}}}
    if kind == "live2d":
        return {"cubism": 4, "entry": files[0], "expressions": ["smile", "sad"], "motions": ["Idle", "TapBody"]}
    if kind == "lora":
        return {"target": rng.choice(["llm", "image"]), "base_model": "sd15", "trigger_words": ["style"]}
    if kind == "model":
        return {"format": "gguf", "role": "llm", "parameters": rng.randint(10**8, 10**10), "ram_mb": 2048}
    if kind == "voice":
        return {"engine": "piper", "language": rng.choice(["zh-CN", "en-US", "ja-JP"])}
    return {"distribution": "zishu-example", "wheel": files[0], "entry_point": "example"}


def manifest(i: int, rng: random.Random, tags: list[str]) -> dict:
    kind = KINDS[i % len(KINDS)]
    owner = f"creator{i % 800}"
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
    first = {"live2d": "model.model3.json", "plugin": "zishu_example-1.0.0-py3-none-any.whl"}.get(kind, "weights.bin")
    versions = []
    for v in range(rng.randint(1, 3)):
        names = [first] + [f"extra-{n}.bin" for n in range(rng.randint(0, 3))]
        versions.append({
            "version": f"1.{v}.0",
            "released": (dt.date(2025, 1, 1) + dt.timedelta(days=rng.randint(0, 600))).isoformat(),
            "files": [{
                "name": n,
                "url": f"https://github.com/{owner}/{name}/releases/download/v1.{v}.0/{n}",
                "sha256": f"{rng.getrandbits(256):064x}",
                "size": rng.randint(10_000, 2_000_000_000),
            } for n in names],
        })
    return {
        "id": f"{owner}/{name}", "kind": kind,
        "name": f"{name.replace('-', ' ').title()}",
        "summary": f"A synthetic {kind} for the scale benchmark, number {i}.",
        "license": rng.choice(["MIT", "Apache-2.0", "CC-BY-4.0", "CC-BY-NC-4.0"]),
        "maintainers": [owner],
        "tags": rng.sample(tags, rng.randint(1, 5)),
        "description": "## About\n\n" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 200))),
        "versions": versions,
        "spec": spec_for(kind, rng, [first]),
    }


def generate(registry: Path, count: int) -> list[Path]:
    rng = random.Random(20261121)
    tags = [f"{a}-{b}" for a in WORDS[:15] for b in WORDS[5:20]][:200]
    (registry / "resources").mkdir(parents=True)
    shutil.copy(REPO / "registry_index" / "policy.yaml", registry / "policy.yaml")
    (registry / "retired.yaml").write_text("retired: []\n")
    paths, downloads_then, downloads_now = [], {}, {}
    for i in track(range(count), description="generating manifests", transient=True):
        data = manifest(i, rng, tags)
        path = registry / "resources" / f"{data['id']}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        paths.append(path)
        then = {v["version"]: rng.randint(0, 5000) for v in data["versions"]}
        downloads_then[data["id"]] = then
        downloads_now[data["id"]] = {k: n + rng.randint(0, 500) for k, n in then.items()}
    stats = registry / "stats"
    stats.mkdir()
    today = dt.date(2026, 11, 21)
    for day, counts in ((today - dt.timedelta(days=30), downloads_then), (today, downloads_now)):
        (stats / f"{day}.json").write_text(json.dumps({"date": str(day), "downloads": counts}))
    return paths


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="Build here and keep the result.")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tools"))
    from zishu_catalog.build import build_catalog

    console = Console()
    base = args.keep or Path(tempfile.mkdtemp(prefix="zishu-scale-"))
    shutil.rmtree(base, ignore_errors=True)
    registry, out, work = base / "registry_index", base / "site", base / "work"
    paths = generate(registry, args.count)

    with console.status(f"full build of {args.count:,} resources"):
        started = time.perf_counter()
        build_catalog(registry, out, site=REPO / "catalog_site", work=work)
        full = time.perf_counter() - started

    size, files = tree_size(out)
    index_gz = len(gzip.compress((out / "api/v1/index.json").read_bytes(), 9))
    largest = max((p.stat().st_size, p) for p in (out / "r").rglob("index.html"))

    changed = paths[len(paths) // 2]
    data = yaml.safe_load(changed.read_text())
    data["summary"] = "Changed for the rebuild benchmark."
    changed.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with console.status("rebuild after one manifest changed"):
        started = time.perf_counter()
        report = build_catalog(registry, out, site=REPO / "catalog_site", work=work)
        rebuild = time.perf_counter() - started
    assert report.incremental, "the rebuild should have been incremental"
    assert "Changed for the rebuild benchmark." in (out / "r" / data["id"] / "index.html").read_text()

    table = Table(title=f"Catalog at {args.count:,} resources")
    for col in ("figure", "measured", "target"):
        table.add_column(col)
    rows = [
        ("full build", f"{full:.1f} s", "≤ 60 s", full <= 60),
        ("site size", f"{size / 1e6:.0f} MB in {files:,} files", "≤ 300 MB", size <= 300e6),
        ("index.json gzipped", f"{index_gz / 1e6:.2f} MB", "≤ 2 MB", index_gz <= 2e6),
        ("largest resource page", f"{largest[0] / 1024:.1f} KB", "≤ 30 KB", largest[0] <= 30 * 1024),
        ("rebuild after one change", f"{rebuild:.1f} s", "≤ 10 s", rebuild <= 10),
    ]
    for name, measured, target, ok in rows:
        table.add_row(name, measured, f"{target} {'✓' if ok else '✗'}")
    console.print(table)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
