"""Memory estimates against measured resident memory, on the tests' tiny models.

    python bench/memory_estimate.py [--dim 64 --layers 2 --heads 4]

For each engine (llama-cpp chat, llama-cpp-embed on the same GGUF, sentence-transformers on a tiny
BERT in the BGE layout) a fresh Python process imports Zishu and the plugin, notes its resident
memory (RSS), asks the engine's ``estimate`` (the figure the model cache checks and the Engines
panel shows), loads the model, uses it once (a short chat reply, or embedding a few texts) and
notes RSS again. Prints the estimate, the measured growth and their ratio (target: within 2×,
either way). Engines whose library is not installed are skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]

CASES = {
    "llama-cpp": ("zishu_llama", "LlamaChatEngine", "gguf"),
    "llama-cpp-embed": ("zishu_llama", "LlamaEmbedEngine", "gguf"),
    "sentence-transformers": ("zishu_sentence_transformers", "SentenceEmbedEngine", "st"),
}


def measure(case: str, path: str) -> dict:
    """In this (fresh) process: RSS before, the estimate, RSS after loading and one use."""
    import gc
    import importlib

    import psutil

    from zishu.engines import ChatOptions, ModelRef

    module, cls, _ = CASES[case]
    engine = getattr(importlib.import_module(module), cls)()
    missing = engine.unavailable()
    if missing:
        return {"case": case, "skipped": missing}
    model = ModelRef(key=path, path=Path(path))
    gc.collect()
    before = psutil.Process().memory_info().rss
    estimate = engine.estimate(model, "cpu").ram
    handle = engine.load(model, "cpu")
    if engine.info.kind == "llm":
        "".join(handle.chat([{"role": "user", "content": "Hello there!"}], ChatOptions(max_tokens=16, seed=1)))
    else:
        handle.embed(["a cat", "你好，我是小雨", "remember that I like the sea"])
    after = psutil.Process().memory_info().rss
    return {"case": case, "estimate": estimate, "measured": after - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--one", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        from tiny_gguf import write_tiny_gguf

        paths["gguf"] = write_tiny_gguf(Path(tmp) / "tiny.gguf", dim=args.dim, layers=args.layers, heads=args.heads)
        try:
            from tiny_sentence import write_tiny_sentence_model

            paths["st"] = write_tiny_sentence_model(Path(tmp) / "tiny-st")
        except ImportError as e:
            print(f"(no tiny sentence-transformers model: {e})")
        print(f"{'engine':<24}{'estimate':>12}{'measured RSS':>15}{'ratio':>8}")
        for case, (_, _, needs) in CASES.items():
            if needs not in paths:
                print(f"{case:<24}{'skipped: its library is not installed':>35}")
                continue
            out = subprocess.run([sys.executable, __file__, "--one", case, str(paths[needs])],
                                 capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            if "skipped" in row:
                print(f"{case:<24}skipped: {row['skipped']}")
                continue
            mb = 2**20
            print(f"{case:<24}{row['estimate'] / mb:>9.1f} MB{row['measured'] / mb:>12.1f} MB"
                  f"{row['estimate'] / max(row['measured'], 1):>8.2f}")


if __name__ == "__main__":
    main()
