"""Crash safety of the storyboard (issue 16, item 6): a real ``zishu worker`` process is killed with
SIGKILL while it makes a storyboard's shots and while it exports the MP4; a new worker started on
the same ZISHU_HOME finds the cut-off jobs and carries them on. Finished shots, and the finished
parts of the shot that was cut off, are not made again (their files keep their mtime, the gallery
holds one picture per shot); no file at a final path is ever half written, and the killed
worker's ffmpeg does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from conftest import install_resource
from tiny_diffusers import write_tiny_sd
from zishu import settings
from zishu.storyboard.export import CROSSFADE
from zishu.storyboard.media import probe

# the states a job ends in here; not INTERRUPTED, which the restarted worker's recovery passes through
# on its way from RUNNING back to PENDING (waiting for "not PENDING or RUNNING" could stop right there)
ENDED = ("SUCCESS", "FAILED", "CANCELLED")
SHOTS = [{"prompt": "a lost kitten in the rain", "narration": "A kitten is lost in the rain."},
         {"prompt": "a friendly dog under a tree", "narration": "It meets a friendly dog."},
         {"prompt": "a warm house at night", "narration": "They walk home together."}]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("crash-models") / "sd")


def parts(folder: Path) -> dict[str, Path]:
    """A diffusers folder's files and component folders, as an installed version holds them."""
    return {p.name: p for p in folder.iterdir()}


def start_worker(home: Path, log: Path) -> subprocess.Popen:
    """``zishu worker`` on ``home``'s own SQLite queue, one job at a time."""
    env = {**os.environ, "ZISHU_HOME": str(home)}
    env.pop("ZISHU_QUEUE", None)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "zishu.cli", "worker", "--workers", "1", "--verbose"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # Ctrl+C: it stops after the running job
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def until(condition, what: str, proc: subprocess.Popen, log: Path, seconds: float = 180):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert proc.poll() is None, f"the worker ended ({proc.returncode}) while waiting for {what}:\n" \
                                    f"{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"no {what} after {seconds} s:\n{log.read_text(errors='replace')}"
        time.sleep(0.01)
    return found


def test_a_worker_killed_while_it_makes_the_shots_is_carried_on_shot_by_shot(runtime, tiny_sd, tmp_path):
    install_resource(runtime.home, "acme/tiny-sd", {"format": "diffusers", "role": "image"}, files=parts(tiny_sd))
    settings.change({"storyboard_picture_side": 64})  # the size the tiny model draws at (the worker reads it too)
    boards, jobs = runtime.storyboards, runtime.jobs
    project = boards.create({"story": "A kitten is lost. It meets a dog. They walk home.", "aspect": "1:1"})
    shots = boards.replace_shots(project.id, SHOTS)
    from zishu.storyboard.render import submit_shots

    job_ids = submit_shots(jobs, boards, project.id)  # queued in queue.db; this process runs none of them
    first, second, third = (s.id for s in shots)
    log = tmp_path / "worker.log"
    worker = start_worker(runtime.home, log)
    try:
        # Kill it when the first shot is finished and the second is narrated but not yet drawn.
        until(lambda: boards.shot(first).status == "SUCCESS" and boards.shot(second).audio is not None,
              "the second shot's narration", worker, log)
        worker.kill()  # SIGKILL: no chance to tidy up
        worker.wait()
    finally:
        stop_worker(worker)
    cut = boards.shot(second)
    assert cut.status == "RUNNING" and cut.image is None, "the kill came too late to cut the second shot off"
    assert jobs.get(job_ids[1]).status == "RUNNING" and jobs.get(job_ids[2]).status == "PENDING"
    folder = boards.folder(project.id)
    assert not (folder / f"shot-{second}.png").exists()  # nothing half drawn at a final name
    kept = {name: (folder / name).stat().st_mtime_ns for name in
            (f"shot-{first}.png", f"shot-{first}.wav", f"shot-{second}.wav")}
    assert runtime.studio.gallery.search()[1] in (1, 2)  # the second picture, if drawn, is in the gallery only

    again = start_worker(runtime.home, log)
    try:
        until(lambda: all(jobs.get(j).status in ENDED for j in job_ids), "all shot jobs",
              again, log)
    finally:
        stop_worker(again)
    said = log.read_text(errors="replace")
    # The new worker found the cut-off job, recorded it INTERRUPTED and took it up again.
    assert f"interrupted [{job_ids[1]}], queued again [{job_ids[1]}]" in said
    done = [jobs.get(j) for j in job_ids]
    assert [j.status for j in done] == ["SUCCESS"] * 3, [(j.status, j.error) for j in done]
    assert [j.attempts for j in done] == [1, 2, 1]  # only the cut-off shot ran twice
    assert [s.status for s in boards.shots(project.id)] == ["SUCCESS"] * 3
    assert {name: (folder / name).stat().st_mtime_ns for name in kept} == kept  # finished parts not redone
    assert runtime.studio.gallery.search()[1] == 3  # one picture per shot: the first was not drawn again
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        [f"shot-{s}.png" for s in (first, second, third)] + [f"shot-{s}.wav" for s in (first, second, third)])


