"""Making one shot: its picture through the studio and its narration through a TTS engine.

``make_shot`` does only what the shot lacks (or what ``redo`` names), saving each piece as soon as
it is made, so a shot job cut off by a crash and run again carries on where it stopped and a
finished shot is never redone; regenerating one shot touches no other.

- The picture: the studio's request for the project's character (``studio.characters.draw_request``:
  its look, style, LoRA) with the shot's prompt, the project's style, the frame's aspect and the
  project's seed, so the character stays the same from shot to shot. Its short side is the
  ``storyboard_picture_side`` setting (512 by default: SD 1.5's size; export scales it to the
  video). Drawn by ``Studio.generate`` (the gallery keeps it too) and copied into the project's
  folder, so the project reads offline.
- The narration: the project's voice, else the character's, else the Settings' default voice, else
  espeak-ng; written as a WAV. The shot then lasts as long as the narration plus ``PAUSE``.
- The clip: an image-to-video clip of the picture (``clips``), made only where ``video`` (what
  ``clips.video_choice`` found: a ``video`` engine with the ``i2v`` capability, its model installed
  and a GPU) is given; otherwise, as on every CPU-only machine, the shot keeps its Ken Burns pan or
  zoom (``motion``), chosen per shot. A new picture drops the old clip, so the clip follows it.

On a cluster (``ZISHU_QUEUE=redis://…``) the picture and the narration are made by ``image`` and
``speech`` sub-jobs routed by model (``subjobs``), since the app that runs the shot job may have
neither model; on a single machine they are made in-process, as before: no queue round trip, no
extra rows in the job list, and the same code the single-machine tests cover.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from typing import Any

from zishu.errors import JobCancelled, UsageError, ZishuError
from zishu.files import adjacent_tmp_file

from .clips import VideoChoice, make_clip
from .export import FPS
from .projects import MAX_DURATION, MIN_DURATION, Storyboards
from .records import ASPECTS, Project, Shot
from .subjobs import SubJobs

PAUSE = 0.6  # seconds of quiet after the narration, before the next shot's crossfade
PARTS = ("image", "narration", "clip")


def image_request(boards: Storyboards, project: Project, shot: Shot) -> dict[str, Any]:
    """The studio request that draws ``shot``."""
    from zishu.studio.characters import draw_request

    character = boards.character_of(project)
    if character is not None:
        request = draw_request(character, prompt=shot.prompt, style=project.style)
    else:
        request = {"prompt": shot.prompt, **({"style": project.style} if project.style else {})}
    from zishu import settings

    width, height = picture_size(project.aspect, settings.load().storyboard_picture_side)
    return {**request, "width": width, "height": height, "seed": project.seed}


def picture_size(aspect: str, side: int = 512) -> tuple[int, int]:
    """What is drawn for a frame of ``aspect``: ``side`` pixels on the short side, the long side to
    the aspect on a multiple of 8 (512 at 16:9 is 912×512); export then scales it to the video."""
    a, b = ASPECTS[aspect]
    long = round(side * max(a, b) / min(a, b) / 8) * 8
    return (long, side) if a > b else (side, long) if a < b else (side, side)


def narration_seconds(seconds: float) -> float:
    """A shot's duration for narration of ``seconds``: with the pause, on whole frames, in the limits."""
    frames = math.ceil((seconds + PAUSE) * FPS)
    return min(MAX_DURATION, max(MIN_DURATION, frames / FPS))


def voice_of(boards: Storyboards, project: Project) -> tuple[str | None, str | None]:
    """(engine, voice) that speak the project: its own, its character's, the Settings', espeak-ng."""
    from zishu import settings

    if project.voice:
        chosen = json.loads(project.voice)
        return chosen["engine"], chosen.get("voice")
    character = boards.character_of(project)
    if character is not None and character.spec.voice is not None:
        return character.spec.voice.engine, character.spec.voice.voice
    default = settings.load().companion_voice
    if default:
        return default.get("engine"), default.get("voice")
    return "espeak-ng", None


def speak(host: Any, boards: Storyboards, project: Project, shot: Shot,
          subjobs: SubJobs | None = None) -> tuple[str, float]:
    """The shot's narration as ``shot-<id>.wav`` in the project's folder: (file name, seconds). The
    voice is loaded as the companion loads a character's (``use(host, "tts", voice, engine=)``), or,
    on a cluster (``subjobs``) and for a catalog voice, spoken by a ``speech`` sub-job where it is."""
    from zishu.audio import write_wav
    from zishu.engines import use

    engine, voice = voice_of(boards, project)
    name = f"shot-{shot.id}.wav"
    folder = boards.folder(project)
    folder.mkdir(parents=True, exist_ok=True)
    if subjobs is not None:
        seconds = subjobs.speak(shot.narration, voice, folder / name, f"narrating shot {shot.position + 1}")
        if seconds is not None:
            return name, seconds
    tts = use(host, "tts", voice, engine=engine).handle
    _, seconds = write_wav(folder / name, tts.speak(shot.narration))
    return name, seconds


