"""The studio's own cost per picture, on the CPU at tiny sizes (issue 15, item 10).

    python bench/studio.py [--images 10] [--size 64] [--steps 20] [--shape tiny|sdxl-tiny]

Queues ``--images`` image jobs at once (each its own seed, so none comes from the result cache) on a
real runtime with one in-app worker, drawing with the real diffusers engine on a tiny random
pipeline (``tests/tiny_diffusers.py``), and prints:

- how many times the pipeline was loaded for them (the engine's ``load``, counted): 1 is the target;
- per picture: the job's wall time (the job table's started → finished), the time inside the
  pipeline call (diffusers' ``__call__``: text encoders, denoising, VAE decode; minus the time spent
  in the studio's own step callback: progress, cancel checks, previews), and the host's overhead =
  wall − pipeline, in ms and as a share of the wall time (target < 2 %);
- the same for the whole run, from the first submit to the last job's end, the load excluded.

The host's overhead is a fixed cost per picture (the queue, the job table, hashing the model, the
PNG with its parameters, the gallery row, the previews), so its share shrinks as pictures take
longer: the tiny pipeline draws in tens of milliseconds where a real model takes seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]


class PipelineClock:
    """Wraps the diffusers engine's pipeline call (``zishu_diffusers.control.pipeline``) to time what
    happens inside it, less the studio's step callback; per job (by thread)."""

    def __init__(self) -> None:
        self.inside: dict[int, float] = {}
        self.callbacks: dict[int, float] = {}
        self.current: dict[int, int] = {}  # thread → job id

    def install(self) -> None:
        from zishu_diffusers import control

        original = control.pipeline

        def pipeline(drawer, request):
            call = original(drawer, request)

            def timed(**arguments):
                job = self.current.get(threading.get_ident(), -1)
                step = arguments.get("callback_on_step_end")
                if step is not None:
                    def counted(*a, **k):
                        started = time.perf_counter()
                        try:
                            return step(*a, **k)
                        finally:
                            self.callbacks[job] = self.callbacks.get(job, 0.0) + time.perf_counter() - started
                    arguments["callback_on_step_end"] = counted
                started = time.perf_counter()
                try:
                    return call(**arguments)
                finally:
                    self.inside[job] = self.inside.get(job, 0.0) + time.perf_counter() - started

            return timed

        control.pipeline = pipeline

    def pure(self, job: int) -> float:
        return self.inside.get(job, 0.0) - self.callbacks.get(job, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shape", choices=("tiny", "sdxl-tiny"), default="tiny")
    args = parser.parse_args()

    from tiny_diffusers import write_tiny_sd, write_tiny_sdxl

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ZISHU_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("ZISHU_QUEUE", None)
        folder = (write_tiny_sdxl if args.shape == "sdxl-tiny" else write_tiny_sd)(Path(tmp) / "sd")

        from zishu.runtime import Runtime
        from zishu.studio import jobs as studio_jobs

        runtime = Runtime()
        clock = PipelineClock()
        clock.install()
        engine = runtime.engines.engines["diffusers"]
        loads: list[float] = []
        load = engine.load

        def counted_load(model, device="cpu"):
            started = time.perf_counter()
            try:
                return load(model, device)
            finally:
                loads.append(time.perf_counter() - started)

        engine.load = counted_load  # type: ignore[method-assign]
        draw = studio_jobs.draw_images

        def tagged(ctx, **params):  # which job this worker thread draws, for the clock
            clock.current[threading.get_ident()] = ctx.job_id
            return draw(ctx, **params)

        runtime.jobs.types["image"] = dataclasses.replace(runtime.jobs.types["image"], run=tagged)
        runtime.jobs.start_consumer(1)
        request = {"prompt": "a girl with silver hair", "model": str(folder), "width": args.size,
                   "height": args.size, "steps": args.steps}
        started = time.time()
        submitted = [runtime.jobs.submit("image", {**request, "seed": n}) for n in range(args.images)]
        # a slow poll: this thread's queries would otherwise take the GIL from the worker it measures
        while any(runtime.jobs.get(j.id).status in ("PENDING", "RUNNING") for j in submitted):
            time.sleep(0.5)
        done = [runtime.jobs.get(j.id) for j in submitted]
        whole = max(j.finished_at or started for j in done) - started
        runtime.close()
        failed = [j for j in done if j.status != "SUCCESS"]
        if failed:
            raise SystemExit(f"jobs failed: {[(j.id, j.status, j.error) for j in failed]}")

        load_seconds = sum(loads)
        rows = []
        for n, job in enumerate(done):
            assert job.finished_at is not None and job.started_at is not None  # every job succeeded
            wall = job.finished_at - job.started_at - (load_seconds if n == 0 else 0.0)
            pure = clock.pure(job.id)
            rows.append((wall, pure, wall - pure))
        wall = statistics.median(r[0] for r in rows)
        pure = statistics.median(r[1] for r in rows)
        overhead = statistics.median(r[2] for r in rows)
        run_pure = sum(r[1] for r in rows)
        run_wall = whole - load_seconds
        print(f"{args.images} queued {args.shape} images, {args.size}×{args.size}, {args.steps} steps, CPU: "
              f"{len(loads)} load{'s' if len(loads) != 1 else ''} of the pipeline ({load_seconds:.2f} s)")
        print(f"per image (median): wall {wall * 1000:.1f} ms · inside the pipeline {pure * 1000:.1f} ms · "
              f"host overhead {overhead * 1000:.1f} ms = {overhead / wall * 100:.2f} % of the wall time")
        print(f"whole run (first submit → last end, load excluded): {run_wall:.2f} s · inside the pipeline "
              f"{run_pure:.2f} s · host overhead {(run_wall - run_pure) / args.images * 1000:.1f} ms per image "
              f"= {(run_wall - run_pure) / run_wall * 100:.2f} %")


if __name__ == "__main__":
    main()
