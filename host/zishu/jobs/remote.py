"""Remote jobs: a job of a ``remote`` type run by a worker on any node, reported back over Redis.

The worker (``run``) claims the task (one worker per task, ever), runs the job type with a
``RemoteJobContext`` whose progress and cancel go through ``zishu.cluster.relay`` instead of the
job table (the worker may have a ZISHU_HOME of its own), and ships the files its result lists
(``result["files"]``: paths relative to ZISHU_HOME). The app (``listen``, a thread) applies those
events to its job table, fetches the files into its own ZISHU_HOME with their sha256 checked, and
puts a job back on the queue when the node running it stopped refreshing its claim (kill -9, a
pulled cable) or closed while running it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from zishu.cluster import relay as relay_keys
from zishu.errors import JobCancelled, UsageError, ZishuError

from . import records
from .records import Job, Status

if TYPE_CHECKING:
    from .queue import JobQueue

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.1
CANCEL_CHECK_EVERY = 0.25
SWEEP_EVERY = 1.0  # seconds between the app's looks for jobs whose node went silent


class RemoteJobContext:
    """What a remote job sees: the same calls as ``JobContext``, reported through Redis."""

    def __init__(self, queue: JobQueue, origin: str, job_id: int, task_id: str, worker: str) -> None:
        self.queue, self.home, self.job_id = queue, queue.home, job_id
        self.origin, self.task_id, self.worker = origin, task_id, worker
        assert queue.relay is not None
        self.relay = queue.relay
        self._last_write = float("-inf")
        self._last_check = time.monotonic()
        self._cancelled = False
        self._message = ""

    def progress(self, done: float | None, total: float | None = None, message: str | None = None) -> None:
        now = time.monotonic()
        changed_message = message is not None and message != self._message
        if changed_message or now - self._last_write >= PROGRESS_EVERY or (total and done == total):
            self._last_write = now
            fields: dict[str, Any] = {"done": done, "total": total}
            if message is not None:
                fields["message"] = self._message = message
            try:
                self.relay.publish(self.origin, {"job": self.job_id, "task": self.task_id, "status": "progress",
                                                 "fields": fields})
            except Exception:
                log.warning("could not report progress of job %s", self.job_id, exc_info=True)

    def cancelled(self) -> bool:
        if self._cancelled or self.queue._closing:
            self._cancelled = True
        elif time.monotonic() - self._last_check >= CANCEL_CHECK_EVERY:
            self._last_check = time.monotonic()
            # cancelled by the user, or the claim was lost (this node was taken for dead): stop either way
            self._cancelled = (self.relay.cancel_requested(self.task_id)
                               or self.relay.holder(self.task_id) != self.worker)
        return self._cancelled

    def check(self) -> None:
        if self.cancelled():
            raise JobCancelled("cancelled")

    def service(self, name: str) -> Any:
        make = self.queue.services.get(name)
        if make is None:
            raise UsageError(f"this job queue was given no {name!r} service")
        return make()

    def catalog(self) -> Any:
        return self.service("catalog")


def _keep_claims(queue: JobQueue) -> None:
    """The worker's heartbeat: refresh the claims of the tasks this process runs."""
    assert queue.relay is not None
    while True:
        time.sleep(max(0.5, relay_keys.CLAIM_TTL / 3))
        if queue._claims:
            try:
                queue.relay.refresh(list(queue._claims))
            except Exception:
                log.warning("could not refresh the claims of running jobs", exc_info=True)


_heartbeat_started = threading.Lock()


