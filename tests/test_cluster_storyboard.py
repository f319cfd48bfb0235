"""The storyboard's shots across machines (issue 18, item 3): the app (its own ZISHU_HOME, with
neither the image model nor the voice) renders a storyboard on a cluster; each ``storyboard-shot``
job stays on the app, where the project is, and makes its picture and narration through ``image``
and ``speech`` sub-jobs that one ``zishu worker`` (its own ZISHU_HOME, with the tiny SD pipeline and
the tiny Piper voice) runs. The pictures land in the app's gallery and the audio in its ZISHU_HOME,
sha256 checked, and the shots take them from there. Also: a resumed shot job takes its recorded
sub-jobs' results instead of making them again, a sub-job that cannot be made fails the shot with
its message, and cancelling a shot job cancels its sub-job. Real redis-server, real diffusers, real
Piper-format ONNX voice."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import wave

import pytest
from PIL import Image

from conftest import install_resource
from test_cluster import start_redis, stop, worker
from test_cluster_routing import advertised
from tiny_diffusers import write_tiny_sd

SD = "acme/tiny-sd"
VOICE = "acme/piper"
SIDE = 64
SHOTS = [{"prompt": "a fox in a bamboo forest", "narration": "狐狸走进竹林。"},
         {"prompt": "a glowing lantern", "narration": "她找到一盏灯笼。"}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Redis, the app's Runtime (it runs its own shot jobs, and no image or speech job) and the
    ``maker`` worker, which has the tiny SD model and the tiny voice."""
    from tiny_voice import write_tiny_piper_voice
    from zishu import settings
    from zishu.runtime import Runtime

    tmp = tmp_path_factory.mktemp("storyboard-cluster")
    server, port = start_redis(tmp)
    url = f"redis://127.0.0.1:{port}/0"
    sd = write_tiny_sd(tmp / "sd")
    install_resource(tmp / "maker", SD, {"format": "diffusers", "role": "image", "base_model": "sd15"},
                     files={p.name: p for p in sd.iterdir()})
    piper = write_tiny_piper_voice(tmp / "piper")
    install_resource(tmp / "maker", VOICE, {"engine": "piper", "language": "zh-CN"}, kind="voice",
                     files={p.name: p for p in piper.iterdir()})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZISHU_HOME", str(tmp / "app"))
        rt = Runtime(tmp / "app", queue_url=url, accept=[])
        settings.change({"storyboard_picture_side": SIDE, "studio_model": SD})
        procs = []
        try:
            maker = worker(tmp, "maker", url, os.environ.get("PYTHONPATH", ""), tmp / "app",
                           "--accept", "image,speech")
            procs = [maker]
            advertised(url, maker, SD, timeout=120)
            advertised(url, maker, VOICE, timeout=120)
            rt.jobs.start_consumer(2)
            yield {"rt": rt, "url": url, "tmp": tmp, "maker": maker}
        finally:
            stop(*procs)
            rt.close()
            server.terminate()
            server.wait(10)


def finished(cluster, job_id: int, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while (job := cluster["rt"].jobs.get(job_id)).status in ("PENDING", "RUNNING"):
        assert cluster["maker"].poll() is None, f"the worker exited: {cluster['maker'].stderr.read()}"
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}: {job.message}"
        time.sleep(0.05)
    return job


def subjobs(job) -> dict[str, int]:
    return json.loads(job.extra or "{}").get("subjobs") or {}


def project(rt, voice: str = VOICE, character: str | None = None):
    boards = rt.storyboards
    made = boards.create({"story": "A fox finds a lantern.", "aspect": "1:1", "character": character,
                          "voice": {"engine": "piper", "voice": voice}})
    return made, boards.replace_shots(made.id, SHOTS)


