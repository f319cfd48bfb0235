"""Submitting, running, cancelling and retrying jobs on a Huey queue.

The queue is SqliteHuey in ``ZISHU_HOME/queue.db`` unless ``ZISHU_QUEUE`` names a Redis server
(``redis://host:port/db``), which lets ``zishu worker`` processes on several machines share it.
The queue carries only ``(job id, task id)``; the job table (``records``) holds everything else,
because SqliteHuey forgets a task the moment a worker takes it. A task whose id is no longer the
job's ``task_id`` (the job was retried or re-prioritised since) is skipped, and a job runs only
for the worker that moves it from PENDING to RUNNING, so no job ever runs twice at once.

The app runs a consumer in its own threads (``start_consumer``); ``enqueue`` wakes it at once, so
a job starts within milliseconds instead of at the next poll.

A job type registered ``resumable`` (installs, storyboard shots and exports) carries on by itself:
when its run was cut off, by a crash or by closing the app, ``recover`` at the next start (the
app's, or a ``zishu worker``'s) records it INTERRUPTED and puts it back on the queue instead of
leaving it for the user to retry. A job the user cancelled is never put back, also not when the
cancel and a crash crossed.

On Redis (``zishu.cluster``) every task is signed with the cluster secret and goes to a named
queue: ``home:<node>`` for the jobs of this ZISHU_HOME that must stay on it (installs), and
``kind:<job type>`` for a ``remote`` job type, taken by any node whose user enabled that type
(``accept``). A remote job never touches the job table on the worker: the worker reports through
``zishu.cluster.relay`` (a Redis stream back to the app that asked), and the app's relay thread
writes what it hears into its own table, fetching the result's files with their sha256 checked.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from huey import SqliteHuey
from huey.consumer import Consumer, Worker

from zishu import plugins
from zishu.cluster import nodes, redisqueue, routing, usage
from zishu.cluster.node import node_id
from zishu.cluster.relay import Relay
from zishu.errors import JobCancelled, NotFound, UsageError, ZishuError

from . import records, remote
from .context import JobContext
from .records import FINISHED, RETRYABLE, Job, Status

log = logging.getLogger(__name__)

_WAKE = threading.Event()  # set when a job is enqueued in this process
# Polling of an idle queue: an in-app enqueue wakes the consumer at once; other processes' within 0.5 s.
POLLING = {"initial_delay": 0.05, "backoff": 1.5, "max_delay": 0.5}


def worker_id(pid: int | None = None) -> str:
    """``host:pid:started`` of a process: enough to tell later whether that very process still runs."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{int(psutil.Process(pid).create_time())}"


def worker_alive(worker: str | None) -> bool | None:
    """Whether the process that ran a job still runs; None when it ran on another machine."""
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    if host != socket.gethostname():
        return None
    pid, _, started = rest.partition(":")
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(started)
    except (psutil.Error, ValueError):
        return False


@dataclass(frozen=True)
class JobType:
    """A kind of job: ``run(ctx, **params)`` does the work and returns a JSON-able result."""

    name: str
    run: Callable[..., Any]
    title: Callable[[dict], str] | None = None
    resumable: bool = False  # run again by itself after a crash or a close (it continues its work)
    # check(params, service) -> params: refuse bad parameters at submit, before anything is queued
    # (UsageError naming the field); ``service(name)`` is the queue's service of that name
    check: Callable[[dict, Callable[[str], Any]], dict] | None = None
    remote: bool = False  # may run on another machine's worker (its result's "files" come back)
    # model(params) -> the catalog id (``owner/name[@version]``) a remote job needs: it then goes to
    # the queue ``model:<id>``, taken only by a node that has it (``zishu.cluster.routing``)
    model: Callable[[dict], str | None] | None = None
    # arrived(result, service) -> result: on the app, once a remote job's files are in its ZISHU_HOME
    # (the studio records the pictures in the app's gallery)
    arrived: Callable[[dict, Callable[[str], Any]], dict] | None = None
    # inputs(params) -> the files (relative to ZISHU_HOME) a remote job reads: sent through Redis to
    # the worker that takes it, and checked by sha256 there (a transcription's audio)
    inputs: Callable[[dict], list[str]] | None = None