def run(queue: JobQueue, origin: str, job_id: int, task_id: str, kind: str, params: dict) -> None:
    """Run one remote task in this worker (called by Huey with the signed task's arguments)."""
    from .queue import worker_id

    relay = queue.relay
    assert relay is not None
    job_type = queue.types.get(kind)
    if job_type is None or kind not in queue.accepted():
        log.warning("refused a %r job: this node does not accept that job type (accepted: %s)",
                    kind, ", ".join(queue.accepted()) or "none")
        return
    if relay.cancel_requested(task_id):
        return
    me = worker_id()
    if not relay.claim(task_id, me):
        return  # another worker has it, or it already ran
    queue._claims.add(task_id)
    if _heartbeat_started.acquire(blocking=False):
        threading.Thread(target=_keep_claims, args=(queue,), name="zishu-claims", daemon=True).start()
    relay.publish(origin, {"job": job_id, "task": task_id, "status": Status.RUNNING.value, "worker": me,
                           "started_at": time.time()})
    fields: dict[str, Any]
    shipped: list[dict] = []
    ctx = RemoteJobContext(queue, origin, job_id, task_id, me)
    try:
        result = job_type.run(ctx, **params)
        if isinstance(result, dict) and result.get("files"):
            result["files"] = [str(f) for f in result["files"]]
            shipped = [relay.ship(queue.home, f) for f in result["files"]]
        fields = {"status": Status.SUCCESS.value, "result": json.dumps(result), "message": "done"}
    except JobCancelled:
        if queue._closing and not relay.cancel_requested(task_id):
            fields = {"status": Status.INTERRUPTED.value, "message": "its worker was stopped"}
        else:
            fields = {"status": Status.CANCELLED.value, "message": "cancelled"}
    except ZishuError as e:
        fields = {"status": Status.FAILED.value, "error": str(e), "error_code": e.code, "message": "failed"}
    except Exception as e:
        log.exception("remote job %s (%s) failed", job_id, kind)
        fields = {"status": Status.FAILED.value, "error": f"{type(e).__name__}: {e}",
                  "error_code": "ZISHU_ERROR", "message": "failed"}
    relay.publish(origin, {"job": job_id, "task": task_id, "status": "end", "fields": fields, "files": shipped})
    relay.finish(task_id)
    queue._claims.discard(task_id)


# -- the app's side --------------------------------------------------------------------------------


def apply(queue: JobQueue, event: dict) -> None:
    """Write one event from a worker into the job table (events of a superseded task are ignored)."""
    job = Job.get_or_none(Job.id == event.get("job"))
    if job is None or job.task_id != event.get("task"):
        return
    status = event.get("status")
    if status == Status.RUNNING.value:
        if records.update(job.id, only_if=(Status.PENDING,), status=Status.RUNNING.value,
                          started_at=event.get("started_at") or time.time(), worker=str(event.get("worker")),
                          attempts=job.attempts + 1, message="started"):
            queue._emit("on_job_start", job.id)
    elif status == "progress":
        fields = {k: v for k, v in event.get("fields", {}).items() if k in ("done", "total", "message")}
        if records.update(job.id, only_if=(Status.RUNNING,), **fields):
            queue._emit("on_job_progress", job.id)
    elif status == "end":
        fields = {k: v for k, v in event.get("fields", {}).items()
                  if k in ("status", "result", "error", "error_code", "message")}
        if fields.get("status") == Status.INTERRUPTED.value and not job.cancel_requested:
            requeue(queue, job, "its worker was stopped while running it; queued again")
            return
        assert queue.relay is not None
        try:
            for shipped in event.get("files") or []:
                queue.relay.receive(queue.home, shipped)
        except ZishuError as e:
            fields = {"status": Status.FAILED.value, "error": str(e), "error_code": e.code, "message": "failed"}
        if records.update(job.id, only_if=(Status.RUNNING,), finished_at=time.time(), cancel_requested=False,
                          **fields):
            queue._emit("on_job_end", job.id)


def requeue(queue: JobQueue, job: Job, message: str) -> bool:
    """Put a remote job back on the queue under a new task id (the old task's events are ignored)."""
    import uuid

    task_id = uuid.uuid4().hex
    if not records.update(job.id, only_if=(Status.RUNNING,), status=Status.PENDING.value, worker=None,
                          started_at=None, message=message, task_id=task_id):
        return False
    queue._enqueue(job.id, job.priority, task_id)
    return True


def sweep(queue: JobQueue) -> list[int]:
    """Requeue the remote jobs whose worker's claim expired (its node died or lost Redis)."""
    assert queue.relay is not None
    back = []
    for job in Job.select().where(Job.status == Status.RUNNING.value):
        if (queue._is_remote(job.kind) and job.task_id and queue.relay.holder(job.task_id) is None
                and requeue(queue, job, "its node stopped answering; queued again")):
            log.warning("job %s: its node %s stopped answering; queued again", job.id, job.worker)
            back.append(job.id)
    return back


def listen(queue: JobQueue) -> None:
    """The app's relay thread: apply the events workers send to this node, and sweep now and then."""
    assert queue.relay is not None
    last_sweep = 0.0
    while not queue._relay_stop.is_set():
        try:
            events = queue.relay.read(queue.node, "0", block_ms=200)
            for _eid, event in events:
                try:
                    apply(queue, event)
                except Exception:
                    log.exception("could not apply a worker's event %r", event)
            queue.relay.forget(queue.node, [eid for eid, _ in events])
            if time.monotonic() - last_sweep >= SWEEP_EVERY:
                last_sweep = time.monotonic()
                sweep(queue)
        except Exception:
            if queue._relay_stop.is_set():
                return
            log.warning("the job relay lost Redis; trying again", exc_info=True)
            time.sleep(1)
