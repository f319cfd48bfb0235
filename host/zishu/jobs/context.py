"""What a running job sees: ``JobContext`` (its progress, its cancel, the queue's services).

A job on this machine writes its progress to the job table and reads a cancel from it; a job run
for another node (``remote.RemoteJobContext``) sends both through Redis instead. The two differ only
in ``_write`` (where progress goes), ``_stopping`` (this process is stopping the job) and
``_cancel_asked`` (the user's cancel, looked up at most every ``CANCEL_CHECK_EVERY`` seconds); the
throttling of progress and of those looks is written once, here.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from zishu.errors import JobCancelled

from . import records
from .records import Job, Status

if TYPE_CHECKING:
    from .queue import JobQueue

PROGRESS_EVERY = 0.1  # seconds between progress writes of one job
CANCEL_CHECK_EVERY = 0.25  # seconds between looks for a cancel asked elsewhere (another process, node)


class JobContext:
    """What a running job sees: ``home`` (ZISHU_HOME), ``progress`` to report, ``check`` (or
    ``cancelled``, to hand to code that polls) to stop once the user cancels, and the services the
    runtime handed to the queue (``catalog()``), so a job never reaches up to the runtime."""

    remote = False  # True in ``remote.RemoteJobContext``: the run is for another node

    def __init__(self, queue: JobQueue, job_id: int) -> None:
        self.queue, self.job_id, self.home = queue, job_id, queue.home
        self._last_write = float("-inf")
        self._last_check = time.monotonic()
        self._cancelled = False
        self._message = ""

    def progress(self, done: float | None, total: float | None = None, message: str | None = None,
                 extra: dict | None = None) -> None:
        """Report progress (``total`` None while unknown); safe from any thread, never raises.
        ``extra``: JSON-able facts the job shows while it runs (the job's ``extra``; always written)."""
        now = time.monotonic()
        changed_message = message is not None and message != self._message
        if (changed_message or extra is not None or now - self._last_write >= PROGRESS_EVERY
                or (total and done == total)):
            self._last_write = now
            fields: dict[str, Any] = {"done": done, "total": total}
            if message is not None:
                fields["message"] = self._message = message
            if extra is not None:
                fields["extra"] = json.dumps(extra)
            self._write(fields)

    def cancelled(self) -> bool:
        if self._cancelled or self._stopping():
            self._cancelled = True
        elif time.monotonic() - self._last_check >= CANCEL_CHECK_EVERY:
            self._last_check = time.monotonic()
            self._cancelled = self._cancel_asked()
        return self._cancelled

    def check(self) -> None:
        """Raise JobCancelled once the user has cancelled this job."""
        if self.cancelled():
            raise JobCancelled("cancelled")

    def service(self, name: str) -> Any:
        """The service ``name`` the runtime gave the queue (``services`` of ``JobQueue``), made now."""
        return self.queue.service(name)

    def catalog(self) -> Any:
        """The catalog client the runtime chose for this ZISHU_HOME (ZISHU_CATALOG, the Settings
        catalog URL, or the bundled snapshot): the one the app's pages and ``zishu install`` read."""
        return self.service("catalog")

    # -- where this run reports and listens -------------------------------------------------------

    def _write(self, fields: dict[str, Any]) -> None:
        records.update(self.job_id, only_if=(Status.RUNNING,), **fields)
        self.queue._emit("on_job_progress", self.job_id)

    def _stopping(self) -> bool:
        return self.job_id in self.queue._cancel

    def _cancel_asked(self) -> bool:
        return bool(Job.select(Job.cancel_requested).where(Job.id == self.job_id).scalar())


__all__ = ["CANCEL_CHECK_EVERY", "PROGRESS_EVERY", "JobContext"]