def test_each_shots_picture_and_narration_are_made_on_the_worker_and_arrive_in_the_app(cluster):
    from zishu.companion import characters as chars
    from zishu.storyboard.render import submit_shots

    rt, tmp = cluster["rt"], cluster["tmp"]
    aoi = chars.create_character(rt, {"name": "Aoi", "persona": "You are {{char}}, a fox spirit.", "image_style": {
        "prompt_prefix": "1girl, fox ears", "negative_prompt": "extra tails"}})  # the app's: the worker lacks her
    made, shots = project(rt, character=aoi)
    job_ids = submit_shots(rt.jobs, rt.storyboards, made.id)
    for job_id in job_ids:
        job = finished(cluster, job_id)
        assert job.status == "SUCCESS", f"{job.error_code}: {job.error}"
        assert job.worker.split(":")[1] == str(os.getpid())  # the shot job itself ran on the app
    for shot, job_id in zip(shots, job_ids, strict=True):
        shot = rt.storyboards.shot(shot.id)
        assert shot.status == "SUCCESS" and shot.job_id == job_id
        parts = subjobs(rt.jobs.get(job_id))
        image, speech = rt.jobs.get(parts["image"]), rt.jobs.get(parts["narration"])
        for sub in (image, speech):  # both made by the worker that has the model
            assert sub.status == "SUCCESS" and sub.worker.split(":")[1] == str(cluster["maker"].pid)
        assert (image.kind, speech.kind) == ("image", "speech")

        drawn = json.loads(image.result)["images"][0]  # the app's own gallery row
        row = rt.studio.gallery.get(drawn["id"])
        assert row.model.startswith(SD) and shot.prompt in row.prompt and row.seed == made.seed
        assert row.prompt.startswith("1girl, fox ears") and "extra tails" in row.negative_prompt  # drawn as Aoi
        picture = rt.storyboards.file(made.id, shot.image)
        assert shot.image == f"shot-{shot.id}.png"
        assert picture.read_bytes() == rt.studio.gallery.path(row).read_bytes()
        with Image.open(picture) as png:
            assert png.size == (SIDE, SIDE)

        spoken = json.loads(speech.result)
        narration = rt.storyboards.file(made.id, shot.audio)
        assert shot.audio == f"shot-{shot.id}.wav" and spoken["voice"] == VOICE
        assert hashlib.sha256(narration.read_bytes()).hexdigest() == spoken["sha256"]  # what the worker made
        assert (tmp / "app" / spoken["audio"]).read_bytes() == narration.read_bytes()
        with wave.open(str(narration)) as w:
            assert w.getnframes() > 0
        assert shot.duration >= spoken["seconds"]  # the narration and its pause
    assert not (tmp / "app" / "resources" / "acme").exists()  # the app had neither model (only Aoi)
    assert len(list((tmp / "maker" / "studio").rglob("*.png"))) == len(shots)
    assert len(list((tmp / "maker" / "audio" / "speech").iterdir())) == len(shots)


def shot_made_once(cluster):
    """A project whose first shot's job has run (its sub-jobs recorded in that job's ``extra``)."""
    rt = cluster["rt"]
    made, shots = project(rt)
    first = finished(cluster, rt.jobs.submit("storyboard-shot", {"project": made.id, "shot": shots[0].id}).id)
    assert first.status == "SUCCESS", first.error
    return made, shots[0], first


def resumed(cluster, made, shot, cut_off):
    """What a crash leaves, resumed: a shot job, to make both parts again, with the sub-jobs that
    ``cut_off`` (a shot job) had submitted recorded as its own."""
    from zishu.jobs import records

    again = records.create("storyboard-shot", "resumed", {"project": made.id, "shot": shot.id,
                                                          "redo": ["image", "narration"]})
    records.update(again.id, extra=cut_off.extra)
    cluster["rt"].jobs._enqueue(again.id, 0)
    job = finished(cluster, again.id)
    assert job.status == "SUCCESS", job.error
    return job


def test_a_resumed_shot_job_takes_its_recorded_subjobs_results_instead_of_redoing_them(cluster):
    from zishu.jobs import records

    rt = cluster["rt"]
    made, shot, first = shot_made_once(cluster)
    before = {kind: rt.jobs.get(i) for kind, i in subjobs(first).items()}
    picture = rt.storyboards.file(made.id, rt.storyboards.shot(shot.id).image).read_bytes()
    counted = {k: len([j for j in records.Job.select() if j.kind == k]) for k in ("image", "speech")}

    job = resumed(cluster, made, shot, first)  # its sub-jobs finished meanwhile: it takes their results
    assert subjobs(job) == subjobs(first)
    assert {k: len([j for j in records.Job.select() if j.kind == k]) for k in ("image", "speech")} == counted
    assert all(rt.jobs.get(j.id).finished_at == j.finished_at for j in before.values())  # not run again
    assert rt.storyboards.file(made.id, rt.storyboards.shot(shot.id).image).read_bytes() == picture


