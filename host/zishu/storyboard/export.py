"""The MP4: a project's shots joined by Debian's ffmpeg CLI in one run.

Why the CLI and not PyAV: every piece this needs is an ffmpeg *filter* (``crop`` and ``zoompan`` for
the Ken Burns move, ``motion.still_filters``; ``xfade``/``acrossfade`` for crossfades, ``subtitles``
through libass for burned-in CJK text, ``sidechaincompress`` for ducking the music). The CLI's
``-filter_complex`` runs them in ffmpeg's own threads, at the encoder's speed, with no frames
crossing into Python; PyAV would have us decode, filter and encode frame by frame from Python (its
filter graph API is thinner and its wheels bring their own ffmpeg without the distribution's libass
and fonts). The CLI also gives progress
(``-progress pipe:1``) and a clean cancel (end the process) for free.

The timeline, in frames at ``FPS`` so that every length is exact: shot *i* lasts ``d_i`` (its
duration rounded to whole frames); consecutive shots overlap by the crossfade ``X`` (0.5 s). So
the video lasts ``sum(d_i) - (n - 1) * X``: "the sum of the shots" minus the overlaps, which is
what ``timeline`` returns and what the ffprobe test checks to within 50 ms. Shot *i* starts at
``sum(d_j - X for j < i)``; its subtitle shows from there until the next shot starts (the last one
to the end).

The file is written as a hidden temporary file beside the target (``.NAME.mp4.<pid>.partial``) and
renamed into place only when ffmpeg has finished, so a cancelled or crashed export never leaves a
file that looks complete. The SRT is written beside the MP4 (same name, ``.srt``), atomically.

A crash (kill -9 of the app or worker) must not leave ffmpeg running on: on Linux it is started
under ``setpriv --pdeathsig KILL`` (util-linux), so the kernel ends it with the process that
started it. The partial file carries the pid of the process that writes it, so an export run
again after a crash never shares a file with an encoder that might still be ending, and the next
export of the same file removes partial files whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zishu.errors import EngineError, JobCancelled, UsageError
from zishu.files import write_atomic

from .media import tool
from .motion import still_filters
from .records import ASPECTS, RESOLUTIONS

FPS = 30
CROSSFADE = 0.5  # seconds two shots overlap
SAMPLE_RATE = 44100
MUSIC_VOLUME = 0.3
SUBTITLE_FONT = "Noto Sans CJK SC"  # Debian's fonts-noto-cjk: Chinese, Japanese, Korean and Latin


@dataclass(frozen=True)
class ShotMedia:
    """What one shot brings to the video."""

    image: Path
    duration: float  # seconds
    audio: Path | None = None
    subtitle: str = ""
    move: str = "zoom-in"
    clip: Path | None = None  # an image-to-video clip, used instead of the move when present


@dataclass(frozen=True)
class ExportSettings:
    aspect: str = "16:9"
    resolution: str = "720p"
    burn_subtitles: bool = False
    music: Path | None = None
    crossfade: float = CROSSFADE
    fps: int = FPS
    preset: str = "veryfast"  # x264's speed/size trade; the file is H.264 High either way


@dataclass
class Exported:
    path: Path
    subtitles: Path
    duration: float  # seconds, as the timeline says
    width: int
    height: int
    command: list[str] = field(default_factory=list)
    encode_seconds: float = 0.0  # how long ffmpeg ran (the benchmark's "time inside ffmpeg")


def frame_size(aspect: str, resolution: str) -> tuple[int, int]:
    """Width and height: the resolution is the short side (720p at 16:9 is 1280×720, at 9:16 720×1280)."""
    if aspect not in ASPECTS:
        raise UsageError(f"aspect: must be one of {', '.join(ASPECTS)}, got {aspect!r}")
    if resolution not in RESOLUTIONS:
        raise UsageError(f"resolution: must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
    a, b = ASPECTS[aspect]
    short = RESOLUTIONS[resolution]
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    return (long, short) if a > b else (short, long) if a < b else (short, short)


def shot_frames(seconds: float, fps: int = FPS) -> int:
    return max(1, round(seconds * fps))


def timeline(durations: list[float], crossfade: float = CROSSFADE, fps: int = FPS) -> tuple[list[float], float]:
    """(start of each shot, total length) in seconds, on whole frames; see the module docstring."""
    frames = [shot_frames(d, fps) for d in durations]
    overlap = shot_frames(crossfade, fps) if len(frames) > 1 else 0
    starts, at = [], 0
    for f in frames:
        starts.append(at / fps)
        at += f - overlap
    total = (sum(frames) - overlap * (len(frames) - 1)) / fps
    return starts, total


def srt(shots: list[ShotMedia], crossfade: float = CROSSFADE, fps: int = FPS) -> str:
    """The subtitles, one cue per shot with text, on the video's timeline."""
    starts, total = timeline([s.duration for s in shots], crossfade, fps)
    cues: list[str] = []
    for i, shot in enumerate(shots):
        text = " ".join(shot.subtitle.split())
        if not text:
            continue
        end = starts[i + 1] if i + 1 < len(shots) else total
        cues.append(f"{len(cues) + 1}\n{_srt_time(starts[i])} --> {_srt_time(end)}\n{text}\n")
    return "\n".join(cues)


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def command(shots: list[ShotMedia], out: Path, settings: ExportSettings, subtitles: Path | None) -> list[str]:
    """The ffmpeg command that writes ``out`` (MP4 whatever its name says)."""
    if not shots:
        raise UsageError("shots: a storyboard needs at least one shot to export")
    width, height = frame_size(settings.aspect, settings.resolution)
    fps = settings.fps
    frames = [shot_frames(s.duration, fps) for s in shots]
    overlap = shot_frames(settings.crossfade, fps) if len(shots) > 1 else 0
    if len(shots) > 1 and min(frames) <= 2 * overlap:
        raise UsageError(f"duration: every shot must last more than {2 * overlap / fps:g} seconds "
                         f"(the crossfades at both ends)")
    args = [tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1",
            "-nostats"]
    graph: list[str] = []
    inputs = 0
    for i, shot in enumerate(shots):
        seconds = frames[i] / fps
        if shot.clip is not None:
            args += ["-i", str(shot.clip)]
            graph.append(f"[{inputs}:v]scale={width}:{height}:force_original_aspect_ratio=increase,"
                         f"crop={width}:{height},setsar=1,fps={fps},tpad=stop_mode=clone:stop_duration={seconds},"
                         f"trim=end_frame={frames[i]},setpts=N/({fps}*TB),format=yuv420p[v{i}]")
        else:
            args += ["-i", str(shot.image)]
            graph.append(f"[{inputs}:v]{still_filters(shot.move, frames[i], width, height, fps)},"
                         f"format=yuv420p,settb=1/{fps}[v{i}]")
        inputs += 1
        if shot.audio is not None:
            args += ["-i", str(shot.audio)]
            samples = round(seconds * SAMPLE_RATE)
            graph.append(f"[{inputs}:a]aformat=sample_rates={SAMPLE_RATE}:channel_layouts=stereo,"
                         f"apad=whole_len={samples},atrim=end_sample={samples},asetpts=N/SR/TB[a{i}]")
            inputs += 1
        else:
            graph.append(f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end_sample={round(seconds * SAMPLE_RATE)}[a{i}]")
    video, audio = "v0", "a0"
    length = frames[0]
    for i in range(1, len(shots)):
        offset = (length - overlap) / fps
        graph.append(f"[{video}][v{i}]xfade=transition=fade:duration={overlap / fps}:offset={offset}[x{i}]")
        graph.append(f"[{audio}][a{i}]acrossfade=d={overlap / fps}:c1=tri:c2=tri[y{i}]")
        video, audio = f"x{i}", f"y{i}"
        length += frames[i] - overlap
    total = length / fps
    if subtitles is not None:
        style = f"FontName={SUBTITLE_FONT},FontSize={max(14, height // 36)},Outline=2,MarginV={height // 24}"
        graph.append(f"[{video}]subtitles=filename='{_filter_path(subtitles)}':force_style='{style}'[vs]")
        video = "vs"
    if settings.music is not None:
        args += ["-stream_loop", "-1", "-i", str(settings.music)]
        graph.append(f"[{inputs}:a]aformat=sample_rates={SAMPLE_RATE}:channel_layouts=stereo,"
                     f"atrim=end_sample={round(total * SAMPLE_RATE)},volume={MUSIC_VOLUME}[music]")
        graph.append(f"[{audio}]asplit=2[voice][key]")
        graph.append("[music][key]sidechaincompress=threshold=0.02:ratio=12:attack=20:release=400[ducked]")
        graph.append("[voice][ducked]amix=inputs=2:duration=first:normalize=0[mixed]")
        audio = "mixed"
        inputs += 1
    # bilinear for the scaling each zoom does per frame: a slow zoom shows no difference, and it is
    # the one filter whose cost grows with the video's length besides the encoder
    # the graph's slice-threaded filters (scale, crop, xfade, format) on every core, not only the main thread
    args += ["-filter_complex_threads", str(os.cpu_count() or 1),
             "-filter_complex", "sws_flags=bilinear;" + ";".join(graph),
             "-map", f"[{video}]", "-map", f"[{audio}]",
             "-c:v", "libx264", "-preset", settings.preset, "-crf", "20", "-pix_fmt", "yuv420p",
             "-r", str(fps), "-c:a", "aac", "-b:a", "160k", "-ar", str(SAMPLE_RATE),
             "-movflags", "+faststart", "-f", "mp4", str(out)]
    return args


def _even(value: float) -> int:
    return round(value / 2) * 2


def _filter_path(path: Path) -> str:
    """``path`` quoted for a filter option inside single quotes (libavfilter's escaping)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "'\\\\\\''")


def export_video(shots: list[ShotMedia], out: Path, settings: ExportSettings | None = None, *,
                 progress: Callable[[float, float], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Exported:
    """Write ``out`` (and ``out.srt``): ``progress(seconds done, seconds in all)`` as ffmpeg reports
    it; once ``cancelled()`` is true ffmpeg is stopped, its temporary file removed, and JobCancelled
    raised. Nothing is at ``out`` until the whole file is written."""
    settings = settings or ExportSettings()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    width, height = frame_size(settings.aspect, settings.resolution)
    _, total = timeline([s.duration for s in shots], settings.crossfade, settings.fps)
    text = srt(shots, settings.crossfade, settings.fps)
    subtitles = out.with_suffix(".srt")
    with tempfile.TemporaryDirectory(prefix="zishu-export-") as work:
        burned = None
        if settings.burn_subtitles and text:
            burned = Path(work) / "subtitles.srt"  # a plain path: no quoting surprises inside the filter
            burned.write_text(text, encoding="utf-8")
        remove_stale_partials(out)
        partial = partial_path(out)
        args = command(shots, partial, settings, burned)
        began = time.monotonic()
        try:
            _run(args, total, progress, cancelled, Path(work) / "ffmpeg.log")
            seconds = time.monotonic() - began
            os.replace(partial, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    write_atomic(subtitles, text)
    return Exported(out, subtitles, total, width, height, args, seconds)


def partial_path(out: Path) -> Path:
    """Where this process's ffmpeg writes ``out`` until it is complete: hidden, named for the pid."""
    return out.with_name(f".{out.name}.{os.getpid()}.partial")


def remove_stale_partials(out: Path) -> list[Path]:
    """Remove the partial files of ``out`` whose writing process is gone (a crashed export's)."""
    import glob

    import psutil

    removed = []
    for found in out.parent.glob(f".{glob.escape(out.name)}.*.partial"):
        pid = found.name[len(out.name) + 2:-len(".partial")]
        if pid.isdigit() and psutil.pid_exists(int(pid)):
            continue  # a live process is writing it
        with contextlib.suppress(FileNotFoundError):
            found.unlink()
            removed.append(found)
    return removed


def dies_with_parent(args: list[str]) -> list[str]:
    """``args`` run so that the kernel kills the program when the process that started it dies
    (Linux: util-linux's ``setpriv --pdeathsig KILL``, which then execs it); elsewhere unchanged."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "KILL", "--", *args] if setpriv else args


def _run(args: list[str], total: float, progress: Callable[[float, float], None] | None,
         cancelled: Callable[[], bool] | None, log: Path) -> None:
    with open(log, "w+b") as errors:
        process = subprocess.Popen(dies_with_parent(args), stdout=subprocess.PIPE, stderr=errors,
                                   stdin=subprocess.DEVNULL)
        stop = threading.Event()
        watcher = None
        if cancelled is not None:
            def watch() -> None:  # a cancel ends ffmpeg even while it prints nothing
                while not stop.wait(0.2):
                    if cancelled():
                        process.terminate()
                        return
            watcher = threading.Thread(target=watch, name="export-cancel", daemon=True)
            watcher.start()
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                if key == "out_time_us" and progress is not None and value.lstrip("-").isdigit():
                    progress(min(total, max(0, int(value)) / 1e6), total)
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            stop.set()
            if watcher is not None:
                watcher.join()
        if cancelled is not None and cancelled():
            raise JobCancelled("export cancelled; ffmpeg was stopped and its partial file removed")
        if code != 0:
            errors.seek(0)
            said = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise EngineError(f"ffmpeg failed (exit {code}): {said[-1] if said else 'no message'}")
    if progress is not None:
        progress(total, total)
