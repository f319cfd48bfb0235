"""A shot's picture and narration made as sub-jobs on a cluster's queue (``ZISHU_QUEUE=redis://…``).

On a cluster the ``storyboard-shot`` job itself stays on the app (the project lives in the app's
SQLite), but what needs a model goes where the model is: the picture as an ``image`` job and the
narration as a ``speech`` job, each routed by its model like any remote job (a node that lacks the
model answers MODEL_NOT_AVAILABLE and the job is sent on, at no cost to the shot). The shot job
waits for each: its progress shows the sub-job's (done, total and message), the user's cancel of
the shot cancels the sub-job, and a sub-job that fails fails the shot with its message and code.
What comes back is already in the app: the picture in its gallery (``studio.jobs.arrived``), the
audio under ZISHU_HOME/audio/speech with its sha256 checked by the relay; the shot copies each into
the project's folder, checking the audio's sha256 once more on the copy.

A sub-job is used only where it can be routed (``JobQueue.route_for``): a model given as a catalog
id. A voice that is no catalog model (espeak-ng's) or a model given as a path is used in-process,
as on a single machine.

Resume: the shot job records its sub-jobs' ids in its ``extra`` (``{"subjobs": {"image": 12}}``),
with a fingerprint of what each was asked (``"asked": {"image": "<sha256>"}``), which a resume
keeps (Retry clears it). A shot job cut off by a crash or a close, once resumed, waits for the
sub-job it had submitted (a remote job goes on running on its node meanwhile) or takes the result
of the one that finished, rather than submitting the same work again; but only where the shot asks
the same as before: a shot edited meanwhile (its prompt, the project's character or voice) gets a
new sub-job, never the stale picture or narration. Closing the app
does not cancel sub-jobs: only the user's cancel (``cancel_requested`` on the shot's row) does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from zishu.errors import (
    ChecksumMismatch,
    JobCancelled,
    NotFound,
    ResourceNotAvailable,
    UsageError,
    ZishuError,
    every_error,
)
from zishu.files import adjacent_tmp_file

POLL = 0.1  # seconds between two looks at a sub-job's row
WAITING = ("PENDING", "RUNNING")
REUSABLE = ("PENDING", "RUNNING", "SUCCESS")  # a recorded sub-job a resumed shot job waits for or takes


def failure(code: str | None, message: str) -> ZishuError:
    """The error a failed sub-job reported, as the class of its code (so the shot fails with the same)."""
    classes = {cls.code: cls for cls in every_error()}
    return classes.get(code or "", ZishuError)(message)


class SubJobs:
    """The sub-jobs of one running shot job (``ctx``: its ``JobContext``), on the cluster's queue."""

    def __init__(self, ctx: Any) -> None:
        self.ctx, self.queue = ctx, ctx.queue
        extra = self.queue.get(ctx.job_id).extra
        shown = json.loads(extra) if extra else {}
        self.recorded: dict[str, int] = dict(shown.get("subjobs") or {})
        self.asked: dict[str, str] = dict(shown.get("asked") or {})

    def routed(self, kind: str, params: dict) -> bool:
        """Whether a ``kind`` job with ``params`` goes through the cluster (it names a catalog model)."""
        return bool(self.queue.cluster) and self.queue.route_for(kind, params) is not None

    def run(self, part: str, kind: str, params: dict, label: str) -> dict:
        """The result of the ``kind`` sub-job making ``part`` (the recorded one when it was asked the
        same ``params``, else a new one)."""
        known, asked = None, fingerprint(kind, params)
        if part in self.recorded and self.asked.get(part) == asked:
            with contextlib.suppress(NotFound):  # cleared from the job list meanwhile
                known = self.queue.get(self.recorded[part])
        if known is None or known.kind != kind or known.status not in REUSABLE:
            self.recorded[part] = self.queue.submit(kind, params).id
            self.asked[part] = asked
        job_id = self.recorded[part]
        self.ctx.progress(0, None, f"{label}: job {job_id}", extra={"subjobs": self.recorded, "asked": self.asked})
        return self.wait(job_id, label)

    def wait(self, job_id: int, label: str) -> dict:
        """Wait for sub-job ``job_id``, showing its progress; cancel it on the user's cancel."""
        while True:
            job = self.queue.get(job_id)
            if job.status not in WAITING:
                break
            if self.ctx.cancelled():
                if self.queue.get(self.ctx.job_id).cancel_requested:  # the user's, not the app's close
                    self.queue.cancel(job_id)
                raise JobCancelled("cancelled")
            self.ctx.progress(job.done, job.total, f"{label}: {job.message}" if job.message else label)
            time.sleep(POLL)
        if job.status == "SUCCESS":
            return json.loads(job.result or "{}")
        if job.status == "FAILED":
            raise failure(job.error_code, f"{label} (job {job_id}): {job.error}")
        raise ZishuError(f"{label}: job {job_id} was {job.status.lower()} ({job.message}); render the shot again")

    # -- the shot's parts ---------------------------------------------------------------------------

    def picture_request(self, studio: Any, request: dict) -> dict:
        """``request`` with the model named (the ``studio_model`` setting, else this app's first image
        model), since another node would not pick the same; the ``image`` job's check expands the
        character and the style here, as for any image job sent to the cluster."""
        from zishu.studio.requests import ImageRequest

        fields = ImageRequest.parse(request).given()
        if not fields.get("model"):
            try:
                fields["model"] = studio.default_model()
            except ResourceNotAvailable:
                raise ResourceNotAvailable("model: no image model is installed here to draw the shot; set the "
                                           "studio's model (studio.model) to one a node of the cluster has") from None
        return fields

    def draw(self, studio: Any, request: dict, target: Path, label: str) -> bool:
        """The picture of ``request`` drawn by an ``image`` sub-job into ``target``; False (nothing
        done) when it cannot be routed (a model given as a path): then it is drawn here."""
        fields = self.picture_request(studio, request)
        if not self.routed("image", fields):
            return False
        result = self.run("image", "image", fields, label)
        row = (result.get("images") or [None])[0]
        if row is None:
            raise ZishuError(f"{label}: the image job returned no picture")
        if row.get("blocked"):
            raise UsageError(f"prompt: {label} was blocked by the safety check ({row.get('blocked_reason')}); "
                             "change the prompt")
        copy(Path(studio.gallery.folder) / row["file"], target)
        return True

    def speak(self, text: str, voice: str | None, target: Path, label: str) -> float | None:
        """The narration spoken by a ``speech`` sub-job into ``target`` (a WAV), its seconds; None
        (nothing done) when the voice is no catalog model (espeak-ng's, a path): then it is spoken here."""
        params = {"text": text, "voice": voice, "format": "wav"}
        if voice is None or not self.routed("speech", params):
            return None
        result = self.run("narration", "speech", params, label)
        audio = Path(self.queue.home) / str(result.get("audio") or "")
        if not result.get("audio") or not audio.is_file():
            raise ZishuError(f"{label}: the speech job's audio ({result.get('audio')}) is not in {self.queue.home}")
        copy(audio, target, sha256=result.get("sha256"))
        return float(result["seconds"])


def fingerprint(kind: str, params: dict) -> str:
    """What a sub-job was asked, as a sha256 of its kind and parameters (key order aside)."""
    asked = json.dumps([kind, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(asked.encode()).hexdigest()


def copy(source: Path, target: Path, sha256: str | None = None) -> None:
    """``source`` copied to ``target`` whole or not at all; with ``sha256``, the copy must match it."""
    digest = hashlib.sha256()
    with open(source, "rb") as given, adjacent_tmp_file(target) as out:
        while chunk := given.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ChecksumMismatch(f"{source}: sha256 {digest.hexdigest()}, expected {sha256}")


__all__ = ["SubJobs", "copy", "failure", "fingerprint"]
