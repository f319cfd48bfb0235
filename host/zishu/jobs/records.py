"""The job table: one row per job, the single truth about it (Huey's queue only carries the id).

States::

    PENDING ──> RUNNING ──> SUCCESS
       │           ├──────> FAILED ──────┐
       │           ├──────> CANCELLED ───┤ retry: back to PENDING, attempts + 1
       └─────────> CANCELLED             │
    RUNNING when its worker died ──> INTERRUPTED (found at the next start) ──┘

A job whose worker died is recorded INTERRUPTED at the next start. One of a ``resumable`` type (an
install, a storyboard shot or export), or one that closing the app left INTERRUPTED, then goes back
to PENDING by itself and carries on from its partial work; one whose cancel was asked ends
CANCELLED instead, and CANCELLED is never left by itself.
"""

from __future__ import annotations

import json
import time
from enum import Enum

import peewee
import pydantic

from zishu.db import BaseModel
from zishu.errors import ZishuError, field_problem

from .events import changes

MAX_JOB_ID = 2**63 - 1  # SQLite's largest INTEGER


class JobRef(pydantic.BaseModel):
    """A job id, as ``GET /api/jobs/<id>`` and the MCP tool ``job_status`` take it."""

    model_config = pydantic.ConfigDict(extra="forbid")
    job_id: int = pydantic.Field(..., ge=1, le=MAX_JOB_ID, description="a job id other calls returned")

    @classmethod
    def parse(cls, values: object) -> JobRef:
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as e:
            raise field_problem(e) from None


class Status(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INTERRUPTED = "INTERRUPTED"


FINISHED = (Status.SUCCESS, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
RETRYABLE = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)


class Job(BaseModel):
    id = peewee.AutoField()  # the one peewee adds by itself, spelled out so that type checkers see it
    kind = peewee.CharField()
    title = peewee.CharField()
    params = peewee.TextField()  # JSON: the keyword arguments of the job type's function
    status = peewee.CharField(index=True)
    priority = peewee.IntegerField(default=0)
    done = peewee.FloatField(null=True)  # progress in the job's own unit (bytes, steps)
    total = peewee.FloatField(null=True)  # None while unknown
    message = peewee.TextField(default="")
    extra = peewee.TextField(null=True)  # JSON the job shows while it runs (an image job's live preview)
    result = peewee.TextField(null=True)  # JSON
    error = peewee.TextField(null=True)
    error_code = peewee.CharField(null=True)
    cancel_requested = peewee.BooleanField(default=False)
    attempts = peewee.IntegerField(default=0)
    worker = peewee.CharField(null=True)  # "host:pid" of the process running it
    task_id = peewee.CharField(null=True)  # Huey's id for the current attempt
    created_at = peewee.FloatField()
    started_at = peewee.FloatField(null=True)
    finished_at = peewee.FloatField(null=True)
    updated_at = peewee.FloatField(index=True)

    @property
    def progress(self) -> float | None:
        if self.status == Status.SUCCESS:
            return 1.0
        if not self.total or self.done is None:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def as_dict(self) -> dict:
        """The job as the API and the ``on_job_*`` hooks see it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "params": json.loads(self.params),
            "status": self.status,
            "priority": self.priority,
            "progress": self.progress,
            "done": self.done,
            "total": self.total,
            "message": self.message,
            "extra": json.loads(self.extra) if self.extra else None,
            "result": json.loads(self.result) if self.result else None,
            "error": self.error,
            "error_code": self.error_code,
            "cancel_requested": self.cancel_requested,
            "attempts": self.attempts,
            "worker": self.worker,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "updated_at": self.updated_at,
        }


def update(job_id: int, *, only_if: tuple[Status, ...] | None = None, **fields) -> bool:
    """Change one job's row (stamping ``updated_at``); with ``only_if``, only from those states.
    Returns whether a row changed, so callers can tell they lost a race."""
    fields["updated_at"] = time.time()
    query = Job.update(**fields).where(Job.id == job_id)
    if only_if:
        query = query.where(Job.status.in_([s.value for s in only_if]))
    changed = query.execute() > 0
    if changed:
        changes.notify()
    return changed


def failed(error: ZishuError) -> dict:
    """The fields of a job that ``error`` failed; an error that an install would cure keeps the
    catalog id in the job's ``extra`` (``{"install": id}``), so a page offers the Install button."""
    fields = {"status": Status.FAILED.value, "error": str(error), "error_code": error.code, "message": "failed"}
    if error.install:
        fields["extra"] = json.dumps({"install": error.install})
    return fields


def create(kind: str, title: str, params: dict, priority: int = 0) -> Job:
    now = time.time()
    job = Job.create(kind=kind, title=title, params=json.dumps(params), status=Status.PENDING.value,
                     priority=priority, created_at=now, updated_at=now)
    changes.notify()
    return job


def recent(limit: int = 200) -> list[Job]:
    return list(Job.select().order_by(Job.id.desc()).limit(limit))


def changes_since(stamp: float) -> list[Job]:
    """The jobs whose row changed after ``stamp`` (an ``updated_at``), oldest change first: what a
    live view has not seen yet. Pass the newest ``updated_at`` returned to get only later changes."""
    return list(Job.select().where(Job.updated_at > stamp).order_by(Job.updated_at))
