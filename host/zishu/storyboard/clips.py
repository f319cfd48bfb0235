"""A shot's image-to-video clip, when this machine can make one; otherwise the shot keeps its Ken
Burns move (``motion``), chosen per shot.

``video_choice(host)`` says whether clips are made here and with what: an engine of kind ``video``
with the ``i2v`` capability that can run (diffusers' Stable Video Diffusion, ``zishu_diffusers``), an
installed model it takes (a catalog model of role ``video``), and a GPU that engine can use. A CPU
alone never makes clips: a real SVD model needs many minutes a clip there. ``make_clip`` animates
the shot's picture (at the picture's size, with the project's seed) and writes the frames as
``shot-<id>.mp4`` in the project's folder through ffmpeg, to a hidden partial file renamed into
place when complete. The export then plays the clip instead of the move, its last frame held to
the shot's end.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zishu.errors import EngineError

from .media import tool

CLIP_FRAMES = 14  # what Stable Video Diffusion (img2vid) makes in one go
CLIP_FPS = 7
CLIP_STEPS = 25


@dataclass(frozen=True)
class VideoChoice:
    """What makes clips here: the engine's name, the model (catalog id@version or a path) and the device."""

    engine: str
    model: str
    device: str
    frames: int = CLIP_FRAMES
    fps: int = CLIP_FPS
    steps: int = CLIP_STEPS


def video_choice(host: Any) -> VideoChoice | None:
    """The engine, model and GPU that make clips here; None when any is missing (then Ken Burns)."""
    from zishu.engines.use import pick_device
    from zishu.resources.engine_models import installed_models

    if host is None:
        return None
    for engine in host.engines.of_kind("video"):
        if "i2v" not in engine.info.capabilities:
            continue
        unavailable = getattr(engine, "unavailable", None)
        if callable(unavailable) and unavailable():
            continue
        models = installed_models(host.registry, engine)
        if not models:
            continue
        device = pick_device(engine)
        if device == "cpu":
            return None  # no GPU this engine can use
        return VideoChoice(engine.info.name, models[0], device)
    return None


def make_clip(host: Any, folder: Any, shot_id: int, picture: Any, choice: VideoChoice, *, seed: int,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> str:
    """Animate ``picture`` (a path) into ``folder/shot-<shot_id>.mp4``; returns the file's name."""
    from PIL import Image

    from zishu.engines import VideoRequest, use

    animator = use(host, "video", choice.model, engine=choice.engine, device=choice.device).handle
    with Image.open(picture) as opened:
        first = opened.convert("RGB")
    width, height = first.size
    frames = animator.animate(VideoRequest(image=first, width=width, height=height, frames=choice.frames,
                                           fps=choice.fps, steps=choice.steps, seed=seed),
                              progress=progress, cancelled=cancelled)
    if not frames:
        raise EngineError(f"the {choice.engine} engine made no frames for shot {shot_id}")
    name = f"shot-{shot_id}.mp4"
    write_clip(frames, folder / name, choice.fps)
    return name


def write_clip(frames: list, out: Any, fps: int) -> None:
    """``frames`` (PIL images, all of the first one's size) as an H.264 MP4 at ``out``, written to a
    hidden partial file first and renamed into place only when ffmpeg has finished."""
    width, height = frames[0].size
    width, height = width - width % 2, height - height % 2  # yuv420p needs even sides
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0", "-c:v", "libx264",
         "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4",
         str(partial)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # ffmpeg stopped early: its message says why
            for frame in frames:
                process.stdin.write(frame.convert("RGB").crop((0, 0, width, height)).tobytes())
        _, said = process.communicate()
        if process.returncode != 0:
            lines = said.decode("utf-8", "replace").strip().splitlines()
            raise EngineError(f"ffmpeg could not write the clip (exit {process.returncode}): "
                              f"{lines[-1] if lines else 'no message'}")
        os.replace(partial, out)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
