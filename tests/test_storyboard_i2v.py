"""Image to video (issue 16, item 3): the ``diffusers-svd`` engine (kind ``video``, capability
``i2v``) animates a picture with a tiny random Stable Video Diffusion pipeline built with diffusers'
own classes (``tiny_svd``) on the CPU; a shot given that engine gets a clip (an H.264 MP4 written
through a partial file) which the export plays instead of the Ken Burns move. Without a GPU (this
machine) ``video_choice`` finds none even with the model installed, and shots keep their move."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import install_resource
from tiny_diffusers import write_tiny_sd
from tiny_svd import write_tiny_svd
from zishu import settings
from zishu.engines import VideoRequest, use
from zishu.errors import EngineError, JobCancelled
from zishu.storyboard.clips import VideoChoice, video_choice
from zishu.storyboard.export import CROSSFADE
from zishu.storyboard.media import probe
from zishu.storyboard.motion import MOVES
from zishu.storyboard.render import export_project, submit_shots
from zishu.storyboard.shots import make_shot
from zishu.system import gpus

SHOTS = [{"prompt": "a cat on a roof", "narration": "A cat sits on a roof."},
         {"prompt": "the moon rising", "narration": "The moon rises."}]


@pytest.fixture(scope="module")
def tiny_svd(tmp_path_factory) -> Path:
    return write_tiny_svd(tmp_path_factory.mktemp("svd") / "svd")


def install_svd(runtime, folder: Path) -> str:
    install_resource(runtime.home, "acme/tiny-svd", {"format": "diffusers", "role": "video"},
                     files={p.name: p for p in folder.iterdir()})
    return "acme/tiny-svd@1.0.0"


def pictured(runtime, aspect: str = "1:1"):
    """A project whose shots have their pictures (drawn as the studio would leave them)."""
    settings.change({"storyboard_picture_side": 64})
    boards = runtime.storyboards
    project = boards.create({"story": "A cat. The moon.", "aspect": aspect})
    shots = boards.replace_shots(project.id, SHOTS)
    for n, shot in enumerate(shots):
        Image.new("RGB", (64, 64), (200, 60 * n, 40)).save(boards.folder(project.id) / f"shot-{shot.id}.png")
        boards.set_made(shot.id, image=f"shot-{shot.id}.png")
    return project, shots


def test_the_video_engine_animates_a_picture_with_a_tiny_svd_on_the_cpu(runtime, tiny_svd):
    model = install_svd(runtime, tiny_svd)
    ready = use(runtime, "video", model, device="cpu")
    assert ready.engine.info.name == "diffusers-svd" and "i2v" in ready.engine.info.capabilities
    steps: list[tuple[int, int]] = []
    frames = ready.handle.animate(VideoRequest(image=Image.new("RGB", (96, 80), (10, 200, 30)), width=64, height=64,
                                               frames=3, steps=1, seed=7), progress=lambda d, t: steps.append((d, t)))
    assert len(frames) == 3 and {f.size for f in frames} == {(64, 64)} and steps == [(1, 1)]
    with pytest.raises(JobCancelled):
        ready.handle.animate(VideoRequest(image=frames[0], width=64, height=64, frames=3, steps=1),
                             cancelled=lambda: True)
    with pytest.raises(EngineError, match=r"VideoRequest\.width must be a whole number of pixels, at least 64"):
        ready.handle.animate(VideoRequest(image=frames[0], width=32, height=64, frames=3, steps=1))
    with pytest.raises(EngineError, match="not StableVideoDiffusionPipeline"):  # a text-to-image folder
        use(runtime, "video", str(write_tiny_sd(runtime.home.parent / "sd")), engine="diffusers-svd", device="cpu")


def test_a_shot_given_the_engine_gets_a_clip_that_the_export_plays(runtime, tiny_svd):
    model = install_svd(runtime, tiny_svd)
    project, shots = pictured(runtime)
    boards = runtime.storyboards
    choice = VideoChoice("diffusers-svd", model, "cpu", frames=4, fps=7, steps=1)
    made = make_shot(boards, shots[0].id, host=runtime, video=choice)
    assert made.status == "SUCCESS" and made.clip == f"shot-{made.id}.mp4"
    clip = boards.file(project.id, made.clip)
    (stream,) = probe(clip)["streams"]
    assert (stream["codec_name"], stream["width"], stream["height"], stream["nb_frames"]) == ("h264", 64, 64, "4")
    assert not list(clip.parent.glob(".*partial"))
    picture = boards.file(project.id, made.image).stat().st_mtime_ns
    again = make_shot(boards, shots[0].id, host=runtime, video=choice)  # nothing lacking: nothing made
    assert again.clip == made.clip and boards.file(project.id, made.image).stat().st_mtime_ns == picture
    make_shot(boards, shots[1].id, host=runtime)  # no engine: the Ken Burns move alone
    assert boards.shot(shots[1].id).clip is None and boards.shot(shots[1].id).motion in MOVES

    done = export_project(boards, project.id)
    total = sum(s.duration for s in boards.shots(project.id)) - CROSSFADE
    assert abs(float(probe(Path(done["path"]))["format"]["duration"]) - total) <= 0.050


def test_without_a_gpu_no_clip_is_made_and_each_shot_keeps_its_move(runtime, tiny_svd):
    assert video_choice(runtime) is None  # no video model installed
    model = install_svd(runtime, tiny_svd)
    engines = {e.info.name: e for e in runtime.engines.of_kind("video")}
    assert "i2v" in engines["diffusers-svd"].info.capabilities
    choice = video_choice(runtime)
    if gpus():  # a GPU machine: the model and the GPU make clips
        assert choice is not None and choice.model == model and choice.device == "cuda"
        return
    assert choice is None
    project, _ = pictured(runtime, "16:9")
    runtime.jobs.start_consumer(1)
    for job_id in submit_shots(runtime.jobs, runtime.storyboards, project.id):
        while runtime.jobs.get(job_id).status in ("PENDING", "RUNNING"):
            time.sleep(0.05)
        assert runtime.jobs.get(job_id).status == "SUCCESS", runtime.jobs.get(job_id).error
    made = runtime.storyboards.shots(project.id)
    assert [s.clip for s in made] == [None, None] and all(s.motion in MOVES for s in made)
