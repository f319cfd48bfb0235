"""Remote job types for the cluster tests: ``paint`` writes a file into ZISHU_HOME and lists it in
its result (and logs each run in ``outputs/paint/runs.log``), ``spin`` reports progress until
cancelled or ``seconds`` pass, ``burn`` is fixed CPU work (the bench's unit), ``render`` needs a
catalog model (routed by model): it resolves the model through the engines' resolution, as an
engine job does, and writes a file naming the version it found."""

from __future__ import annotations

import hashlib
import os
import time

from zishu.hookspecs import hookimpl


def paint(ctx, name: str, size: int = 50_000) -> dict:
    data = hashlib.sha256(name.encode()).digest() * (size // 32)
    rel = f"outputs/paint/{name}.bin"
    path = ctx.home / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with open(ctx.home / "outputs/paint/runs.log", "a") as runs:  # one line a run, to count them
        runs.write(f"{name}\n")
    ctx.progress(1, 1, "painted")
    return {"files": [rel], "painted_by": str(ctx.home)}


def spin(ctx, seconds: float = 60.0) -> dict:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        ctx.check()
        n += 1
        ctx.progress(n, None, f"spun {n}")
        time.sleep(0.05)
    return {"spun": n, "pid": os.getpid()}


def burn(ctx, rounds: int = 200_000) -> dict:
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {"digest": digest.hex()}


def render(ctx, model: str, name: str = "r", size: int = 1000, uninstall_first: bool = False) -> dict:
    from zishu.engines import resolve_model
    from zishu.resources.versions import VersionStore

    store = VersionStore(ctx.home)
    if uninstall_first:  # the model goes away between the node's check and the engine's load
        import shutil

        shutil.rmtree(ctx.home / "resources" / model.partition("@")[0])
        (ctx.home / "registry.json").unlink(missing_ok=True)
    ref = resolve_model(model, store)  # MODEL_NOT_AVAILABLE when missing; never downloads
    rel = f"outputs/render/{name}.bin"
    path = ctx.home / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: quick at any size
    return {"files": [rel], "model": ref.key, "home": str(ctx.home), "pid": os.getpid()}


@hookimpl
def register_job_types(register) -> None:
    register("paint", paint, title=lambda p: f"Paint {p.get('name')}", remote=True)
    register("spin", spin, remote=True)
    register("burn", burn, remote=True)
    register("render", render, remote=True, model=lambda p: p.get("model"))