def test_a_worker_killed_while_it_exports_leaves_no_mp4_and_the_export_is_done_at_the_next_start(runtime,
                                                                                                tmp_path):
    boards, jobs = runtime.storyboards, runtime.jobs
    project = boards.create({"story": "Three long, quiet pictures.", "title": "Quiet pictures"})
    shots = boards.replace_shots(project.id, [{"prompt": f"picture {n}", "narration": "", "duration": 8.0}
                                              for n in range(3)])
    folder = boards.folder(project.id)
    for n, shot in enumerate(shots):
        Image.new("RGB", (912, 512), (60 * n, 120, 200 - 60 * n)).save(folder / f"shot-{shot.id}.png")
        boards.set_made(shot.id, image=f"shot-{shot.id}.png", status="SUCCESS")
    job = jobs.submit("storyboard-export", {"project": project.id})
    log = tmp_path / "worker.log"
    worker = start_worker(runtime.home, log)
    export = folder / "export"
    try:
        until(lambda: (jobs.get(job.id).done or 0) >= 1.0, "export progress", worker, log)
        encoders = [p for p in psutil.Process(worker.pid).children(recursive=True) if p.name() == "ffmpeg"]
        assert len(encoders) == 1 and list(export.glob(".*.partial"))
        worker.kill()
        worker.wait()
    finally:
        stop_worker(worker)
    _, alive = psutil.wait_procs(encoders, timeout=10)
    assert not alive, "ffmpeg outlived the worker that started it"
    assert not list(export.glob("*.mp4")) and not list(export.glob("*.srt"))  # nothing looks finished
    assert jobs.get(job.id).status == "RUNNING" and boards.get(project.id).export is None

    again = start_worker(runtime.home, log)
    try:
        until(lambda: jobs.get(job.id).status in ENDED, "the export", again, log, 300)
    finally:
        stop_worker(again)
    assert f"interrupted [{job.id}], queued again [{job.id}]" in log.read_text(errors="replace")
    done = jobs.get(job.id)
    assert done.status == "SUCCESS" and done.attempts == 2, done.error
    (mp4,) = export.glob("*.mp4")
    assert mp4.name == "Quiet-pictures.mp4" and mp4.with_suffix(".srt").is_file()
    assert not list(export.glob(".*"))  # the killed run's partial file was cleared away
    found = probe(mp4)
    assert abs(float(found["format"]["duration"]) - (3 * 8.0 - 2 * CROSSFADE)) <= 0.050
    assert sorted(s["codec_name"] for s in found["streams"]) == ["aac", "h264"]


def test_only_partial_files_whose_process_is_gone_are_cleared(tmp_path):
    from zishu.storyboard.export import partial_path, remove_stale_partials

    out = tmp_path / "export" / "A [draft].mp4"
    out.parent.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out.with_name(f".{out.name}.{dead.pid}.partial")
    live = partial_path(out)  # this very process's: an export in progress
    other = out.with_name(".B.mp4.1.partial")  # another file's
    for path in (stale, live, other):
        path.write_bytes(b"\0" * 16)
    assert live.name == f".A [draft].mp4.{os.getpid()}.partial"
    assert remove_stale_partials(out) == [stale]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([live.name, other.name])
