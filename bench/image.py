"""Image figures through the engine API (zishu.engines.use → draw) on random-weight Stable Diffusion
pipelines built with diffusers' own classes.

    python bench/image.py [--shape tiny|sd15|sdxl] [--size 64] [--steps 4] [--rounds 3] [--device cpu]

Prints the load time, then per draw: the median time of a whole draw and the time per step
(steps timed by the engine's progress callback, so the text encoders and the VAE decode are in the
whole draw only). ``tiny`` is the test pipeline; ``sd15`` and ``sdxl`` are the real architectures at
full size (random weights, saved in fp16), for a GPU: e.g. ``--shape sdxl --size 1024 --steps 30
--device cuda`` is the figure diffusers publishes (2.43 s on an A100 with its optimisations).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]


def mark_step(marks: list[float], step: int, steps: int) -> None:
    """The engine's progress callback: note when each step ended."""
    marks.append(time.perf_counter())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("tiny", "sd15", "sdxl"), default="tiny")
    parser.add_argument("--size", type=int, default=None,
                        help="width and height (default: 64 tiny, 512 sd15, 1024 sdxl)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    size = args.size or {"tiny": 64, "sd15": 512, "sdxl": 1024}[args.shape]

    from tiny_diffusers import write_full_size_sd, write_tiny_sd, write_tiny_sdxl  # noqa: F401
    from zishu.engines import ImageRequest, use
    from zishu.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ZISHU_HOME"] = str(Path(tmp) / "home")
        started = time.perf_counter()
        folder = Path(tmp) / args.shape
        if args.shape == "tiny":
            write_tiny_sd(folder)
        else:
            write_full_size_sd(folder, args.shape)
        print(f"built {args.shape} with random weights in {time.perf_counter() - started:.1f} s")

        runtime = Runtime()
        started = time.perf_counter()
        ready = use(runtime, "image", str(folder), device=args.device)
        print(f"load on {ready.device}: {time.perf_counter() - started:.2f} s (import included)")
        request = ImageRequest(prompt="a girl with silver hair", width=size, height=size, steps=args.steps,
                               guidance=7.0, seed=1)
        ready.handle.draw(ImageRequest(prompt="warm up", width=size, height=size, steps=1, seed=0))
        totals, per_step = [], []
        for _ in range(args.rounds):
            marks: list[float] = []
            started = time.perf_counter()
            ready.handle.draw(request, progress=partial(mark_step, marks))
            totals.append(time.perf_counter() - started)
            per_step += [b - a for a, b in itertools.pairwise(marks)]
        step = f"step {statistics.median(per_step) * 1000:.1f} ms" if per_step else "one step"
        print(f"{args.shape} {size}×{size}, {args.steps} steps: draw {statistics.median(totals):.3f} s · "
              f"{step} (median of {args.rounds} draws)")


if __name__ == "__main__":
    main()
