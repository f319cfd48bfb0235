"""The ``install`` job type: what the app's Install button runs on the job queue.

An internal plugin (``trylast``): a third-party plugin may register its own ``install``.
Progress is the bytes downloaded over the plan's total; cancelling stops the transfer at the next
chunk and keeps the partial file, so a retry continues where it stopped.
"""

from __future__ import annotations

import threading

from zishu.hookspecs import hookimpl
from zishu.jobs import JobContext

from .plan import make_plan
from .registry import Registry


def install(ctx: JobContext, request: str, with_deps: bool = True) -> list[dict]:
    from zishu.resources.install import installer_for

    registry = Registry(ctx.home)
    plan = make_plan(ctx.catalog(), [request], registry, with_deps=with_deps)
    plan.check_space(registry.home)
    total = plan.download_size or None
    files: dict[str, int] = {}
    lock = threading.Lock()

    def on_progress(name: str, done: int, size: int | None) -> None:
        with lock:
            files[name] = done
            received = sum(files.values())
        ctx.progress(received, total, f"downloading {name}")

    def on_step(step) -> None:
        ctx.check()
        ctx.progress(sum(files.values()), total, f"installing {step.id}@{step.version.version}")

    installer = installer_for(registry, progress=on_progress, cancelled=ctx.cancelled)
    ctx.progress(0, total, f"{len(plan.to_install)} to install")
    results = installer.install(plan, on_step=on_step)
    ctx.progress(total, total, "installed")
    return [{"id": r.id, "version": r.version, "path": str(r.path), "downloaded": r.transferred,
             "reused": r.reused} for r in results]


@hookimpl(trylast=True)
def register_job_types(register) -> None:
    register("install", install, title=lambda params: f"Install {params.get('request', '?')}")
