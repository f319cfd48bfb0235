"""Remote jobs: a job of a ``remote`` type run by a worker on any node, reported back over Redis.

The worker (``run``) claims the task (one worker per task, ever), runs the job type with a
``RemoteJobContext`` whose progress and cancel go through ``zishu.cluster.relay`` instead of the
job table (the worker may have a ZISHU_HOME of its own), and ships the files its result lists
(``result["files"]``: paths relative to ZISHU_HOME); the input files the job type names
(``inputs``, sent by the app with the task) are written into the worker's ZISHU_HOME first, their
sha256 checked, and removed once the job ends. The app (``listen``, a thread) applies those
events to its job table, fetches the files into its own ZISHU_HOME with their sha256 checked, and
puts a job back on the queue when the node running it stopped refreshing its claim (kill -9, a
pulled cable) or closed while running it.

Routing by model (``zishu.cluster.routing``): a worker handed a job for a model it does not have
answers MODEL_NOT_AVAILABLE at once (a ``refused`` event), before claiming it and without
downloading anything; so does a job whose model resolution (``zishu.engines.resolve``, which never
downloads) finds it missing while it runs. The app (``reroute``) sends the job to a node that
advertises the model, or keeps it waiting, counted as unserved, until one shows up (``sweep``).
Files over the relay's limit come back by an authenticated pull from the worker (``zishu.cluster.pull``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zishu.cluster import nodes, pull, routing, usage
from zishu.cluster import relay as relay_keys
from zishu.errors import JobCancelled, ResourceNotAvailable, ZishuError

from . import records
from .context import JobContext
from .records import Job, Status

if TYPE_CHECKING:
    from .queue import JobQueue

log = logging.getLogger(__name__)

SWEEP_EVERY = 1.0  # seconds between the app's looks for jobs whose node went silent
REFUSAL_KEPT = 10.0  # seconds a worker that refused a job is not chosen for it again (its ad may lag)


class RemoteJobContext(JobContext):
    """What a remote job sees: the same calls as ``JobContext``, reported through Redis."""

    remote = True  # a job may add what only a run for another node needs (its result's "files")

    def __init__(self, queue: JobQueue, origin: str, job_id: int, task_id: str, worker: str) -> None:
        super().__init__(queue, job_id)
        self.origin, self.task_id, self.worker = origin, task_id, worker
        assert queue.relay is not None
        self.relay = queue.relay

    def _write(self, fields: dict[str, Any]) -> None:
        try:
            self.relay.publish(self.origin, {"job": self.job_id, "task": self.task_id, "status": "progress",
                                             "fields": fields})
        except Exception:
            log.warning("could not report progress of job %s", self.job_id, exc_info=True)

    def _stopping(self) -> bool:
        return self.queue._closing

    def _cancel_asked(self) -> bool:
        # cancelled by the user, or the claim was lost (this node was taken for dead): stop either way
        return self.relay.cancel_requested(self.task_id) or self.relay.holder(self.task_id) != self.worker


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


def run(queue: JobQueue, origin: str, job_id: int, task_id: str, kind: str, params: dict,
        inputs: list[dict] | None = None) -> None:
    """Run one remote task in this worker (called by Huey with the signed task's arguments);
    ``inputs``: the input files the app sent with it (``Relay.send_input``)."""
    from .queue import worker_id

    relay = queue.relay
    assert relay is not None
    job_type = queue.types.get(kind)
    if job_type is None or kind not in queue.accepted():
        log.warning("refused a %r job: this node does not accept that job type (accepted: %s)",
                    kind, ", ".join(queue.accepted()) or "none")
        if relay.holder(task_id) is None:  # popped from a model's queue it shares with other types: send it back
            _refuse(queue, origin, job_id, task_id, worker_id(), queue.needs(kind, params) or "",
                    f"this node does not accept {kind} jobs", code="NOT_ACCEPTED")
        return
    if relay.cancel_requested(task_id):
        return
    me = worker_id()
    model = queue.needs(kind, params)
    if model and not routing.holds(queue.installed_models(), model):
        _refuse(queue, origin, job_id, task_id, me, model, f"{model} is not installed on this node")
        return
    if not relay.claim(task_id, me):
        return  # another worker has it, or it already ran
    queue._claims.add(task_id)
    queue._running[task_id] = {"job": job_id, "kind": kind, "model": model, "task": task_id, "origin": origin}
    if _heartbeat_started.acquire(blocking=False):
        threading.Thread(target=_keep_claims, args=(queue,), name="zishu-claims", daemon=True).start()
    relay.publish(origin, {"job": job_id, "task": task_id, "status": Status.RUNNING.value, "worker": me,
                           "started_at": time.time()})
    fields: dict[str, Any]
    shipped: list[dict] = []
    ctx = RemoteJobContext(queue, origin, job_id, task_id, me)
    began = time.monotonic()
    received: list[Path] = []
    try:
        if origin != queue.node:  # another home's job: its inputs come through Redis (the app's own are here)
            for sent in inputs or []:
                received.append(relay.receive_input(queue.home, sent))
        result = job_type.run(ctx, **params)
        if isinstance(result, dict) and result.get("files"):
            result["files"] = [str(f) for f in result["files"]]
            shipped = [_ship(queue, f) for f in result["files"]]
        fields = {"status": Status.SUCCESS.value, "result": json.dumps(result), "message": "done"}
    except ResourceNotAvailable as e:
        if model:  # the model went missing here (resolution refuses, never downloads): another node runs it
            relay.conn.delete(f"zishu:claim:{task_id}")
            queue._claims.discard(task_id)
            queue._running.pop(task_id, None)
            _refuse(queue, origin, job_id, task_id, me, model, str(e))
            return
        fields = records.failed(e)
    except JobCancelled:
        if queue._closing and not relay.cancel_requested(task_id):
            fields = {"status": Status.INTERRUPTED.value, "message": "its worker was stopped"}
        else:
            fields = {"status": Status.CANCELLED.value, "message": "cancelled"}
    except ZishuError as e:
        fields = records.failed(e)
    except Exception as e:
        log.exception("remote job %s (%s) failed", job_id, kind)
        fields = {"status": Status.FAILED.value, "error": f"{type(e).__name__}: {e}",
                  "error_code": "ZISHU_ERROR", "message": "failed"}
    finally:
        for path in received:  # the app's files, not this node's: it keeps none of them
            path.unlink(missing_ok=True)
    relay.publish(origin, {"job": job_id, "task": task_id, "status": "end", "fields": fields, "files": shipped,
                           "seconds": time.monotonic() - began})
    relay.finish(task_id)
    queue._claims.discard(task_id)
    queue._running.pop(task_id, None)


def _ship(queue: JobQueue, relative: str) -> dict:
    """A result file on its way to the app: through Redis when small, else offered for a pull."""
    assert queue.relay is not None
    path = queue.home / relay_keys.safe_relative(relative)
    if path.stat().st_size <= relay_keys.max_file():
        return queue.relay.ship(queue.home, relative)
    return pull.serve(queue.home, queue.relay.conn, queue.secret or "").offer(relative)


def _refuse(queue: JobQueue, origin: str, job_id: int, task_id: str, worker: str, model: str, why: str,
            code: str = "MODEL_NOT_AVAILABLE") -> None:
    """MODEL_NOT_AVAILABLE, at once: stop listening for the model, say so in this node's ad, tell the
    app (``code`` NOT_ACCEPTED: a job type this node's user did not enable, found in a model's queue)."""
    assert queue.relay is not None
    log.warning("refused job %s: %s (%s; the app sends it elsewhere)", job_id, why, code)
    make = queue.services.get("offers")
    try:
        offers = make() if make is not None else {}
        queue.refresh_routes(list(offers.get("models") or []))
        nodes.beat(queue.relay.conn, nodes.describe(worker, queue.node, queue.accepted(),
                                                    list(queue._running.values()), offers))
    except Exception:
        log.warning("could not refresh this node's advertisement", exc_info=True)
    queue.relay.publish(origin, {"job": job_id, "task": task_id, "status": "refused", "code": code,
                                 "model": model, "worker": worker, "message": why, "at": time.time()})


# -- the app's side --------------------------------------------------------------------------------


def apply(queue: JobQueue, event: dict) -> None:
    """Write one event from a worker into the job table (events of a superseded task are ignored)."""
    job = Job.get_or_none(Job.id == event.get("job"))
    if job is None or job.task_id != event.get("task"):
        return
    status = event.get("status")
    if status == "refused":  # the app's own job type says which model, whatever the worker knew
        model = queue.needs(job.kind, json.loads(job.params)) or str(event.get("model") or "")
        reroute(queue, job, str(event.get("worker") or ""), model, str(event.get("message") or ""))
    elif status == Status.RUNNING.value:
        if records.update(job.id, only_if=(Status.PENDING,), status=Status.RUNNING.value,
                          started_at=event.get("started_at") or time.time(), worker=str(event.get("worker")),
                          attempts=job.attempts + 1, message="started"):
            queue._emit("on_job_start", job.id)
    elif status == "progress":
        fields = {k: v for k, v in event.get("fields", {}).items() if k in ("done", "total", "message", "extra")}
        if records.update(job.id, only_if=(Status.RUNNING,), **fields):
            queue._emit("on_job_progress", job.id)
    elif status == "end":
        fields = {k: v for k, v in event.get("fields", {}).items()
                  if k in ("status", "result", "error", "error_code", "message", "extra")}
        if fields.get("status") == Status.INTERRUPTED.value and not job.cancel_requested:
            requeue(queue, job, "its worker was stopped while running it; queued again")
            return
        assert queue.relay is not None
        job_type = queue.types.get(job.kind)
        try:
            for shipped in event.get("files") or []:
                if shipped.get("url"):
                    pull.fetch(queue.home, shipped, queue.secret or "")
                else:
                    queue.relay.receive(queue.home, shipped)
            if fields.get("status") == Status.SUCCESS.value and job_type is not None and job_type.arrived:
                fields["result"] = json.dumps(job_type.arrived(json.loads(fields["result"]), queue.service))
        except ZishuError as e:
            fields = records.failed(e)
        if records.update(job.id, only_if=(Status.RUNNING,), finished_at=time.time(), cancel_requested=False,
                          **fields):
            queue._refused.pop(job.id, None)
            params = json.loads(job.params)
            queue.relay.drop_inputs(queue.node, job.id, len(queue.inputs(job.kind, params)))
            needed = queue.needs(job.kind, params)
            if needed and fields.get("status") == Status.SUCCESS.value:
                seconds = event.get("seconds")
                usage.served(queue.relay.conn, needed, float(seconds) if isinstance(seconds, int | float) else None)
            queue._emit("on_job_end", job.id)


def reroute(queue: JobQueue, job: Job, worker: str, model: str, why: str) -> None:
    """A worker refused ``job`` (MODEL_NOT_AVAILABLE): send it under a new task id to a node that
    advertises ``model`` (by that worker's own queue), or keep it waiting for one, counted as unserved."""
    import uuid

    assert queue.relay is not None
    refused = queue._refused.setdefault(job.id, {})
    refused[worker] = time.monotonic()
    listing = nodes.listing(queue.relay.conn)
    target = routing.pick(listing, model, job.kind, refused)
    task_id = uuid.uuid4().hex
    host = worker.partition(":")[0]
    if not model:  # not routed by model: back to its job type's queue, which only accepting nodes read
        if records.update(job.id, only_if=(Status.PENDING, Status.RUNNING), status=Status.PENDING.value,
                          worker=None, started_at=None, message=f"{host}: {why}; queued again", task_id=task_id):
            queue._enqueue(job.id, job.priority, task_id)
        return
    if target is not None:
        message = f"{host}: {why}; sent to {target.get('host') or target['worker']}"
    else:  # parked (and counted) before the row says so: whoever reads "waiting" finds it in the ranking
        message = f"waiting: no node has {model}"
        usage.unserved(queue.relay.conn, model)
        usage.wait_for_node(queue.relay.conn, queue.node, job.id, model, job.kind)
    if not records.update(job.id, only_if=(Status.PENDING, Status.RUNNING), status=Status.PENDING.value,
                          worker=None, started_at=None, message=message, task_id=task_id):
        if target is None:  # it ended meanwhile (cancelled): it waits for nothing
            usage.stop_waiting(queue.relay.conn, queue.node, job.id)
        return
    if target is not None:
        queue._enqueue(job.id, job.priority, task_id, route=routing.worker_route(target["worker"]))
    else:
        log.warning("job %s waits: no node has %s (%s)", job.id, model, why)
    queue._emit("on_job_progress", job.id)


def note_if_unserved(queue: JobQueue, job_id: int, kind: str, model: str) -> None:
    """At submit: when no live node advertises ``model``, say that the job waits for one and count it
    unserved (it stays in ``model:<id>``, where a node that installs the model will find it)."""
    assert queue.relay is not None
    if not model:
        return
    listing = nodes.listing(queue.relay.conn)
    if any(kind in (n.get("accepts") or []) for n in routing.nodes_with(listing, model)):
        return
    usage.unserved(queue.relay.conn, model)
    records.update(job_id, only_if=(Status.PENDING,), message=f"waiting: no node has {model}")


def dispatch_waiting(queue: JobQueue) -> list[int]:
    """Send the jobs waiting for a node to one that advertises their model now."""
    assert queue.relay is not None
    entries = usage.waiting(queue.relay.conn, queue.node)
    if not entries:
        return []
    listing = nodes.listing(queue.relay.conn)
    sent = []
    now = time.monotonic()
    for entry in entries:
        job = Job.get_or_none(Job.id == entry.get("job"))
        if job is None or job.status != Status.PENDING.value:
            usage.stop_waiting(queue.relay.conn, queue.node, int(entry.get("job") or 0))
            continue
        recent = {w for w, at in queue._refused.get(job.id, {}).items() if now - at < REFUSAL_KEPT}
        target = routing.pick(listing, str(entry.get("model")), job.kind, recent)
        if target is not None:
            where = target.get("host") or target["worker"]
            records.update(job.id, only_if=(Status.PENDING,), message=f"sent to {where}")
            queue._enqueue(job.id, job.priority, None, route=routing.worker_route(target["worker"]))
            sent.append(job.id)
    return sent


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
        if (queue._remote_job(job) and job.task_id and queue.relay.holder(job.task_id) is None
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
                dispatch_waiting(queue)
        except Exception:
            if queue._relay_stop.is_set():
                return
            log.warning("the job relay lost Redis; trying again", exc_info=True)
            time.sleep(1)
