"""Storyboard figures (issue 16, item 8) with tiny models on the CPU.

    python bench/storyboard.py [--shots 6] [--rounds 1] [--skip-export-bench]

1. **Host overhead.** ``--shots`` shots (written by hand, as the user may) are made end to end as
   the app makes them: each shot's ``storyboard-shot`` job (the in-app queue, one worker thread)
   draws its picture through the studio with the tiny SD pipeline and narrates it with espeak-ng,
   then the ``storyboard-export`` job encodes a 720p MP4. (The LLM writer is left out: a random
   GGUF under the grammar writes noise of any length up to its limits, which says nothing of the
   host; ``tests/test_storyboard_jobs.py`` covers it.) The
   engines are wrapped in a timer (every call on what an engine's ``load`` returned, the load
   itself, and each step of a streamed reply), and the export reports how long ffmpeg ran, so
   *host overhead = wall time - time inside model calls - time inside ffmpeg*. Target: ≤ 5 % of
   the wall time.
2. **Export against ffmpeg alone.** The same shots set to last 60 s in all (720p, crossfades, Ken
   Burns moves, narration) are exported; then ffmpeg alone encodes the exported frames and audio
   with the same encoder settings (libx264 veryfast CRF 20, AAC 160 kb/s, faststart), two ways:
   from a raw file (the frames and PCM decoded once; reading 2.5 GB costs time of its own), and
   from the exported MP4 less the time decoding it takes. The faster of the two is the baseline.
   Target: export ≤ 1.2 × ffmpeg alone.

Torch runs one math thread unless OMP_NUM_THREADS says otherwise (on a shared machine more threads
only fight over the cores; see tests/conftest.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]

STORY = ("A small fox finds a lantern in the snow. It carries the lantern through the dark forest. "
         "An owl asks where it is going. The fox says it is going home. At home its family is waiting. "
         "They hang the lantern by the door.")
SHOTS = [("a small fox finds a lantern in the snow", "A small fox finds a lantern in the snow."),
         ("a fox carrying a lantern through a dark forest", "It carries the lantern through the dark forest."),
         ("an owl on a branch looking down at a fox", "An owl asks where it is going."),
         ("a fox looking up at an owl, lantern light", "The fox says it is going home."),
         ("a warm den with a fox family waiting", "At home its family is waiting."),
         ("a lantern hanging by a wooden door at night", "They hang the lantern by the door.")]
SIXTY = 60.0  # seconds of video in the export benchmark


class Clock:
    """Seconds spent inside model calls, and how many calls of each kind."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls: dict[str, int] = {}

    def timed(self, name: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        started = time.perf_counter()
        try:
            result = call(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
        if isinstance(result, Iterator):
            return self._steps(result)
        return result

    def _steps(self, stream: Iterator) -> Iterator:
        """A streamed reply: the time of each step is the model's, the time between steps the host's."""
        while True:
            started = time.perf_counter()
            try:
                item = next(stream)
            except StopIteration as end:
                self.seconds += time.perf_counter() - started
                return end.value
            self.seconds += time.perf_counter() - started
            yield item


class TimedHandle:
    """What an engine loaded, every method call timed by ``clock``."""

    def __init__(self, inner: Any, clock: Clock, engine: str) -> None:
        self._inner, self._clock, self._engine = inner, clock, engine

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if not callable(found):
            return found
        return lambda *args, **kwargs: self._clock.timed(f"{self._engine}.{name}", found, *args, **kwargs)


class TimedEngine:
    """An engine whose ``load`` (and what it loads) is timed; everything else is the engine's own."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self._inner, self._clock = inner, clock
        self.info = inner.info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def load(self, model: Any, device: str = "cpu") -> Any:
        loaded = self._clock.timed(f"{self.info.name}.load", self._inner.load, model, device)
        return TimedHandle(loaded, self._clock, self.info.name)

    def unload(self, loaded: Any) -> None:
        unload = getattr(self._inner, "unload", None)
        if callable(unload):
            unload(loaded._inner if isinstance(loaded, TimedHandle) else loaded)


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far (the ffmpeg runs)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def wait(runtime: Any, job_id: int, seconds: float = 1800) -> dict:
    deadline = time.monotonic() + seconds
    while (job := runtime.jobs.get(job_id).as_dict())["status"] in ("PENDING", "RUNNING"):
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} did not finish: {job}")
        time.sleep(0.005)
    if job["status"] != "SUCCESS":
        raise SystemExit(f"job {job_id} {job['status']}: {job['error']}")
    return job


def split(name: str, wall: float, model: float, ffmpeg: float) -> float:
    """Print one phase's wall time split into model calls, ffmpeg and the host; the host's share."""
    host = wall - model - ffmpeg
    print(f"   {name:<28}{wall:8.2f} s wall = {model:7.2f} s models + {ffmpeg:6.2f} s ffmpeg + "
          f"{host:6.2f} s host ({100 * host / wall:5.2f} %)")
    return host / wall


def overhead(runtime: Any, count: int) -> int:
    """Part 1; returns the project's id."""
    from zishu.storyboard.render import submit_shots

    clock = Clock()
    for name in list(runtime.engines.engines):
        runtime.engines.engines[name] = TimedEngine(runtime.engines.engines[name], clock)
    boards = runtime.storyboards
    runtime.jobs.start_consumer(1)
    started = time.perf_counter()
    project = boards.create({"story": STORY, "title": "Fox and lantern", "aspect": "16:9", "resolution": "720p"})
    boards.replace_shots(project.id, [{"prompt": SHOTS[n % len(SHOTS)][0], "narration": SHOTS[n % len(SHOTS)][1]}
                                      for n in range(count)])
    for job_id in submit_shots(runtime.jobs, boards, project.id):
        wait(runtime, job_id)
    rendered, render_model = time.perf_counter(), clock.seconds
    export = wait(runtime, runtime.jobs.submit("storyboard-export", {"project": project.id}).id)
    ended = time.perf_counter()
    result = export["result"]
    ffmpeg = result["encode_seconds"]
    print(f"\n1. {count} shots end to end: {count} shot jobs, then the export job "
          f"({result['duration']:.1f} s at {result['width']}x{result['height']})")
    print("   model calls: " + ", ".join(f"{name} ×{n}" for name, n in sorted(clock.calls.items())))
    split(f"{count} shot jobs", rendered - started, render_model, 0.0)
    split("export job", ended - rendered, clock.seconds - render_model, ffmpeg)
    share = split("all", ended - started, clock.seconds, ffmpeg)
    verdict = "met" if share <= 0.05 else "MISSED"
    print(f"   host overhead {100 * share:.2f} % of the wall time; target ≤ 5 %: {verdict}")
    runtime.jobs.stop_consumer()
    return project.id


def export_against_ffmpeg(runtime: Any, project_id: int, rounds: int, work: Path) -> None:
    """Part 2."""
    from zishu.storyboard.export import CROSSFADE, FPS, ExportSettings, shot_frames
    from zishu.storyboard.media import probe
    from zishu.storyboard.render import export_project

    boards = runtime.storyboards
    shots = boards.shots(project_id)
    n = len(shots)
    frames = shot_frames((SIXTY + (n - 1) * CROSSFADE) / n)
    for shot in shots:
        boards.edit_shot(shot.id, {"duration": frames / FPS})
    ours, encodes, ours_cpu = [], [], []
    for _ in range(rounds):
        started, cpu = time.perf_counter(), children_cpu()
        made = export_project(boards, project_id, out=work / "export.mp4")
        ours.append(time.perf_counter() - started)
        ours_cpu.append(children_cpu() - cpu)
        encodes.append(made["encode_seconds"])
    exported = work / "export.mp4"
    found = probe(exported)
    video = next(s for s in found["streams"] if s["codec_type"] == "video")
    settings = ExportSettings()
    encode = ["-c:v", "libx264", "-preset", settings.preset, "-crf", "20", "-pix_fmt", "yuv420p", "-r", str(FPS),
              "-c:a", "aac", "-b:a", "160k", "-ar", "44100", "-movflags", "+faststart", "-f", "mp4"]
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]

    cpu_of: dict[str, list[float]] = {"raw": [], "mp4": [], "decode": []}

    def timed(args: list[str], name: str) -> float:
        started, cpu = time.perf_counter(), children_cpu()
        subprocess.run(args, check=True)
        cpu_of[name].append(children_cpu() - cpu)
        return time.perf_counter() - started

    raw = work / "frames-and-audio.nut"  # the exported frames and sound, decoded once: nothing left to filter
    subprocess.run([*quiet, "-i", str(exported), "-c:v", "rawvideo", "-c:a", "pcm_s16le", str(raw)], check=True)
    from_raw, from_mp4, decode = [], [], []
    for _ in range(rounds):
        from_raw.append(timed([*quiet, "-i", str(raw), *encode, str(work / "alone.mp4")], "raw"))
        from_mp4.append(timed([*quiet, "-i", str(exported), *encode, str(work / "alone.mp4")], "mp4"))
        decode.append(timed([*quiet, "-i", str(exported), "-f", "null", "-"], "decode"))
    raw_size = raw.stat().st_size
    raw.unlink()
    median = statistics.median
    alone = min(median(from_raw), median(from_mp4) - median(decode))  # the stricter of the two
    ratio = median(ours) / alone
    print(f"\n2. export of {float(found['format']['duration']):.2f} s at {video['width']}x{video['height']} "
          f"({n} shots, crossfades, Ken Burns, narration), median of {rounds}")
    print(f"   zishu export (whole call)  {median(ours):8.2f} s   (ffmpeg ran {median(encodes):.2f} s)")
    print(f"   ffmpeg alone, raw frames   {median(from_raw):8.2f} s   (the frames and PCM decoded to a "
          f"{raw_size / 2**30:.1f} GiB file, same encoder settings)")
    print(f"   ffmpeg alone, from the MP4 {median(from_mp4):8.2f} s   (decoding it takes {median(decode):.2f} s "
          f"of that: {median(from_mp4) - median(decode):.2f} s encoding)")
    print(f"   ratio                      {ratio:8.2f} ×  against the faster baseline, {alone:.2f} s "
          f"(target ≤ 1.2 ×: {'met' if ratio <= 1.2 else 'MISSED'})")
    alone_cpu = min(median(cpu_of["raw"]), median(cpu_of["mp4"]) - median(cpu_of["decode"]))
    print(f"   CPU time (less sensitive to other load on the machine): export {median(ours_cpu):.2f} s, "
          f"ffmpeg alone {alone_cpu:.2f} s: {median(ours_cpu) / alone_cpu:.2f} ×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each encode in part 2 (median)")
    parser.add_argument("--skip-export-bench", action="store_true")
    args = parser.parse_args()
    if not shutil.which("ffmpeg") or not shutil.which("espeak-ng"):
        raise SystemExit("needs Debian's ffmpeg and espeak-ng (make setup installs them)")

    from conftest import install_resource
    from tiny_diffusers import write_tiny_sd

    with tempfile.TemporaryDirectory(prefix="zishu-bench-storyboard-") as tmp:
        work = Path(tmp)
        home = work / "home"
        os.environ["ZISHU_HOME"] = str(home)
        os.environ.pop("ZISHU_QUEUE", None)
        sd = write_tiny_sd(work / "sd")
        install_resource(home, "bench/tiny-sd", {"format": "diffusers", "role": "image"},
                         files={p.name: p for p in sd.iterdir()})

        from zishu import settings
        from zishu.runtime import Runtime

        runtime = Runtime(home)
        settings.change({"storyboard_picture_side": 64})  # the size the tiny pipeline draws at
        print(f"tiny models: SD (UNet 32/64 channels) drawn at 64 px, espeak-ng narration; "
              f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        project_id = overhead(runtime, args.shots)
        if not args.skip_export_bench:
            export_against_ffmpeg(runtime, project_id, args.rounds, work)
        print(json.dumps({"load_average_after": round(os.getloadavg()[0], 1)}))
        runtime.models.unload()
        runtime.close()


if __name__ == "__main__":
    main()
