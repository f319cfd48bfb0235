"""Drawing synchronously on the job queue: what the AUTOMATIC1111 and OpenAI surfaces need, since
their clients wait for the pictures in the answer to one request.

``draw_and_wait(queue, params)`` queues an ``image`` job (checked at submit like every other: a bad
field is refused before anything is queued), waits for its end and returns ``Drawn``: the job as a
dict and the gallery rows of its pictures. The job is an ordinary job: it shows in the Jobs panel
with its progress and preview, ``/sdapi/v1/progress`` reads it, and cancelling it there (or
``/sdapi/v1/interrupt``) ends the wait with ``interrupted``. A job that failed raises its error
again (same class, so the same HTTP status). Waiting stops when the app shuts down (``stopping``)
or after ``limit`` seconds (the job is then cancelled: nobody waits for its pictures any more).

``picture_png(gallery, row)`` is the PNG a client gets: the file with its ``parameters`` chunk, or,
for a picture safe mode blocked, the blurred picture the gallery shows.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

from zishu import errors
from zishu.errors import Busy, UsageError, ZishuError
from zishu.jobs import records

from .gallery import Gallery, StudioImage
from .safety import blurred

WAIT_LIMIT = 3600.0  # seconds a synchronous request waits for its pictures at most
LOOK_EVERY = 0.5  # seconds between looks at the table (a job run by another process notifies nobody here)


@dataclass
class Drawn:
    """An image job that ended: its dict (``Job.as_dict``) and its pictures' gallery rows."""

    job: dict[str, Any]
    images: list[StudioImage]

    @property
    def interrupted(self) -> bool:
        return self.job["status"] in ("CANCELLED", "INTERRUPTED")

    @property
    def cached(self) -> bool:
        return bool((self.job.get("result") or {}).get("cached"))


def draw_and_wait(queue: Any, gallery: Gallery, params: dict, *, stopping: threading.Event | None = None,
                  limit: float = WAIT_LIMIT, priority: int = 0) -> Drawn:
    """Queue ``params`` as an ``image`` job on ``queue`` (a ``JobQueue``), wait for it and return it."""
    job = queue.submit("image", params, priority=priority)
    return wait_for(queue, gallery, job.id, stopping=stopping, limit=limit)


def wait_for(queue: Any, gallery: Gallery, job_id: int, *, stopping: threading.Event | None = None,
             limit: float = WAIT_LIMIT) -> Drawn:
    import time

    deadline = time.monotonic() + limit
    seen = records.changes.serial
    while True:
        job = queue.get(job_id).as_dict()
        if job["status"] not in ("PENDING", "RUNNING"):
            break
        if stopping is not None and stopping.is_set():
            queue.cancel(job_id)
            raise Busy(f"Zishu is shutting down; image job {job_id} was cancelled")
        left = deadline - time.monotonic()
        if left <= 0:
            queue.cancel(job_id)
            raise Busy(f"image job {job_id} did not finish within {limit:.0f} s (is a worker running? "
                       "`zishu serve` runs one, or start `zishu worker`); it was cancelled")
        seen = records.changes.wait(seen, min(LOOK_EVERY, left))
    if job["status"] == "FAILED":
        raise _again(job)
    rows = [gallery.get(int(image["id"])) for image in (job.get("result") or {}).get("images", [])]
    return Drawn(job, rows)


def _again(job: dict) -> ZishuError:
    """The error a failed job recorded, as its own class (by ``code``) so it keeps its HTTP status."""
    by_code = {cls.code: cls for cls in errors.every_error()}
    cls = by_code.get(job.get("error_code") or "", ZishuError)
    message = job.get("error") or "the image job failed"
    try:
        return cls(message)
    except TypeError:  # a class whose constructor takes other arguments
        return UsageError(message) if cls is UsageError else ZishuError(message)


def picture_png(gallery: Gallery, row: StudioImage) -> bytes:
    """The picture as a client receives it: the PNG file (its A1111 ``parameters`` chunk included),
    or the blurred picture when safe mode blocked it."""
    path = gallery.path(row)
    if not row.blocked:
        return path.read_bytes()
    from PIL import Image

    with Image.open(path) as image:
        soft = blurred(image.convert("RGB"))
    buffer = io.BytesIO()
    soft.save(buffer, format="PNG")
    return buffer.getvalue()
