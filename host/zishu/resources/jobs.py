"""The ``install`` job type: what the app's Install button runs on the job queue.

An internal plugin (``trylast``): a third-party plugin may register its own ``install``.
Progress is the bytes downloaded over the plan's total; cancelling stops the transfer at the next
chunk (or during a wait) and keeps the partial file, so a retry continues where it stopped.

It goes on by itself where a user would expect it to: a network outage is waited out (the job's
message says "waiting for the network" until bytes flow again; Cancel works throughout), and the
job type is ``resumable``, so an install cut off by a crash or by closing the app is queued again
at the next start and continues from its partial files.
"""

from __future__ import annotations

import threading

from zishu.hookspecs import hookimpl
from zishu.jobs import JobContext

from .plan import make_plan
from .versions import VersionStore


def install(ctx: JobContext, request: str, with_deps: bool = True, approve_plugins: list[str] | None = None
            ) -> list[dict]:
    """``approve_plugins``: the plugin ids the user approved in the app's Install dialog."""
    from zishu.resources.install import installer_for

    registry = VersionStore(ctx.home)
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

    def on_wait(name: str, seconds: float, reason: str) -> None:
        with lock:
            received = sum(files.values())
        ctx.progress(received, total, f"waiting for the network ({reason}); trying {name} again in "
                                      f"{_seconds(seconds)}")

    def on_step(step) -> None:
        ctx.check()
        ctx.progress(sum(files.values()), total, f"installing {step.id}@{step.version.version}")

    installer = installer_for(registry, progress=on_progress, cancelled=ctx.cancelled,
                              wait_for_network=True, waiting=on_wait)
    ctx.progress(0, total, f"{len(plan.to_install)} to install")
    approved = set(approve_plugins or ())
    results = installer.install(plan, on_step=on_step, approve_plugin=lambda res, _info: res.id in approved)
    ctx.progress(total, total, "installed")
    return [{"id": r.id, "version": r.version, "path": str(r.path), "downloaded": r.transferred,
             "reused": r.reused} for r in results]


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


@hookimpl(trylast=True)
def register_job_types(register) -> None:
    register("install", install, title=lambda params: f"Install {params.get('request', '?')}", resumable=True)