def test_a_resumed_shot_job_whose_shot_was_edited_meanwhile_makes_the_picture_again(cluster):
    rt = cluster["rt"]
    made, shot, first = shot_made_once(cluster)
    rt.storyboards.edit_shot(shot.id, {"prompt": "a red kite over the sea"})

    job = resumed(cluster, made, shot, first)  # the shot's prompt changed since the crash
    assert subjobs(job)["narration"] == subjobs(first)["narration"]  # the narration asked the same: taken
    image = rt.jobs.get(subjobs(job)["image"])
    assert image.id != subjobs(first)["image"] and image.status == "SUCCESS"  # drawn again, as edited
    drawn = rt.studio.gallery.get(json.loads(image.result)["images"][0]["id"])
    assert "a red kite over the sea" in drawn.prompt


def test_a_voice_no_node_has_fails_the_shot_naming_it(cluster):
    rt = cluster["rt"]
    made, shots = project(rt, voice="acme/absent-voice")
    job = finished(cluster, rt.jobs.submit("storyboard-shot", {"project": made.id, "shot": shots[0].id}).id)
    assert job.status == "FAILED" and job.error_code == "MODEL_NOT_AVAILABLE"
    assert '"voice"' in job.error and "acme/absent-voice" in job.error
    shot = rt.storyboards.shot(shots[0].id)
    assert shot.status == "FAILED" and "acme/absent-voice" in shot.error and shot.audio is None


def test_a_subjob_that_fails_on_the_worker_fails_the_shot_with_its_message(cluster):
    from zishu import settings

    rt = cluster["rt"]
    made, shots = project(rt)
    settings.change({"studio_model": VOICE})  # the worker has it, and finds it is no image model
    try:
        job = finished(cluster, rt.jobs.submit("storyboard-shot", {"project": made.id, "shot": shots[0].id}).id)
    finally:
        settings.change({"studio_model": SD})
    image = rt.jobs.get(subjobs(job)["image"])
    assert image.status == "FAILED" and image.worker.split(":")[1] == str(cluster["maker"].pid), image.error
    assert job.status == "FAILED" and job.error_code == image.error_code
    assert job.error == f"drawing shot 1 (job {image.id}): {image.error}"
    assert "not image" in image.error  # "piper is a tts engine, not image"
    shot = rt.storyboards.shot(shots[0].id)
    assert shot.status == "FAILED" and shot.error == job.error
    assert shot.audio == f"shot-{shot.id}.wav" and shot.image is None  # the narration it made is kept


def test_cancelling_a_shot_job_cancels_its_subjob(cluster):
    rt, maker = cluster["rt"], cluster["maker"]
    made, shots = project(rt)
    os.kill(maker.pid, signal.SIGSTOP)  # the worker takes nothing meanwhile: the sub-job waits
    try:
        job = rt.jobs.submit("storyboard-shot", {"project": made.id, "shot": shots[0].id})
        deadline = time.monotonic() + 30
        while not subjobs(rt.jobs.get(job.id)):
            assert time.monotonic() < deadline, rt.jobs.get(job.id).message
            time.sleep(0.02)
        sub = subjobs(rt.jobs.get(job.id))["narration"]
        assert rt.jobs.get(sub).status == "PENDING"
        assert "narrating shot 1" in rt.jobs.get(job.id).message
        rt.jobs.cancel(job.id)
        assert finished(cluster, job.id).status == "CANCELLED"
        assert rt.jobs.get(sub).status == "CANCELLED"
        assert rt.storyboards.shot(shots[0].id).status == "PENDING"
    finally:
        os.kill(maker.pid, signal.SIGCONT)