def draw(studio: Any, boards: Storyboards, project: Project, shot: Shot, *,
         progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None,
         job_id: int | None = None, subjobs: SubJobs | None = None) -> str:
    """The shot's picture, drawn by the studio and copied to ``shot-<id>.png``; its file name. On a
    cluster (``subjobs``) it is drawn by an ``image`` sub-job on a node that has the model."""
    name = f"shot-{shot.id}.png"
    folder = boards.folder(project)
    request = image_request(boards, project, shot)
    if subjobs is not None and subjobs.draw(studio, request, folder / name, f"drawing shot {shot.position + 1}"):
        return name
    result = studio.generate(request, job_id=job_id, progress=progress, cancelled=cancelled)
    row = result.images[0]
    if getattr(row, "blocked", False):
        raise UsageError(f"prompt: the picture of shot {shot.position + 1} was blocked by the safety check "
                         f"({row.blocked_reason}); change the prompt")
    folder.mkdir(parents=True, exist_ok=True)
    with open(studio.gallery.folder / row.file, "rb") as source, adjacent_tmp_file(folder / name) as target:
        shutil.copyfileobj(source, target)
    return name


def make_shot(boards: Storyboards, shot_id: int, *, host: Any = None, studio: Any = None,
              redo: tuple[str, ...] = (), job_id: int | None = None, video: VideoChoice | None = None,
              progress: Callable[[float, float, str], None] | None = None,
              cancelled: Callable[[], bool] | None = None, subjobs: SubJobs | None = None) -> Shot:
    """Make what shot ``shot_id`` lacks, or again what ``redo`` names ("image", "narration", "clip");
    ``video``: what makes its clip (``clips.video_choice``), None for the Ken Burns move alone;
    ``subjobs``: on a cluster, the picture and narration are made by sub-jobs (``subjobs``)."""
    unknown = set(redo) - set(PARTS)
    if unknown:
        raise UsageError(f"redo: {sorted(unknown)[0]!r} is not one of: {', '.join(PARTS)}")
    shot = boards.shot(shot_id)
    project = shot.project
    say = progress or (lambda done, total, message: None)
    parts = 3 if video is not None else 2
    boards.set_made(shot.id, status="RUNNING", error=None, job_id=job_id)
    try:
        if "narration" in redo or (shot.audio is None and shot.narration.strip()):
            say(0, parts, f"narrating shot {shot.position + 1}")
            if not shot.narration.strip():
                boards.set_made(shot.id, audio=None)
            else:
                name, seconds = speak(host, boards, project, shot, subjobs)
                shot = boards.set_made(shot.id, audio=name, duration=narration_seconds(seconds))
        if cancelled is not None and cancelled():
            raise JobCancelled("cancelled")
        if "image" in redo or shot.image is None:
            if studio is None:
                raise UsageError("image: this Zishu has no studio to draw the shot's picture")
            say(1, parts, f"drawing shot {shot.position + 1}")
            name = draw(studio, boards, project, shot, cancelled=cancelled, job_id=job_id, subjobs=subjobs)
            shot = boards.set_made(shot.id, image=name, clip=None)
        if video is not None and ("clip" in redo or shot.clip is None):
            if cancelled is not None and cancelled():
                raise JobCancelled("cancelled")
            say(2, parts, f"animating shot {shot.position + 1}")
            picture = boards.file(project.id, shot.image)
            name = make_clip(boards.host if host is None else host, boards.folder(project), shot.id, picture, video,
                             seed=project.seed, cancelled=cancelled)
            shot = boards.set_made(shot.id, clip=name)
        say(parts, parts, f"shot {shot.position + 1} is ready")
        return boards.set_made(shot.id, status="SUCCESS", error=None)
    except JobCancelled:
        boards.set_made(shot.id, status="PENDING")
        raise
    except ZishuError as e:
        boards.set_made(shot.id, status="FAILED", error=str(e))
        raise
    except Exception as e:
        boards.set_made(shot.id, status="FAILED", error=f"{type(e).__name__}: {e}")
        raise
