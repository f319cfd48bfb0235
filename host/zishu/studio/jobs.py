"""The ``image`` job type: a studio request drawn on the job queue.

An internal plugin (``trylast``), registered like the ``install`` job. Its ``check`` runs at submit
(``Studio.prepare``), so ``POST /api/jobs {"kind": "image"}`` and ``POST /api/studio/images`` refuse
bad input alike, naming the field, before anything is queued. While it runs, progress is the
denoising step over the steps, and every few steps the job's ``extra`` holds ``preview``: a small
JPEG data URL of the picture so far, which the job event stream carries to the window. Cancel stops
it between two steps; Retry draws it again. The result lists the pictures (``Result.as_dict``).
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

from zishu.hookspecs import hookimpl
from zishu.jobs import JobContext

from . import metrics
from .requests import ImageRequest

PREVIEW_EVERY = 3  # steps between previews
PREVIEW_QUALITY = 70


def draw_images(ctx: JobContext, **params: Any) -> dict:
    studio = ctx.service("studio")
    steps = int(params.get("steps", 20))
    ctx.progress(0, steps, "loading the model")

    def progress(step: int, total: int) -> None:
        ctx.check()
        ctx.progress(step, total, f"step {step} of {total}")

    def preview(step: int, total: int, image) -> None:
        ctx.progress(step, total, f"step {step} of {total}", extra={"preview": data_url(image), "step": step})

    started = time.perf_counter()
    result = studio.generate(params, job_id=ctx.job_id, progress=progress, cancelled=ctx.cancelled,
                             preview=preview, preview_every=PREVIEW_EVERY)
    if not result.cached:
        metrics.observe(time.perf_counter() - started, len(result.images))  # /metrics' histogram
    ctx.progress(steps, steps, "from the cache" if result.cached else "done", extra={})
    return result.as_dict()


def data_url(image) -> str:
    """``image`` as a small JPEG ``data:`` URL."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def check(params: dict, service) -> dict:
    """Refuse a bad request at submit; queue the checked request with its model filled in."""
    return service("studio").prepare(params).request.params()


def title(params: dict) -> str:
    prompt = str(params.get("prompt", ""))
    return f"Draw: {prompt[:60]}{'…' if len(prompt) > 60 else ''}"


@hookimpl(trylast=True)
def register_job_types(register) -> None:
    register("image", draw_images, title=title, check=check)


__all__ = ["ImageRequest", "check", "data_url", "draw_images", "register_job_types"]
