"""A project's shots as an MP4: ``export_project`` gathers what each shot made (``export.ShotMedia``),
refuses a project whose shots are not ready (naming the shot), and writes
``storyboards/<id>/export/<title>.mp4`` with its ``.srt`` beside it. The project remembers the
last export (path, duration, settings, and how long ffmpeg took: ``encode_seconds``)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zishu.errors import UsageError

from .export import CROSSFADE, ExportSettings, ShotMedia, export_video, shot_frames
from .projects import Storyboards


def export_path(boards: Storyboards, project_id: int, title: str) -> Path:
    stem = re.sub(r"[^\w\-]+", "-", title, flags=re.UNICODE).strip("-")[:60] or f"storyboard-{project_id}"
    return boards.folder(project_id) / "export" / f"{stem}.mp4"


def shot_media(boards: Storyboards, project_id: int) -> list[ShotMedia]:
    shots = boards.shots(project_id)
    if not shots:
        raise UsageError("shots: the storyboard has no shots to export; write or add some first")
    media = []
    for shot in shots:
        image = boards.file(project_id, shot.image)
        if image is None or not image.is_file():
            raise UsageError(f"shots.{shot.position}: shot {shot.position + 1} has no picture yet; "
                             "render it first (zishu storyboard render)")
        audio = boards.file(project_id, shot.audio)
        media.append(ShotMedia(image=image, duration=shot.duration,
                               audio=audio if audio is not None and audio.is_file() else None,
                               subtitle=shot.subtitle, move=shot.motion or "zoom-in",
                               clip=boards.file(project_id, shot.clip)))
    return media


MAX_CROSSFADE = 2.0  # seconds


def crossfade_seconds(value: Any) -> float:
    """How long two shots overlap, checked: 0 (a cut) to ``MAX_CROSSFADE`` seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_CROSSFADE:
        raise UsageError(f"crossfade: must be 0 to {MAX_CROSSFADE:g} seconds, got {value!r}")
    return float(value)


def check_export(boards: Storyboards, project_id: int, crossfade: Any = CROSSFADE) -> float:
    """Refuse, before an export job is queued, one that cannot work: a shot without its picture
    (``shots.N``), a crossfade out of range or too long for the shortest shot (``crossfade``).
    The crossfade in seconds."""
    seconds = crossfade_seconds(crossfade)
    media = shot_media(boards, project_id)
    overlap = shot_frames(seconds)
    for n, shot in enumerate(media):
        if len(media) > 1 and shot_frames(shot.duration) <= 2 * overlap:
            raise UsageError(f"crossfade: {seconds:g} s at both ends is too long for shot {n + 1} "
                             f"({shot.duration:g} s); choose a shorter crossfade")
    return seconds


def export_project(boards: Storyboards, project_id: int, *, burn_subtitles: bool = False, music: bool = True,
                   crossfade: float = CROSSFADE, out: Path | None = None,
                   progress: Callable[[float, float], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> dict:
    project = boards.get(project_id)
    media = shot_media(boards, project_id)
    settings = ExportSettings(aspect=project.aspect, resolution=project.resolution, burn_subtitles=burn_subtitles,
                              music=Path(project.music) if music and project.music else None,
                              crossfade=crossfade_seconds(crossfade))
    target = Path(out) if out is not None else export_path(boards, project_id, project.title)
    made = export_video(media, target, settings, progress=progress, cancelled=cancelled)
    record = {"path": str(made.path), "subtitles": str(made.subtitles), "duration": made.duration,
              "width": made.width, "height": made.height, "burn_subtitles": burn_subtitles,
              "crossfade": settings.crossfade, "music": settings.music is not None, "finished": time.time(),
              "encode_seconds": round(made.encode_seconds, 3)}
    project.export = json.dumps(record, ensure_ascii=False)
    project.save()
    return record


def submit_shots(queue: Any, boards: Storyboards, project_id: int, shot_ids: Any = None,
                 redo: Any = None) -> list[int]:
    """Queue a ``storyboard-shot`` job for each shot named (default: every shot not yet SUCCESS);
    ``redo`` ("image", "narration") makes those again. The job ids, in shot order."""
    from .shots import PARTS

    shots = boards.shots(project_id)
    redo = list(redo or [])
    if not isinstance(redo, list) or any(part not in PARTS for part in redo):
        raise UsageError(f"redo: must be a list of: {', '.join(PARTS)}")
    if shot_ids is None:
        chosen = [s for s in shots if s.status != "SUCCESS" or redo]
    else:
        known = {s.id: s for s in shots}
        if not isinstance(shot_ids, list) or any(i not in known for i in shot_ids):
            raise UsageError(f"shots: must list shot ids of storyboard {project_id} ({sorted(known)})")
        chosen = [known[i] for i in shot_ids]
    jobs = []
    for shot in chosen:
        job = queue.submit("storyboard-shot", {"project": project_id, "shot": shot.id, "redo": redo})
        boards.set_made(shot.id, job_id=job.id, status="PENDING")
        jobs.append(job.id)
    return jobs
