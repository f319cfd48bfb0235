"""SDXL through the studio and through raw diffusers in the same run (issue 15, item 10); run by
``bench/gpu/studio.sh``, which sets up the GPU machine.

    python bench/gpu/studio.py                 SDXL at its real architecture size, random weights
                                               (built from config, nothing downloaded), 1024², 30 steps
    STUDIO_BENCH_TINY=1 python bench/gpu/studio.py
                                               the tiny SDXL-layout test pipeline, 64², 4 steps, on the
                                               CPU when there is no GPU: checks the script, not the speed
    python bench/gpu/studio.py compile FOLDER  only the torch.compile run (studio.sh runs it in its own
                                               process, with its own time limit)

Paths, each the median of ``STUDIO_BENCH_ROUNDS`` (3) draws after one warm-up draw:

1. raw diffusers, fp16 (fp32 on a CPU): ``StableDiffusionXLPipeline.from_pretrained`` and a call;
2. raw diffusers, fp16 + channels_last (UNet and VAE) + fused QKV projections;
3. the studio: ``Studio.generate`` on a runtime of its own (the engine cache, the diffusers engine's
   dtype choice, the gallery's PNG with its parameters), each draw a new seed so none is cached;
4. (``compile``) 2. plus ``torch.compile`` of the UNet: the first call (compiling) timed alone, then
   the median; inductor's artefacts go to ``TORCHINDUCTOR_CACHE_DIR`` so a second run reuses them.

Prints one line per path: seconds per image, ms per step (steps timed by the step callback), and the
studio's ratio to the fastest raw path.
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]

TINY = os.environ.get("STUDIO_BENCH_TINY") == "1"
SIZE = 64 if TINY else 1024
STEPS = 4 if TINY else 30
ROUNDS = int(os.environ.get("STUDIO_BENCH_ROUNDS", "3"))
PROMPT = "a girl with silver hair, watercolour"


def device_and_dtype():
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def build(folder: Path) -> Path:
    from tiny_diffusers import write_full_size_sd, write_tiny_sdxl

    started = time.perf_counter()
    if TINY:
        write_tiny_sdxl(folder)
    else:
        write_full_size_sd(folder, "sdxl", dtype="float16")
    print(f"built {'tiny SDXL' if TINY else 'SDXL (real size, random weights, fp16)'} in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return folder


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_draws(draw, label: str) -> float:
    """Median seconds per draw of ``draw(seed, step_marks)``, after a warm-up; prints the line."""
    draw(10_000, [])
    totals, per_step = [], []
    for round_ in range(ROUNDS):
        marks: list[float] = []
        sync()
        started = time.perf_counter()
        draw(round_, marks)
        sync()
        totals.append(time.perf_counter() - started)
        per_step += [b - a for a, b in itertools.pairwise(marks)]
    median = statistics.median(totals)
    step = statistics.median(per_step) * 1000 if per_step else float("nan")
    print(f"{label:<52} {median:7.3f} s/image  {step:7.1f} ms/step  (median of {ROUNDS}; "
          f"runs {min(totals):.3f}–{max(totals):.3f} s)", flush=True)
    return median


def raw_pipeline(folder: Path, optimised: bool):
    import torch
    from diffusers import StableDiffusionXLPipeline

    device, dtype = device_and_dtype()
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    if optimised:
        pipe.fuse_qkv_projections()
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    return pipe


def raw_draw(pipe):
    import torch

    def draw(seed: int, marks: list[float]) -> None:
        def step_end(p, step, timestep, tensors):
            marks.append(time.perf_counter())
            return tensors

        pipe(PROMPT, width=SIZE, height=SIZE, num_inference_steps=STEPS, guidance_scale=7.0,
             generator=torch.Generator("cpu").manual_seed(seed), callback_on_step_end=step_end)

    return draw


def studio_draw(home: Path, folder: Path):
    os.environ["ZISHU_HOME"] = str(home)
    os.environ.pop("ZISHU_QUEUE", None)
    from zishu.runtime import Runtime

    runtime = Runtime(home)
    device, _ = device_and_dtype()

    def draw(seed: int, marks: list[float]) -> None:
        runtime.studio.generate({"prompt": PROMPT, "model": str(folder), "width": SIZE, "height": SIZE,
                                 "steps": STEPS, "guidance": 7.0, "seed": seed},
                                progress=lambda step, total: marks.append(time.perf_counter()), device=device)

    return runtime, draw


def compile_run(folder: Path) -> None:
    import torch

    pipe = raw_pipeline(folder, optimised=True)
    pipe.unet = torch.compile(pipe.unet, fullgraph=True)
    started = time.perf_counter()
    raw_draw(pipe)(0, [])
    sync()
    print(f"torch.compile: first draw (compiling the UNet) {time.perf_counter() - started:.1f} s", flush=True)
    timed_draws(raw_draw(pipe), "raw diffusers, fp16 + channels_last + fused QKV + compile")


def main() -> None:
    import torch

    device, dtype = device_and_dtype()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "no GPU"
    print(f"device {device} ({gpu}), dtype {str(dtype).removeprefix('torch.')}, torch {torch.__version__}, "
          f"{SIZE}×{SIZE}, {STEPS} steps", flush=True)
    if len(sys.argv) == 3 and sys.argv[1] == "compile":
        compile_run(Path(sys.argv[2]))
        return
    work = Path(os.environ.get("STUDIO_BENCH_DIR") or tempfile.mkdtemp(prefix="studio-bench-"))
    folder = work / "sdxl"
    if not (folder / "model_index.json").is_file():
        build(folder)
    results = {}
    for optimised, label in ((False, "raw diffusers, fp16"), (True, "raw diffusers, fp16 + channels_last + fused QKV")):
        pipe = raw_pipeline(folder, optimised)
        results[label] = timed_draws(raw_draw(pipe), label if device == "cuda" else label.replace("fp16", "fp32"))
        del pipe
        if device == "cuda":
            torch.cuda.empty_cache()
    runtime, draw = studio_draw(work / "home", folder)
    studio = timed_draws(draw, "the studio (Studio.generate, its engine's choices)")
    from zishu.engines import use

    ready = use(runtime, "image", str(folder), device=device)  # the cached pipeline the studio drew with
    pipe = ready.handle.pipe  # type: ignore[attr-defined]  # the diffusers engine's own, not the protocol's
    print(f"the studio's engine drew on {ready.device} in {str(pipe.dtype).removeprefix('torch.')}; "
          f"loads: {len(runtime.models.loaded())}", flush=True)
    runtime.models.unload()
    runtime.close()
    fastest = min(results.values())
    print(f"studio / fastest raw path: {studio / fastest:.3f}× (target ≤ 1.03×)", flush=True)
    print(f"FOLDER {folder}", flush=True)


if __name__ == "__main__":
    main()
