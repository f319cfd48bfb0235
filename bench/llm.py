"""LLM figures: the engine API (zishu.engines.use → handle.chat) next to llama-cpp-python called
directly, on the same random-weight GGUF with the same settings.

    python bench/llm.py [--dim 512 --layers 8 --heads 8 --ffn 1408] [--tokens 128] [--rounds 5] [--device cpu]

Writes a llama-architecture GGUF of the given shape (random f32 weights, byte vocabulary), then in
each round asks both paths the same question greedily for ``--tokens`` tokens, alternating which
goes first. Prints, per path, the median time to the first piece and the decode rate (tokens after
the first / time after the first), then the ratio of rates (target ≥ 0.95) and the first-token
overhead of the engine API (target < 10 ms). Real-size shapes: ``--dim 896 --layers 24 --heads 14
--kv-heads 2 --ffn 4864`` (Qwen2.5-0.5B) or ``--dim 4096 --layers 32 --heads 32 --kv-heads 8
--ffn 14336`` (an 8B), best on a GPU with ``--device cuda``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]

QUESTION: list[Any] = [{"role": "system", "content": "You are a helpful character."},
                       {"role": "user", "content": "Tell me a long story about the sea."}]


def timed(pieces) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds from the first piece to the last, pieces)."""
    started = time.perf_counter()
    first: float | None = None
    last = started
    count = 0
    for _ in pieces:
        last = time.perf_counter()
        first = first or last
        count += 1
    if first is None:
        raise SystemExit("the model wrote nothing")
    return first - started, last - first, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=None)
    parser.add_argument("--ffn", type=int, default=1408)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from llama_cpp import Llama

    from tiny_gguf import write_tiny_gguf
    from zishu.engines import ChatOptions, use
    from zishu.runtime import Runtime
    from zishu_llama.loading import device_settings, thread_settings

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ZISHU_HOME"] = str(Path(tmp) / "home")
        gguf = write_tiny_gguf(Path(tmp) / "bench.gguf", dim=args.dim, layers=args.layers, heads=args.heads,
                               kv_heads=args.kv_heads, ffn=args.ffn, context=2048)
        print(f"model: llama dim {args.dim}, {args.layers} layers, {args.heads} heads, ffn {args.ffn}, f32 "
              f"({gguf.stat().st_size / 2**20:.0f} MB) on {args.device}; {args.tokens} tokens a reply, "
              f"{args.rounds} rounds")

        runtime = Runtime()
        started = time.perf_counter()
        engine = use(runtime, "llm", str(gguf), engine="llama-cpp", device=args.device).handle
        engine_load = time.perf_counter() - started
        started = time.perf_counter()
        direct = Llama(model_path=str(gguf), n_ctx=2048, n_batch=512, n_ubatch=512, verbose=False,
                       **device_settings(args.device, "bench"), **thread_settings())
        direct_load = time.perf_counter() - started

        options = ChatOptions(max_tokens=args.tokens, temperature=0.0, seed=1, stop=())
        settings = {"max_tokens": args.tokens, "temperature": 0.0, "top_p": options.top_p, "top_k": options.top_k,
                    "min_p": options.min_p, "repeat_penalty": options.repeat_penalty, "seed": 1}

        def through_engine():
            return timed(engine.chat(QUESTION, options))

        def through_llama():
            stream = direct.create_chat_completion(messages=QUESTION, stream=True, **settings)
            return timed(c for c in stream if c["choices"][0]["delta"].get("content"))  # type: ignore[union-attr, index]

        through_engine(), through_llama()  # warm up both
        results: dict[str, list] = {"engine": [], "direct": []}
        for round_ in range(args.rounds):
            order = [("engine", through_engine), ("direct", through_llama)]
            for name, run in order if round_ % 2 == 0 else order[::-1]:
                results[name].append(run())

        rates, firsts = {}, {}
        for name, runs in results.items():
            firsts[name] = statistics.median(r[0] for r in runs)
            rates[name] = statistics.median((r[2] - 1) / r[1] for r in runs if r[1] > 0)
            load = engine_load if name == "engine" else direct_load
            print(f"{name:>7}: load {load * 1000:7.1f} ms · first piece {firsts[name] * 1000:7.2f} ms · "
                  f"{rates[name]:8.1f} tokens/s · {statistics.median(r[2] for r in runs)} pieces")
        print(f"  ratio: {rates['engine'] / rates['direct']:.3f} (engine tokens/s ÷ direct; target ≥ 0.95)")
        print(f"overhead: {(firsts['engine'] - firsts['direct']) * 1000:+.2f} ms to the first piece (target < 10 ms)")


if __name__ == "__main__":
    main()
