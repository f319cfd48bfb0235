"""The storyboard's job types, an internal plugin (``trylast``) like the ``install`` job:

- ``storyboard-shot`` ``{"project", "shot", "redo": []}``: make one shot (``shots.make_shot``), with
  an image-to-video clip where ``clips.video_choice`` finds an I2V engine, its model and a GPU.
- ``storyboard-export`` ``{"project", "burn_subtitles", "music", "crossfade"}``: the MP4 (``render.export_project``).

Both are ``resumable``: after a crash (kill -9) or a close, the next start queues them again. A shot
job then makes only what its shot still lacks; an export starts its encode afresh, because the
temporary file of the one cut off never became the MP4. Cancel stops a shot between its picture and
its narration (and the picture between two steps), and an export by ending ffmpeg.

On a cluster (``ZISHU_QUEUE=redis://…``) the shot job stays on the app, whose SQLite holds the
project, and makes its picture and narration through ``image`` and ``speech`` sub-jobs routed by
model (``subjobs``): the shot job's cancel cancels them, their progress is its progress, their
failure its failure, and a resumed shot job waits for the sub-job it had submitted.
"""

from __future__ import annotations

from typing import Any

from zishu.hookspecs import hookimpl
from zishu.jobs import JobContext

from .export import CROSSFADE
from .render import export_project
from .shots import make_shot
from .subjobs import SubJobs


def shot_job(ctx: JobContext, project: int, shot: int, redo: list[str] | None = None) -> dict:
    from .clips import video_choice
    from .projects import shot_dict

    boards = ctx.service("storyboards")
    boards.shot(shot, project)
    studio = ctx.service("studio") if "studio" in ctx.queue.services else None
    made = make_shot(boards, shot, host=boards.host, studio=studio, redo=tuple(redo or ()), job_id=ctx.job_id,
                     video=video_choice(boards.host),
                     progress=lambda done, total, message: ctx.progress(done, total, message),
                     cancelled=ctx.cancelled, subjobs=SubJobs(ctx) if ctx.queue.cluster else None)
    return shot_dict(made)


def export_job(ctx: JobContext, project: int, burn_subtitles: bool = False, music: bool = True,
               crossfade: float = CROSSFADE) -> dict:
    boards = ctx.service("storyboards")
    ctx.progress(0, None, "starting ffmpeg")
    made = export_project(boards, project, burn_subtitles=burn_subtitles, music=music, crossfade=crossfade,
                          progress=lambda done, total: ctx.progress(round(done, 2), total,
                                                                    f"encoding {done:.1f} of {total:.1f} s"),
                          cancelled=ctx.cancelled)
    return made


def _shot_title(params: dict) -> str:
    return f"Storyboard {params.get('project')}: shot {params.get('shot')}"


def _export_title(params: dict) -> str:
    return f"Storyboard {params.get('project')}: export MP4"


@hookimpl(trylast=True)
def register_job_types(register: Any) -> None:
    register("storyboard-shot", shot_job, title=_shot_title, resumable=True)
    register("storyboard-export", export_job, title=_export_title, resumable=True)
