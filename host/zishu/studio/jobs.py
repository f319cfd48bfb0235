"""The ``image`` job type: a studio request drawn on the job queue.

An internal plugin (``trylast``), registered like the ``install`` job. Its ``check`` runs at submit
(``Studio.prepare``), so ``POST /api/jobs {"kind": "image"}`` and ``POST /api/studio/images`` refuse
bad input alike, naming the field, before anything is queued. While it runs, progress is the
denoising step over the steps, and every few steps (at most every ``PREVIEW_GAP`` seconds) the
job's ``extra`` holds ``preview``: a small JPEG data URL of the picture so far, which the job
event stream carries to the window. Cancel stops it between two steps; Retry draws it again. The
result lists the pictures (``Result.as_dict``) and their ``files`` (relative to ZISHU_HOME, what
``GET /api/jobs/<id>/files/<n>`` serves).

On a cluster (``ZISHU_QUEUE=redis://…``) the job is remote and routed by its model: a node that
has the model draws it into its own gallery, the pictures come back as the result's ``files``, and
``arrived`` records them in the app's gallery with the settings that made them. An app that lacks
the model itself checks the request's fields at submit, and the node that draws checks the rest.
What only this app has is settled at submit (``for_any_node``): the character and the style are
expanded here into the fields they stand for, their names kept as ``labels`` for the gallery rows,
and a picture named by gallery id (``init_image``, ``mask``, ``control.image``) is sent as a data URL
of its file, since the node's gallery is another one.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

from zishu.cluster.routing import catalog_model, holds
from zishu.errors import ResourceNotAvailable
from zishu.hookspecs import hookimpl
from zishu.jobs import JobContext

from . import metrics
from .gallery import FOLDER, StudioImage
from .pictures import inline_picture
from .requests import ImageRequest

PREVIEW_EVERY = 3  # steps between previews
PREVIEW_GAP = 0.25  # seconds at least between two previews
PREVIEW_QUALITY = 70
LABELS = "labels"  # the job parameter with the character and style a cluster job was expanded from


def for_any_node(fields: dict, studio: Any) -> dict:
    """``fields`` (a request's) as any node of the cluster draws them (see the module's docstring)."""
    asked = request = ImageRequest.parse(fields)
    for expand in studio.expanders:
        request = expand(request)
    out = {k: v for k, v in request.given().items() if k not in ("character", "style")}
    for name in ("init_image", "mask"):
        if out.get(name) is not None:
            out[name] = inline_picture(out[name], name, studio.gallery)
    if out.get("control"):
        out["control"] = {**out["control"], "image": inline_picture(out["control"]["image"], "control.image",
                                                                    studio.gallery)}
    labels = {name: getattr(asked, name) for name in ("character", "style") if getattr(asked, name)}
    return {**out, LABELS: labels} if labels else out


def draw_images(ctx: JobContext, **params: Any) -> dict:
    studio = ctx.service("studio")
    labels = params.pop(LABELS, None) or {}
    prepared = studio.prepare(params)  # the user's request expanded (style, character) once, here
    steps = prepared.request.steps
    ctx.progress(0, steps, "loading the model")

    # one message while it draws, so each step's report is throttled like any job's (a new message
    # is always written); the window shows the step from ``done`` and ``total``
    def progress(step: int, total: int) -> None:
        ctx.check()
        ctx.progress(step, total, "drawing")

    last_preview = [0.0]

    def preview(step: int, total: int, image) -> None:
        # every few steps, and no more often than PREVIEW_GAP: a fast model's steps come quicker than
        # anyone can see, and each preview is a JPEG and a write to the job table
        now = time.monotonic()
        if now - last_preview[0] < PREVIEW_GAP:
            return  # the step itself was reported by ``progress``
        last_preview[0] = now
        ctx.progress(step, total, "drawing", extra={"preview": data_url(image), "step": step})

    started = time.perf_counter()
    result = studio.generate(prepared, job_id=ctx.job_id, progress=progress, cancelled=ctx.cancelled,
                             preview=preview, preview_every=PREVIEW_EVERY)
    if not result.cached:
        metrics.observe(time.perf_counter() - started, len(result.images))  # /metrics' histogram
    result.images = studio.gallery.label(result.images, **labels)
    ctx.progress(steps, steps, "from the cache" if result.cached else "done", extra={})
    done = {**result.as_dict(), "files": [f"{FOLDER}/{row.file}" for row in result.images]}
    if getattr(ctx, "remote", False):  # drawn for another node: the pictures (``files``) and their rows go back
        done["records"] = [{k: v for k, v in row.__data__.items() if k != "id"} for row in result.images]
    return done


def arrived(result: dict, service) -> dict:
    """On the app, once a remote job's pictures are in its ZISHU_HOME: record them in its gallery."""
    rows = [StudioImage.create(**{k: v for k, v in record.items() if k in StudioImage._meta.fields})
            for record in result.pop("records", [])]
    return {**result, "images": [row.as_dict() for row in rows]}


def data_url(image) -> str:
    """``image`` as a small JPEG ``data:`` URL."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def check(params: dict, service) -> dict:
    """Refuse a bad request at submit; queue the user's own fields with the model filled in (the
    style and character are expanded when the job draws it, so Retry expands them once again). A
    model this app lacks but a node of its cluster advertises: the fields are checked here, the rest
    there. A job that goes through the cluster is queued as any node draws it (``for_any_node``)."""
    studio = service("studio")
    try:
        queued = studio.prepare(params).queued()
    except ResourceNotAvailable:
        model = catalog_model(params.get("model"))
        if model is None or not holds(service("cluster_models"), model):
            raise
        queued = ImageRequest.parse(params).given()
    if service("queue").route_for("image", queued) is None:
        return queued
    return for_any_node(queued, studio)


def title(params: dict) -> str:
    prompt = str(params.get("prompt", ""))
    return f"Draw: {prompt[:60]}{'…' if len(prompt) > 60 else ''}"


@hookimpl(trylast=True)
def register_job_types(register) -> None:
    register("image", draw_images, title=title, check=check, remote=True, model=lambda p: p.get("model"),
             arrived=arrived)


__all__ = ["LABELS", "ImageRequest", "check", "data_url", "draw_images", "for_any_node", "register_job_types"]
