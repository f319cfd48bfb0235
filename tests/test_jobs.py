"""The job queue in one process: real SQLite (zishu.db and queue.db), real Huey consumer threads."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from zishu.db import open_database
from zishu.errors import ResourceNotAvailable, UsageError, ZishuError
from zishu.jobs import Job, JobContext, JobQueue
from zishu.jobs.queue import worker_id


def wait(queue: JobQueue, job_id: int, *statuses: str, timeout: float = 20) -> Job:
    deadline = time.monotonic() + timeout
    while (job := queue.get(job_id)).status not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}"
        time.sleep(0.01)
    return job


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []

    def on_job_start(self, job):
        self.events.append(("start", job["id"], job["status"]))

    def on_job_progress(self, job):
        self.events.append(("progress", job["id"], job["status"]))

    def on_job_end(self, job):
        self.events.append(("end", job["id"], job["status"]))


@pytest.fixture
def queue(tmp_path):
    open_database(tmp_path / "zishu.db")
    hooks = Recorder()
    q = JobQueue(tmp_path, url="", hook=hooks)
    q.hooks = hooks
    gate = threading.Event()
    ran: list[str] = []

    def steps(ctx, n: int = 3, wait_gate: bool = False, name: str = ""):
        ran.append(name)
        for i in range(n):
            if wait_gate:
                while not gate.is_set():
                    ctx.check()
                    time.sleep(0.01)
            ctx.check()
            ctx.progress(i + 1, n, f"step {i + 1}")
        return {"steps": n}

    def broken(ctx):
        raise RuntimeError("the job's own bug")

    def refused(ctx):
        raise UsageError("bad parameters for this job")

    def missing(ctx):
        raise ResourceNotAvailable("model: acme/painter is not installed", install="acme/painter")

    q.register("steps", steps, title=lambda p: f"{p.get('n', 3)} steps")
    q.register("broken", broken)
    q.register("refused", refused)
    q.register("missing", missing)
    q.gate, q.ran = gate, ran
    yield q
    gate.set()
    q.stop_consumer()


def test_a_job_runs_reports_progress_and_stores_its_result(queue):
    job = queue.submit("steps", {"n": 4})
    assert job.status == "PENDING" and job.title == "4 steps"
    queue.start_consumer()
    done = wait(queue, job.id, "SUCCESS")
    assert json.loads(done.result) == {"steps": 4}
    assert (done.done, done.total, done.progress, done.attempts) == (4, 4, 1.0, 1)
    assert done.started_at >= done.created_at and done.finished_at >= done.started_at
    deadline = time.monotonic() + 10
    while ("end", job.id, "SUCCESS") not in queue.hooks.events:  # the hook runs just after the row is saved
        assert time.monotonic() < deadline
        time.sleep(0.01)
    kinds = [e[0] for e in queue.hooks.events if e[1] == job.id]
    assert kinds[0] == "start" and kinds[-1] == "end" and "progress" in kinds
    assert queue.hooks.events[-1] == ("end", job.id, "SUCCESS")


def test_unknown_job_type_is_refused_at_submit(queue):
    with pytest.raises(UsageError, match="no job type 'nope'"):
        queue.submit("nope")


def test_failures_keep_the_error_and_its_code(queue):
    queue.start_consumer()
    crash = wait(queue, queue.submit("broken").id, "FAILED")
    assert crash.error == "RuntimeError: the job's own bug" and crash.error_code == "ZISHU_ERROR"
    refused = wait(queue, queue.submit("refused").id, "FAILED")
    assert refused.error == "bad parameters for this job" and refused.error_code == "USAGE"
    assert refused.as_dict()["extra"] is None


def test_a_job_that_failed_for_want_of_a_resource_names_it_for_the_install_button(queue):
    queue.start_consumer()
    failed = wait(queue, queue.submit("missing").id, "FAILED")
    assert failed.error_code == "MODEL_NOT_AVAILABLE" and failed.as_dict()["extra"] == {"install": "acme/painter"}
    queue.retry(failed.id)  # installed meanwhile, or not: the retried job starts clean
    assert wait(queue, failed.id, "FAILED").as_dict()["extra"] == {"install": "acme/painter"}
    assert queue.get(failed.id).attempts == 2


def test_cancel_a_waiting_job_and_it_never_runs(queue):
    job = queue.submit("steps", {"name": "never"})
    assert queue.cancel(job.id).status == "CANCELLED"
    queue.start_consumer()
    other = queue.submit("steps", {"name": "after"})
    wait(queue, other.id, "SUCCESS")
    assert queue.ran == ["after"]


def test_a_cancel_is_kept_when_a_worker_starts_the_job_while_it_is_asked(queue, monkeypatch):
    """The worker takes the job between the cancel's read (PENDING) and its update: the running
    job still hears the cancel instead of it being lost."""
    from zishu.jobs import records
    from zishu.jobs.records import Status

    job = queue.submit("steps", {"name": "raced"})
    real_update = records.update

    def worker_starts_first(job_id, only_if=None, **fields):
        if only_if == (Status.PENDING,):
            real_update(job_id, only_if=(Status.PENDING,), status=Status.RUNNING.value)
        return real_update(job_id, only_if=only_if, **fields)

    monkeypatch.setattr(records, "update", worker_starts_first)
    cancelled = queue.cancel(job.id)
    assert cancelled.status == "RUNNING" and cancelled.cancel_requested
    assert cancelled.message == "cancelling…"


def test_cancel_a_running_job_then_retry_it(queue):
    queue.start_consumer()
    job = queue.submit("steps", {"wait_gate": True})
    wait(queue, job.id, "RUNNING")
    asked = queue.cancel(job.id)
    assert asked.cancel_requested or asked.status == "CANCELLED"  # it may stop before cancel() returns
    cancelled = wait(queue, job.id, "CANCELLED")
    assert cancelled.message == "cancelled" and not cancelled.cancel_requested
    with pytest.raises(UsageError, match="only failed, cancelled or interrupted"):
        queue.retry(wait(queue, queue.submit("steps").id, "SUCCESS").id)
    queue.gate.set()
    again = queue.retry(job.id)
    assert again.status in ("PENDING", "RUNNING", "SUCCESS")
    finished = wait(queue, job.id, "SUCCESS")
    assert finished.attempts == 2 and finished.error is None


def test_higher_priority_runs_first_and_reprioritised_jobs_run_once(queue):
    low = queue.submit("steps", {"name": "low"}, priority=0)
    high = queue.submit("steps", {"name": "high"}, priority=10)
    moved = queue.submit("steps", {"name": "moved"}, priority=0)
    queue.prioritise(moved.id, 20)
    queue.start_consumer(workers=1)
    for job in (low, high, moved):
        wait(queue, job.id, "SUCCESS")
    assert queue.ran == ["moved", "high", "low"]  # the superseded task of "moved" was skipped


def test_recover_marks_jobs_of_dead_processes_interrupted_and_requeues_lost_ones(queue, tmp_path):
    dead = queue.submit("steps", {"name": "dead"})
    Job.update(status="RUNNING", worker=f"{os.uname().nodename}:999999999:0").where(Job.id == dead.id).execute()
    alive = queue.submit("steps", {"name": "alive"})
    Job.update(status="RUNNING", worker=worker_id()).where(Job.id == alive.id).execute()
    lost = queue.submit("steps", {"name": "lost"})
    queue.huey.flush()  # the queue lost its tasks (queue.db deleted, Redis flushed)
    found = queue.recover()
    assert found == {"interrupted": [dead.id], "requeued": [lost.id]}
    assert queue.get(dead.id).status == "INTERRUPTED" and "retry" in queue.get(dead.id).message
    assert queue.get(alive.id).status == "RUNNING"  # this very process: not dead
    queue.start_consumer()
    wait(queue, lost.id, "SUCCESS")
    queue.retry(dead.id)
    wait(queue, dead.id, "SUCCESS")
    assert sorted(queue.ran) == ["dead", "lost"]


def test_stopping_the_app_interrupts_running_jobs(queue):
    queue.start_consumer()
    job = queue.submit("steps", {"wait_gate": True})
    wait(queue, job.id, "RUNNING")
    queue.stop_consumer()
    stopped = queue.get(job.id)
    assert stopped.status == "INTERRUPTED" and "closed" in stopped.message


def test_a_raising_hook_does_not_break_the_job(queue):
    class Angry:
        def on_job_start(self, job):
            raise ZishuError("a plugin's bug")

        on_job_progress = on_job_end = on_job_start

    queue.hook = Angry()
    queue.start_consumer()
    assert wait(queue, queue.submit("steps").id, "SUCCESS", "FAILED").status == "SUCCESS"


def test_redis_url_must_be_a_redis_url(tmp_path):
    with pytest.raises(UsageError, match="expected a Redis URL"):
        JobQueue(tmp_path, url="mysql://localhost/zishu")


DEAD_WORKER = f"{os.uname().nodename}:999999999:0"


def test_recover_puts_resumable_jobs_back_on_the_queue_but_never_a_cancelled_one(queue):
    ran: list[str] = []

    def resume(ctx, name: str):
        ran.append(name)
        ctx.progress(1, 1, "done")
        return {"name": name}

    queue.register("resume", resume, resumable=True)
    crashed = queue.submit("resume", {"name": "crashed"})
    closed = queue.submit("resume", {"name": "closed"})
    cancelled = queue.submit("resume", {"name": "cancelled"})
    plain = queue.submit("steps", {"name": "plain"})
    Job.update(status="RUNNING", worker=DEAD_WORKER, done=5, total=10).where(
        Job.id.in_([crashed.id, plain.id])).execute()
    Job.update(status="INTERRUPTED").where(Job.id == closed.id).execute()  # the app was closed during it
    Job.update(status="RUNNING", worker=DEAD_WORKER, cancel_requested=True).where(Job.id == cancelled.id).execute()
    queue.huey.flush()
    found = queue.recover()
    # Both cut-off jobs are recorded INTERRUPTED; the resumable one (and the one closing the app cut
    # off) goes back on the queue, the plain one waits for Retry.
    assert sorted(found["interrupted"]) == sorted([crashed.id, plain.id])
    assert sorted(found["requeued"]) == [crashed.id, closed.id]
    back = queue.get(crashed.id)
    assert back.status == "PENDING" and back.done == 5 and "continuing where it left off" in back.message
    assert queue.get(cancelled.id).status == "CANCELLED"  # the user's cancel crossed the crash: it stands
    assert queue.get(plain.id).status == "INTERRUPTED"  # not resumable: waits for Retry, as before
    queue.start_consumer()
    for job in (crashed, closed):
        assert wait(queue, job.id, "SUCCESS").attempts == 1
    assert sorted(ran) == ["closed", "crashed"]
    assert queue.recover() == {"interrupted": [], "requeued": []}  # the next start finds nothing to do
    assert queue.get(cancelled.id).status == "CANCELLED"


def test_a_cancel_is_not_undone_when_the_app_closes_at_the_same_moment(queue):
    release = threading.Event()

    def slow(ctx):
        release.wait(10)
        ctx.check()

    queue.register("slow", slow, resumable=True)
    queue.start_consumer()
    job = queue.submit("slow")
    wait(queue, job.id, "RUNNING")
    queue.cancel(job.id)
    closing = threading.Thread(target=queue.stop_consumer)
    closing.start()
    while not queue._closing:
        time.sleep(0.01)
    release.set()  # the job sees the cancel only now, while the app closes
    closing.join()
    assert queue.get(job.id).status == "CANCELLED"
    assert queue.recover() == {"interrupted": [], "requeued": []}
    assert queue.get(job.id).status == "CANCELLED"


def test_closing_the_app_leaves_a_resumable_job_to_go_on_at_the_next_start(queue):
    release = threading.Event()
    runs: list[int] = []

    def slow(ctx):
        runs.append(1)
        ctx.check()
        while len(runs) == 1 and not release.is_set():
            ctx.check()
            time.sleep(0.01)
        return {"runs": len(runs)}

    queue.register("slow", slow, resumable=True)
    queue.start_consumer()
    job = queue.submit("slow")
    wait(queue, job.id, "RUNNING")
    queue.stop_consumer()
    stopped = queue.get(job.id)
    assert stopped.status == "INTERRUPTED" and "next start" in stopped.message
    assert queue.recover()["requeued"] == [job.id]
    queue.start_consumer()
    assert json.loads(wait(queue, job.id, "SUCCESS").result) == {"runs": 2}


def test_cancelling_an_interrupted_job_keeps_the_next_start_from_taking_it_up(queue):
    queue.register("resume", lambda ctx: None, resumable=True)
    job = queue.submit("resume")
    Job.update(status="INTERRUPTED").where(Job.id == job.id).execute()
    assert queue.cancel(job.id).status == "CANCELLED"
    assert queue.recover() == {"interrupted": [], "requeued": []}
    assert queue.get(job.id).status == "CANCELLED"


def test_a_job_gets_the_catalog_from_its_context_not_from_the_runtime(tmp_path):
    """The runtime hands the queue what jobs need (``services``); a job asks its context for it."""
    open_database(tmp_path / "zishu.db")
    made: list[str] = []

    def catalog():
        made.append("catalog")
        return {"source": "the runtime's choice"}

    queue = JobQueue(tmp_path, url="", hook=Recorder(), services={"catalog": catalog})
    queue.register("uses-catalog", lambda ctx: ctx.catalog()["source"])
    job = queue.submit("uses-catalog")
    queue.start_consumer(1)
    try:
        assert json.loads(wait(queue, job.id, "SUCCESS").result) == "the runtime's choice"
    finally:
        queue.stop_consumer()
    assert made == ["catalog"]

    bare = JobQueue(tmp_path, url="", hook=Recorder())  # a queue nobody gave a catalog
    with pytest.raises(UsageError, match="no 'catalog' service"):
        JobContext(bare, job.id).catalog()