class _WakingSqliteHuey(SqliteHuey):
    def enqueue(self, task):
        result = super().enqueue(task)
        _WAKE.set()
        return result


class _Worker(Worker):
    delay: float  # set by huey's Worker; huey ships no types

    def sleep(self):
        # Wait for the next enqueue in this process (or the usual backoff, for other processes).
        if _WAKE.wait(min(self.delay, self.max_delay)):
            _WAKE.clear()
            self.delay = self.default_delay
        else:
            self.delay *= self.backoff


class _InAppConsumer(Consumer):
    worker_class = _Worker

    def _set_signal_handlers(self):
        pass  # the app, not the queue, decides what Ctrl+C does


def queue_url() -> str | None:
    return os.environ.get("ZISHU_QUEUE") or None


def make_huey(home: Path, url: str | None = None, secret: str | None = None):
    """The Huey for ``url`` (redis://..., tasks signed with ``secret``) or, by default, SqliteHuey
    in ``home/queue.db``."""
    if url:
        return redisqueue.make("zishu", url, secret or "")
    return _WakingSqliteHuey("zishu", filename=str(Path(home) / "queue.db"), results=False)


class JobQueue:
    """The jobs of one ZISHU_HOME: submit, cancel, retry, prioritise, and run them."""

    def __init__(self, home: Path, *, url: str | None = None, hook=None,
                 services: Mapping[str, Callable[[], Any]] | None = None, secret: str | None = None,
                 accept: list[str] | None = None) -> None:
        """``hook``: an object with ``on_job_*`` methods (tests); default: the plugins' hooks.
        ``services``: name → a function making what jobs need (``"catalog"``: the catalog client),
        which jobs reach through their ``JobContext``. On Redis: ``secret`` signs the tasks, and
        ``accept`` names the remote job types this process takes from other nodes (None: all it has)."""
        self.home = Path(home)
        self.services: dict[str, Callable[[], Any]] = dict(services or {})
        self.url = url if url is not None else queue_url()
        self.huey = make_huey(self.home, self.url, secret)
        self.secret = secret  # signs tasks, and the tokens of large result files pulled from workers
        self.cluster = isinstance(self.huey, redisqueue.ClusterHuey)
        self.node = node_id(self.home) if self.cluster else ""
        self.relay = Relay(self.huey.storage.conn) if self.cluster else None
        self.accept = accept
        self.types: dict[str, JobType] = {}
        self.hook = hook
        self._cancel: set[int] = set()
        self._closing = False
        self._consumer: Consumer | None = None
        self._relay_thread: threading.Thread | None = None
        self._relay_stop = threading.Event()
        self._claims: set[str] = set()  # remote tasks this process runs now (their claims are kept alive)
        self._running: dict[str, dict] = {}  # those tasks: job, kind, model (what the heartbeat shows)
        self._models: list[str] = []  # the models this node listens for (``refresh_routes``)
        self._refused: dict[int, dict[str, float]] = {}  # app side: who refused each job, and when
        self._heartbeat: threading.Thread | None = None
        self.services.setdefault("cluster_models", self.cluster_models)
        self.services.setdefault("queue", lambda: self)  # a ``check`` asks where its job will go (``route_for``)
        self._task = self.huey.task(name="zishu.run_job", retries=0)(self._run)
        self._remote_task = self.huey.task(name="zishu.run_remote", retries=0)(self._run_remote)
        self._listen()

    @property
    def description(self) -> str:
        return redisqueue.redacted(self.url) if self.url else f"SQLite ({self.home / 'queue.db'})"

    # -- job types --------------------------------------------------------------------------

    def register(self, name: str, run: Callable[..., Any], title: Callable[[dict], str] | None = None,
                 resumable: bool = False, check: Callable[[dict, Callable[[str], Any]], dict] | None = None,
                 remote: bool = False, model: Callable[[dict], str | None] | None = None,
                 arrived: Callable[[dict, Callable[[str], Any]], dict] | None = None,
                 inputs: Callable[[dict], list[str]] | None = None) -> None:
        """The ``register`` callback of the ``register_job_types`` hook; the first one wins.
        ``check(params, service)`` returns the parameters to queue, or raises to refuse them.
        ``model(params)``: the catalog model a remote job needs (routing by model);
        ``arrived(result, service)``: the app's step once a remote job's files came back;
        ``inputs(params)``: the files (relative to ZISHU_HOME) a remote job reads, sent to its worker."""
        self.types.setdefault(name, JobType(name, run, title, resumable, check, remote, model, arrived, inputs))
        self._listen()

    def service(self, name: str) -> Any:
        """The service ``name`` handed to this queue (``services``), made now."""
        make = self.services.get(name)
        if make is None:
            raise UsageError(f"this job queue was given no {name!r} service (known: "
                             f"{', '.join(sorted(self.services)) or 'none'})")
        return make()

    def accepted(self) -> list[str]:
        """The remote job types this process takes from the cluster's queue."""
        remote = sorted(n for n, t in self.types.items() if t.remote)
        return remote if self.accept is None else [n for n in remote if n in self.accept]

    def _listen(self) -> None:
        if self.cluster:
            accepted = self.accepted()
            kinds = [k for k in accepted if self.types[k].model is None]
            by_model = any(self.types[k].model is not None for k in accepted)
            self.huey.listen(routing.listen_routes(self.node, worker_id(), kinds, self._models, by_model))

    def installed_models(self) -> list[str]:
        """The models this node has (``id@version``), from the runtime's ``offers`` service."""
        make = self.services.get("offers")
        if make is None:
            return []
        try:
            return list(make().get("models") or [])
        except Exception:
            log.warning("could not list this node's models", exc_info=True)
            return []

    def refresh_routes(self, models: list[str] | None = None) -> None:
        """Listen to ``model:<id>`` for the models installed now (after an install, an uninstall, a refusal)."""
        found = sorted(self.installed_models() if models is None else models)
        if found != self._models:
            self._models = found
            self._listen()

    def cluster_models(self) -> list[str]:
        """The models (``id@version``) the live nodes of this cluster advertise; none off a cluster."""
        if self.relay is None:
            return []
        return sorted({m for n in nodes.listing(self.relay.conn) for m in n.get("models") or []})

    def _is_remote(self, kind: str) -> bool:
        job_type = self.types.get(kind)
        return self.cluster and job_type is not None and job_type.remote

    def needs(self, kind: str, params: dict) -> str | None:
        """The catalog model (``owner/name[@version]``) a job of ``kind`` with ``params`` needs, or None."""
        job_type = self.types.get(kind)
        if job_type is None or job_type.model is None:
            return None
        try:
            return routing.catalog_model(job_type.model(params))
        except Exception:
            log.warning("the %s job type could not say which model it needs", kind, exc_info=True)
            return None

    def route_for(self, kind: str, params: dict) -> str | None:
        """The named queue a job goes to on the cluster: ``model:<id>`` for a job that needs a catalog
        model, ``kind:<type>`` for another remote job, None for one that stays on this node (not
        remote, or a model given as a path here)."""
        if not self._is_remote(kind):
            return None
        job_type = self.types[kind]
        if job_type.model is None:
            return f"{routing.KIND_PREFIX}{kind}"
        model = self.needs(kind, params)
        return routing.model_route(model) if model else None

    def inputs(self, kind: str, params: dict) -> list[str]:
        """The input files (relative to ZISHU_HOME) a job of ``kind`` with ``params`` reads."""
        job_type = self.types.get(kind)
        return list(job_type.inputs(params)) if job_type is not None and job_type.inputs else []

    def _remote_job(self, job: Job) -> bool:
        """Whether this job runs (or ran) through the cluster rather than on this node."""
        if not self._is_remote(job.kind):
            return False
        try:
            params = json.loads(job.params)
        except ValueError:
            return False
        return self.route_for(job.kind, params) is not None

    # -- what the UI and API ask --------------------------------------------------------------

    def submit(self, kind: str, params: dict | None = None, *, priority: int = 0) -> Job:
        params = dict(params or {})
        job_type = self.types.get(kind)
        if job_type is None:
            raise UsageError(f"no job type {kind!r}; known: {', '.join(sorted(self.types)) or 'none'}")
        if job_type.check is not None:
            params = job_type.check(params, self.service)
        title = job_type.title(params) if job_type.title else kind
        job = records.create(kind, title, params, priority)
        self._enqueue(job.id, priority)
        return Job.get_by_id(job.id)

    def get(self, job_id: int) -> Job:
        job = Job.get_or_none(Job.id == job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def cancel(self, job_id: int) -> Job:
        """Cancel a waiting job at once, or ask a running one to stop at its next progress report;
        an INTERRUPTED one becomes CANCELLED, so the next start does not take it up again."""
        job = self.get(job_id)
        if self.relay is not None and job.task_id and self._remote_job(job):
            self.relay.request_cancel(job.task_id)
            usage.stop_waiting(self.relay.conn, self.node, job_id)  # the worker on another machine hears it there
        if records.update(
            job_id, only_if=(Status.PENDING,), status=Status.CANCELLED.value,
            finished_at=time.time(), message="cancelled before it started",
        ) or records.update(job_id, only_if=(Status.INTERRUPTED,), status=Status.CANCELLED.value, message="cancelled"):
            if self.relay is not None and self._remote_job(job):  # its input files wait in Redis for nobody
                self.relay.drop_inputs(self.node, job_id, len(self.inputs(job.kind, json.loads(job.params))))
            self._emit("on_job_end", job_id)
        elif self.get(job_id).status == Status.RUNNING:  # read again: a worker may have started it meanwhile
            self._cancel.add(job_id)
            records.update(job_id, only_if=(Status.RUNNING,), cancel_requested=True, message="cancelling…")
        return self.get(job_id)

    def retry(self, job_id: int) -> Job:
        job = self.get(job_id)
        if job.status not in RETRYABLE:
            raise UsageError(f"job {job_id} is {job.status}; only failed, cancelled or interrupted jobs can be retried")
        task_id = uuid.uuid4().hex
        if records.update(job_id, only_if=RETRYABLE, status=Status.PENDING.value, done=None, total=None,
                          message="", extra=None, result=None, error=None, error_code=None,
                          cancel_requested=False,
                          started_at=None, finished_at=None, worker=None, task_id=task_id):
            self._cancel.discard(job_id)
            self._enqueue(job_id, job.priority, task_id)
        return self.get(job_id)

    def prioritise(self, job_id: int, priority: int) -> Job:
        """Change a waiting job's priority (higher runs first)."""
        job = self.get(job_id)
        if job.status != Status.PENDING:
            raise UsageError(f"job {job_id} is {job.status}; only waiting jobs can be reordered")
        task_id = uuid.uuid4().hex
        if records.update(job_id, only_if=(Status.PENDING,), priority=priority, task_id=task_id):
            self._enqueue(job_id, priority, task_id, replaces=job.task_id)  # the old task waits still: dropped
        return self.get(job_id)

    def result_file(self, job_id: int, index: int) -> Path:
        """The ``index``-th (from 0) of the files a job made: its result's ``files``, relative to
        ZISHU_HOME (an image job's pictures, a speech job's audio). Refused while the job has not
        succeeded, past the last file, and for a file no longer there (NotFound, naming it)."""
        job = self.get(job_id)
        if job.status != Status.SUCCESS:
            raise UsageError(f"job {job_id} is {job.status}; its files are there once it has succeeded")
        result = json.loads(job.result or "null")
        files = [str(f) for f in (result.get("files") or [])] if isinstance(result, dict) else []
        if not 0 <= index < len(files):
            which = f"files 0 to {len(files) - 1}" if files else "no files"
            raise NotFound(f"job {job_id} ({job.kind}) made {which}; there is no file {index}")
        home = Path(self.home).resolve()
        path = (home / files[index]).resolve()
        if not path.is_relative_to(home) or not path.is_file():
            raise NotFound(f"job {job_id}'s file {files[index]} is no longer in ZISHU_HOME (deleted or moved)")
        return path

    def clear_finished(self) -> int:
        """Forget finished jobs (their results are in the Library; nothing on disk is touched)."""
        n = Job.delete().where(Job.status.in_([s.value for s in FINISHED])).execute()
        records.changes.notify()
        return n

    # -- start-up -------------------------------------------------------------------------------

    def recover(self) -> dict[str, list[int]]:
        """At start: a RUNNING job whose process is gone becomes CANCELLED when the user had asked
        to cancel it, and INTERRUPTED otherwise; INTERRUPTED jobs of resumable types (cut off by a
        crash just now, or by closing the app) are then put back on the queue and go on from their
        partial work, while the others wait for Retry; PENDING jobs the queue lost (queue.db
        deleted, Redis flushed) are put back on it. Returns the ids of the jobs found cut off
        ("interrupted") and of those put back ("requeued")."""
        interrupted, requeued, ended = [], [], []
        if self.cluster:
            self.start_relay()  # it also requeues the remote jobs whose node went silent
        for job in Job.select().where(Job.status == Status.RUNNING.value):
            if worker_alive(job.worker) is not False or self._remote_job(job):
                continue
            if job.cancel_requested:
                if records.update(job.id, only_if=(Status.RUNNING,), status=Status.CANCELLED.value,
                                  finished_at=time.time(), cancel_requested=False, message="cancelled"):
                    ended.append(job.id)
            elif records.update(
                job.id, only_if=(Status.RUNNING,), status=Status.INTERRUPTED.value, finished_at=time.time(),
                message="Zishu stopped while this job ran; retry to continue where it left off",
            ):
                interrupted.append(job.id)
                if not self._resumable(job):
                    ended.append(job.id)  # a resumable one is taken up again just below
        for job in Job.select().where((Job.status == Status.INTERRUPTED.value) & ~Job.cancel_requested):
            if self._resumable(job) and self._resume(job, Status.INTERRUPTED):
                requeued.append(job.id)
        waiting = Job.select().where(Job.status == Status.PENDING.value)
        if waiting.exists():
            routes = [f"home:{self.node}", *(f"kind:{n}" for n, t in self.types.items() if t.remote)]
            parked: set[int] = set()
            if isinstance(self.huey, redisqueue.ClusterHuey):
                assert self.relay is not None
                parked = {int(w["job"]) for w in usage.waiting(self.relay.conn, self.node)}
                for job in waiting:
                    if self._remote_job(job):
                        routes.append(self.route_for(job.kind, json.loads(job.params)) or "")
                routes.append(routing.worker_route("*"))
                queued = {t.id for t in self.huey.pending_in(sorted(set(routes) - {""}))}
            else:
                queued = {t.id for t in self.huey.pending()}
            for job in waiting:
                if job.id not in requeued and job.task_id not in queued and job.id not in parked:
                    self._enqueue(job.id, job.priority, job.task_id or uuid.uuid4().hex)
                    requeued.append(job.id)
        for job_id in ended:
            self._emit("on_job_end", job_id)
        return {"interrupted": interrupted, "requeued": requeued}

    def _resumable(self, job: Job) -> bool:
        job_type = self.types.get(job.kind)
        return job_type is not None and job_type.resumable

    def _resume(self, job: Job, was: Status) -> bool:
        """Put a cut-off job of a resumable type back on the queue (it goes on from its partial work)."""
        task_id = uuid.uuid4().hex
        if not records.update(job.id, only_if=(was,), status=Status.PENDING.value, task_id=task_id,
                              worker=None, started_at=None, finished_at=None, error=None, error_code=None,
                              cancel_requested=False,
                              message="Zishu stopped while this ran; continuing where it left off"):
            return False
        self._cancel.discard(job.id)  # asked by the close that cut it off, not by the user
        self._enqueue(job.id, job.priority, task_id)
        return True

    # -- running ------------------------------------------------------------------------------

    def start_consumer(self, workers: int = 2) -> None:
        """Run jobs in this process, in ``workers`` threads."""
        self._closing = False
        if self.cluster and self.accepted():  # this app runs jobs for the cluster too: it is a node
            self.refresh_routes()
            self._start_heartbeat()
        self._consumer = _InAppConsumer(self.huey, workers=workers, worker_type="thread", periodic=False,
                                        check_worker_health=False, **POLLING)
        self._consumer.start()

    def stop_consumer(self, timeout: float = 5.0) -> None:
        """Ask running jobs to stop (they end INTERRUPTED, retryable) and stop the workers."""
        self._relay_stop.set()
        if self._consumer is None:
            return
        self._closing = True
        self._cancel.update(j.id for j in Job.select(Job.id).where(
            (Job.status == Status.RUNNING.value) & (Job.worker == worker_id())))
        self._consumer.stop_flag.set()
        _WAKE.set()
        deadline = time.monotonic() + timeout
        for _, thread in self._consumer.worker_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._consumer = None

    def run_worker(self, workers: int = 2) -> None:
        """``zishu worker``: recover what a dead process left (see ``recover``), then run jobs in
        this process until interrupted (Ctrl+C finishes gracefully)."""
        found = self.recover()
        if found["interrupted"] or found["requeued"]:
            log.warning("jobs found cut off: interrupted %s, queued again %s", found["interrupted"], found["requeued"])
        if self.cluster:
            self.refresh_routes()
            self._start_heartbeat()
        try:
            Consumer(self.huey, workers=workers, worker_type="thread", periodic=False, **POLLING).run()
        finally:
            if self.cluster:
                nodes.gone(self.huey.storage.conn, worker_id())

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or not self._heartbeat.is_alive():
            self._heartbeat = threading.Thread(target=self._advertise, name="zishu-heartbeat", daemon=True)
            self._heartbeat.start()

    def _advertise(self) -> None:
        """A worker's heartbeat: what it offers (``nodes.describe``) every ``nodes.HEARTBEAT_EVERY`` s,
        listening to the queues of the models it has now (an install or uninstall shows at the next beat)."""
        make = self.services.get("offers")
        while not self._relay_stop.is_set():
            try:
                offers = make() if make is not None else {}
                self.refresh_routes(list(offers.get("models") or []))
                nodes.beat(self.huey.storage.conn, nodes.describe(worker_id(), self.node, self.accepted(),
                                                                  list(self._running.values()), offers))
            except Exception:
                log.warning("could not send this node's heartbeat", exc_info=True)
            self._relay_stop.wait(nodes.HEARTBEAT_EVERY)

    def _enqueue(self, job_id: int, priority: int, task_id: str | None = None, route: str | None = None,
                 replaces: str | None = None) -> None:
        """Queue a job under a (new) task id; on the cluster to ``route`` (default: ``route_for``).
        ``replaces``: the job's previous task, still waiting in the queue. Here its stale id is
        enough (``_run`` skips it), but a worker on another machine cannot read the job's row, so on
        the cluster it is revoked: the worker that pops it drops it, and that pop clears the revoke."""
        task_id = task_id or uuid.uuid4().hex
        old = Job.get_or_none(Job.id == job_id)
        records.update(job_id, task_id=task_id)
        if not self.cluster:
            self.huey.enqueue(self._task.task_class((job_id, task_id), None, id=task_id, priority=priority))
            return
        assert isinstance(self.huey, redisqueue.ClusterHuey) and old is not None and self.relay is not None
        if replaces and replaces != task_id:
            self.huey.revoke_by_id(replaces, revoke_once=True)
        params = json.loads(old.params)
        route = route or self.route_for(old.kind, params)
        if route is not None:
            self.start_relay()
            usage.stop_waiting(self.relay.conn, self.node, job_id)
            sent = [self.relay.send_input(self.home, self.node, job_id, i, relative)
                    for i, relative in enumerate(self.inputs(old.kind, params))]
            task = self._remote_task.task_class(
                (self.node, job_id, task_id, old.kind, params, sent), None, id=task_id, priority=priority)
            self.huey.enqueue_routed(task, route)
            if route.startswith(routing.MODEL_PREFIX):
                remote.note_if_unserved(self, job_id, old.kind, self.needs(old.kind, params) or "")
        else:
            task = self._task.task_class((job_id, task_id), None, id=task_id, priority=priority)
            self.huey.enqueue_routed(task, f"home:{self.node}")

    def _run(self, job_id: int, task_id: str) -> None:
        job = Job.get_or_none(Job.id == job_id)
        if job is None:
            log.error("job %s is not in %s: it was cleared, or this worker's ZISHU_HOME is not the app's "
                      "(a worker reads and writes the job table of its ZISHU_HOME)", job_id, self.home / "zishu.db")
            return
        if job.task_id != task_id:
            return  # superseded by a retry or a new priority
        if not records.update(job_id, only_if=(Status.PENDING,), status=Status.RUNNING.value,
                              started_at=time.time(), worker=worker_id(), attempts=job.attempts + 1,
                              message="started"):
            return  # cancelled while waiting, or another worker took it
        self._emit("on_job_start", job_id)
        job_type = self.types.get(job.kind)
        fields: dict[str, Any]
        try:
            if job_type is None:
                raise UsageError(f"no plugin provides the job type {job.kind!r} (is its plugin disabled?)")
            result = job_type.run(JobContext(self, job_id), **json.loads(job.params))
            fields = {"status": Status.SUCCESS.value, "result": json.dumps(result), "message": "done"}
        except JobCancelled:
            if self._closing and not Job.select(Job.cancel_requested).where(Job.id == job_id).scalar():
                then = ("it continues at the next start" if job_type is not None and job_type.resumable
                        else "retry to continue where it left off")
                fields = {"status": Status.INTERRUPTED.value, "message": f"Zishu was closed while this job ran; {then}"}
            else:  # the user's cancel stands, also when the app closes at the same moment
                fields = {"status": Status.CANCELLED.value, "message": "cancelled"}
        except ZishuError as e:
            fields = records.failed(e)
        except Exception as e:
            log.exception("job %s (%s) failed", job_id, job.kind)
            fields = {"status": Status.FAILED.value, "error": f"{type(e).__name__}: {e}",
                      "error_code": "ZISHU_ERROR", "message": "failed"}
        records.update(job_id, only_if=(Status.RUNNING,), finished_at=time.time(), cancel_requested=False, **fields)
        self._cancel.discard(job_id)
        self._emit("on_job_end", job_id)

    def _run_remote(self, origin: str, job_id: int, task_id: str, kind: str, params: dict,
                    inputs: list[dict] | None = None) -> None:
        remote.run(self, origin, job_id, task_id, kind, params, inputs or [])

    def start_relay(self) -> None:
        """Listen (in a thread) for what workers report about this app's remote jobs."""
        if self.relay is not None and (self._relay_thread is None or not self._relay_thread.is_alive()):
            self._relay_stop.clear()
            self._relay_thread = threading.Thread(target=remote.listen, args=(self,), name="zishu-relay",
                                                  daemon=True)
            self._relay_thread.start()

    def _emit(self, hook_name: str, job_id: int) -> None:
        """Tell plugins (each on its own: one that raises is recorded, the others still hear it),
        or the ``hook`` object given to the queue. No listener: nothing is read."""
        if self.hook is None and not plugins.listening(hook_name):
            return
        job = self.get(job_id).as_dict()
        if self.hook is None:
            plugins.call_each(hook_name, job=job)
            return
        try:
            getattr(self.hook, hook_name)(job=job)
        except Exception:
            log.warning("the %s hook raised; ignored", hook_name, exc_info=True)
