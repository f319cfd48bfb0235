"""The storyboard's MCP tools (``mcp_tools`` builds the server):

    create_storyboard   StoryboardRequest (POST /api/storyboards): the project and its shots (written
                        by the language model when ``shots`` is a number), then one ``storyboard-shot``
                        job per shot (picture and narration); with ``wait``, followed until all have
                        ended, with "n of N shots" progress notifications
    export_video        ExportRequest (POST /api/storyboards/<id>/export) and the project id: checked
                        as the route checks it (every shot has its picture, the crossfade fits), then
                        the ``storyboard-export`` job followed to its MP4, with progress
                        notifications (seconds encoded of the video's length)

Both answer JSON with the job ids, so ``job_status`` can follow them too.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from pydantic import Field

from zishu.errors import UsageError
from zishu.jobs.records import FINISHED
from zishu.runtime import Runtime
from zishu.storyboard.export import CROSSFADE
from zishu.storyboard.projects import project_dict
from zishu.storyboard.render import check_export, submit_shots
from zishu.storyboard.requests import ExportRequest, StoryboardRequest

from .mcp_tools import ModelTools, finished, follow_job, in_thread


class CreateStoryboard(StoryboardRequest):
    wait: bool = Field(True, description="follow the shot jobs until they end (progress: shots made)")


class ExportVideo(ExportRequest):
    storyboard: int = Field(ge=1, le=2**62, description="the storyboard's id (create_storyboard answers it)")


def add_storyboard_tools(tools: ModelTools, runtime: Runtime, *, local_files: bool = True) -> None:
    @tools.add("create_storyboard", CreateStoryboard)
    async def create_storyboard(asked: CreateStoryboard, ctx: Context) -> str:
        """Make a storyboard from a story: its shots (``shots``: how many the language model writes,
        or the shots themselves), then each shot's picture and narration as jobs. Answers the
        storyboard (id, shots) and the job ids; export_video then makes the MP4."""
        if asked.music is not None and not local_files:
            raise UsageError("music: files on this computer are read over stdio (zishu mcp) only")
        project, jobs = await in_thread(_create, runtime, asked)
        if asked.wait and jobs:
            await _follow_all(runtime, jobs, ctx)
        boards = runtime.storyboards
        made = await in_thread(lambda: project_dict(boards.get(project), boards.shots(project)))
        return json.dumps({"storyboard": made, "jobs": jobs}, ensure_ascii=False, default=str)

    @tools.add("export_video", ExportVideo)
    async def export_video(asked: ExportVideo, ctx: Context) -> str:
        """The storyboard as an MP4 (crossfades, narration, subtitles, music), once its shots are
        made. Sends progress (seconds encoded); answers the job id and the video's path."""
        job = await in_thread(_queue_export, runtime, asked)
        done = finished(await follow_job(runtime, job.id, ctx))
        return json.dumps({"job": job.id, "video": done["result"]}, ensure_ascii=False, default=str)


def _create(runtime: Runtime, asked: CreateStoryboard) -> tuple[int, list[int]]:
    """What POST /api/storyboards does, then the shots' jobs (what …/render does)."""
    from zishu.storyboard.writer import write_storyboard

    boards = runtime.storyboards
    project = boards.create(asked.project() | {"story": asked.story})
    try:
        written = asked.hand_written()
        if written is not None:
            boards.replace_shots(project.id, written)
        elif asked.shots is not None:
            write_storyboard(runtime, boards, project.id, asked.shots, model=asked.model)
    except Exception:
        boards.delete(project.id)  # a refused request leaves no half-made project behind
        raise
    jobs = submit_shots(runtime.jobs, boards, project.id) if asked.shots is not None else []
    return project.id, jobs


def _queue_export(runtime: Runtime, asked: ExportVideo) -> Any:
    """What POST /api/storyboards/<id>/export does: refuse an export that cannot work (a shot
    without its picture, a crossfade too long), then queue it."""
    params: dict[str, Any] = {"project": asked.storyboard, "burn_subtitles": asked.burn_subtitles,
                              "music": asked.music}
    crossfade = check_export(runtime.storyboards, asked.storyboard,
                             CROSSFADE if asked.crossfade is None else asked.crossfade)
    if asked.crossfade is not None:
        params["crossfade"] = crossfade
    return runtime.jobs.submit("storyboard-export", params)


async def _follow_all(runtime: Runtime, jobs: list[int], ctx: Context) -> None:
    """Wait for every job, telling the client how many have ended."""
    from zishu.jobs.events import changes

    from .mcp_tools import JOB_POLL

    seen, said = changes.serial, -1
    while True:
        rows = [await in_thread(runtime.jobs.get, j) for j in jobs]
        ended = sum(1 for row in rows if row.status in FINISHED)
        if ended != said:
            said = ended
            await ctx.report_progress(ended, len(jobs), f"{ended} of {len(jobs)} shots made")
        if ended == len(jobs):
            return
        seen = await in_thread(changes.wait, seen, JOB_POLL)
