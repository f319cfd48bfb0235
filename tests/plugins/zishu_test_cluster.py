"""Remote job types for the cluster tests: ``paint`` writes a file into ZISHU_HOME and lists it in
its result, ``spin`` reports progress until cancelled or ``seconds`` pass, ``burn`` is fixed CPU work
(the bench's unit)."""

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


@hookimpl
def register_job_types(register) -> None:
    register("paint", paint, title=lambda p: f"Paint {p.get('name')}", remote=True)
    register("spin", spin, remote=True)
    register("burn", burn, remote=True)
