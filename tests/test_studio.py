"""The studio (issue 15, items 1, 2 and the REST and CLI of 7): the ``image`` job on the real queue with
the real diffusers engine on a tiny random SD pipeline (``tiny_diffusers``), the gallery with its
A1111 ``parameters`` chunk, the result cache, the REST API behind the secret, and ``zishu image``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import install_resource, zishu
from tiny_diffusers import write_tiny_lora, write_tiny_sd
from zishu.errors import UsageError
from zishu.jobs import records
from zishu.studio.jobs import check, draw_images
from zishu.studio.metadata import parameters_text, read_parameters
from zishu.studio.requests import ImageRequest

SMALL = {"width": 64, "height": 64, "steps": 3, "guidance": 5.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("studio-models")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "lora": write_tiny_lora(folder / "lora", sd).parent}


@pytest.fixture
def client(runtime):
    from zishu.web.app import create_app

    app = create_app(runtime, "s3cret")
    test_client = app.test_client()
    test_client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return test_client


class Heard:
    """The job events the queue emits (its ``hook``), as the job dicts the stream carries."""

    def __init__(self, on_progress=None) -> None:
        self.progress: list[dict] = []
        self.ended = threading.Event()
        self.on_progress = on_progress

    def on_job_start(self, job):
        pass

    def on_job_progress(self, job):
        self.progress.append(job)
        if self.on_progress:
            self.on_progress(job)

    def on_job_end(self, job):
        self.ended.set()


def wait(runtime, job_id: int, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = runtime.jobs.get(job_id).as_dict()
        if job["status"] not in ("PENDING", "RUNNING"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {runtime.jobs.get(job_id).as_dict()}")


@pytest.mark.parametrize("data,message", [
    ({"prompt": "a cat", "width": 100}, r"^width: must be a multiple of 8, got 100$"),
    ({"prompt": "a cat", "height": 32}, r"^height: input should be greater than or equal to 64"),
    ({"prompt": "a cat", "batch": 9}, r"^batch: input should be less than or equal to 8"),
    ({"prompt": "a cat", "steps": True}, r"^steps: must be a whole number, got True"),
    ({"prompt": "  "}, r"^prompt: must not be empty"),
    ({}, r"^prompt: required"),
    ({"prompt": "a cat", "sampler": "Euler"}, r"^sampler: unknown field \(known: prompt, negative_prompt, style"),
    ({"prompt": "a cat", "loras": [{"id": "a/b", "weight": "x"}]},
     r"^loras\.0\.weight: input should be a valid number"),
    ({"prompt": "a cat", "guidance": float("inf")}, r"^guidance: input should be a finite number"),
])
def test_a_request_is_refused_naming_the_field(data, message):
    with pytest.raises(UsageError, match=message):
        ImageRequest.parse(data)
    assert ImageRequest.parse({"prompt": "a", "seed": -1}).seed is None  # -1: random, as A1111 clients send


def test_the_parameters_text_is_what_a1111_writes_and_reads_back():
    text = parameters_text("a cat, sitting\non a mat", "blurry, dark", {
        "Steps": 30, "Sampler": "Euler a", "CFG scale": "7", "Seed": 1, "Size": "512x512", "Model hash": "0123456789",
        "Model": "tiny", "Lora hashes": "cats: abcdef0123", "Style": None})
    assert text == ("a cat, sitting\non a mat\nNegative prompt: blurry, dark\n"
                    "Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
                    'Model hash: 0123456789, Model: tiny, Lora hashes: "cats: abcdef0123"')
    assert read_parameters(text) == {
        "Prompt": "a cat, sitting\non a mat", "Negative prompt": "blurry, dark", "Steps": "30", "Sampler": "Euler a",
        "CFG scale": "7", "Seed": "1", "Size": "512x512", "Model hash": "0123456789", "Model": "tiny",
        "Lora hashes": "cats: abcdef0123"}


def test_an_image_job_shows_steps_and_previews_and_keeps_its_pictures_with_a1111_parameters(runtime, tiny):
    heard = Heard()
    runtime.jobs.hook = heard
    runtime.jobs.start_consumer(1)
    job = runtime.jobs.submit("image", {"prompt": "a red cat", "negative_prompt": "dogs, rain",
                                        "model": str(tiny["sd"]), "seed": 42, "batch": 2,
                                        "scheduler": "Euler a",
                                        **SMALL, "steps": 7})
    done = wait(runtime, job.id)
    assert done["status"] == "SUCCESS", done
    steps = [(j["done"], j["total"]) for j in heard.progress if j["done"]]
    assert (7, 7) in steps and (3, 7) in steps
    previews = [j["extra"]["preview"] for j in heard.progress if (j["extra"] or {}).get("preview")]
    assert previews and all(p.startswith("data:image/jpeg;base64,") for p in previews)
    images = done["result"]["images"]
    assert [(i["seed"], i["width"], i["height"]) for i in images] == [(42, 64, 64), (43, 64, 64)]
    path = runtime.home / "studio" / images[1]["file"]
    with Image.open(path) as png:
        parameters = png.info["parameters"]  # the tEXt chunk A1111, Civitai and ComfyUI read
    read = read_parameters(parameters)
    assert read["Prompt"] == "a red cat" and read["Negative prompt"] == "dogs, rain"
    assert {k: read[k] for k in ("Steps", "Sampler", "CFG scale", "Seed", "Size", "Model")} == {
        "Steps": "7", "Sampler": "Euler a", "CFG scale": "5", "Seed": "43", "Size": "64x64", "Model": "sd"}
    assert len(read["Model hash"]) == 10 and read["Model hash"] == images[1]["model_hash"]


def test_ten_queued_images_load_the_pipeline_once(runtime, tiny):
    runtime.jobs.start_consumer(1)
    jobs = [runtime.jobs.submit("image", {"prompt": f"cat {n}", "model": str(tiny["sd"]), **SMALL, "steps": 1})
            for n in range(10)]
    loaded_at = None
    for job in jobs:
        assert wait(runtime, job.id)["status"] == "SUCCESS"
        (entry,) = runtime.models.loaded()
        loaded_at = loaded_at or entry["loaded_at"]
        assert entry["loaded_at"] == loaded_at  # the same load served every job
    assert runtime.studio.gallery.search("cat")[1] == 10


def test_cancel_stops_between_steps_and_retry_draws_it(runtime, tiny):
    def cancel_once_drawing(job):  # step reports are throttled: the first one heard, whichever step
        if job["done"] and job["done"] < 40 and job["attempts"] == 1 and not job["cancel_requested"]:
            runtime.jobs.cancel(job["id"])

    runtime.jobs.hook = Heard(cancel_once_drawing)
    runtime.jobs.start_consumer(1)
    job = runtime.jobs.submit("image", {"prompt": "a cat", "model": str(tiny["sd"]), **SMALL, "steps": 40})
    cancelled = wait(runtime, job.id)
    assert cancelled["status"] == "CANCELLED" and cancelled["done"] < 40
    assert runtime.studio.gallery.search()[1] == 0  # nothing half drawn was kept
    runtime.jobs.retry(job.id)
    again = wait(runtime, job.id)
    assert again["status"] == "SUCCESS" and len(again["result"]["images"]) == 1


def test_the_same_request_returns_the_stored_picture_without_the_engine(runtime, tiny):
    request = {"prompt": "a cat", "model": str(tiny["sd"]), "seed": 5, **SMALL,
               "loras": [{"id": str(tiny["lora"]), "weight": 0.7}]}
    first = runtime.studio.generate(request)
    assert not first.cached and runtime.models.loaded()
    runtime.models.unload()
    again = runtime.studio.generate(request)
    assert again.cached and [r.id for r in again.images] == [r.id for r in first.images]
    assert runtime.models.loaded() == []  # answered without loading anything
    other = runtime.studio.generate({**request, "loras": [{"id": str(tiny["lora"]), "weight": 0.6}]})
    assert not other.cached  # a LoRA weight is part of the request
    runtime.studio.gallery.trash(first.images[0].id)
    assert not runtime.studio.generate(request).cached  # a trashed picture no longer answers


def test_rest_refuses_bad_requests_naming_the_field_before_queueing(client, runtime, tiny):
    home = runtime.home
    install_resource(home, "alice/tiny-sd", {"format": "diffusers", "role": "image",
                                             "base_model": "runwayml/stable-diffusion-v1-5"}, files={"sd": tiny["sd"]})
    install_resource(home, "alice/xl-cats", {"target": "image", "base_model": "stabilityai/sdxl-base-1.0"},
                     kind="lora", files={"lora": tiny["lora"]})
    cases = [
        ("/api/studio/images", {"prompt": "a cat", "width": 100}, "width: must be a multiple of 8"),
        ("/api/studio/images", {"prompt": "a cat", "width": 4096, "model": "alice/tiny-sd"},
         "width: must be from 64 to 2048 for alice/tiny-sd@1.0.0, got 4096"),
        ("/api/studio/images", {"prompt": "a cat", "scheduler": "Euler b", "model": "alice/tiny-sd"},
         "scheduler: 'Euler b' is not one of: Euler, Euler a, "),
        ("/api/studio/images", {"prompt": "a cat", "loras": [{"id": "alice/xl-cats"}], "model": "alice/tiny-sd"},
         "loras.0.id: alice/xl-cats@1.0.0 is made for stabilityai/sdxl-base-1.0, not for alice/tiny-sd@1.0.0"),
        ("/api/jobs", {"kind": "image", "params": {"prompt": "a cat", "model": "alice/tiny-sd", "height": 12}},
         "height: input should be greater than or equal to 64"),
    ]
    for route, body, message in cases:
        answer = client.post(route, json=body)
        assert answer.status_code == 400 and message in answer.json["error"]["message"], (body, answer.json)
    missing = client.post("/api/studio/images", json={"prompt": "a cat", "model": "alice/nothing"})
    assert missing.status_code == 404 and missing.json["error"]["message"].startswith("model: ")
    assert records.recent() == []  # nothing was queued
    ok = client.post("/api/jobs", json={"kind": "image", "params": {"prompt": "a cat", **SMALL}})
    assert ok.status_code == 202 and ok.json["job"]["params"]["model"] == "alice/tiny-sd@1.0.0"  # the default
    options = client.get("/api/studio/options").json
    assert options["default_model"] == "alice/tiny-sd@1.0.0" and "DPM++ 2M Karras" in options["schedulers"]


def test_the_gallery_over_rest_search_favourite_trash_undo_reuse_and_files(client, runtime, tiny):
    from zishu.companion.characters import create_character

    runtime.jobs.start_consumer(1)
    made, ids = {}, {}
    for prompt, character in (("a red cat", "mei"), ("a blue dog", "kai")):
        ids[character] = create_character(runtime, {"name": character.title(), "persona": "A friend.",
                                                    "image_style": {"prompt_prefix": f"{character} in a hat"}})
        answer = client.post("/api/studio/images", json={"prompt": prompt, "character": ids[character], "seed": 9,
                                                          "model": str(tiny["sd"]), **SMALL})
        assert answer.status_code == 202
        done = wait(runtime, answer.json["job"]["id"])
        made[character] = done["result"]["images"][0]
    listing = client.get("/api/studio/gallery?q=CAT").json
    assert listing["total"] == 1 and listing["images"][0]["prompt"] == "mei in a hat, a red cat"  # as drawn
    assert client.get("/api/studio/gallery?q=kai").json["images"][0]["character"] == ids["kai"]  # by character too
    assert client.get(f"/api/studio/gallery?character={ids['mei']}").json["total"] == 1
    assert client.get("/api/studio/gallery?limit=1&offset=1").json["images"][0]["id"] == made["mei"]["id"]
    cat = made["mei"]["id"]
    assert client.post(f"/api/studio/gallery/{cat}/favourite", json={"favourite": True}).json["image"]["favourite"]
    assert [i["id"] for i in client.get("/api/studio/gallery?favourite=1").json["images"]] == [cat]
    assert client.delete(f"/api/studio/gallery/{cat}").json["image"]["deleted"]
    assert client.get("/api/studio/gallery").json["total"] == 1
    assert [i["id"] for i in client.get("/api/studio/gallery?trash=1").json["images"]] == [cat]
    assert not client.post(f"/api/studio/gallery/{cat}/restore").json["image"]["deleted"]  # Undo
    assert client.get("/api/studio/gallery").json["total"] == 2
    reused = client.get(f"/api/studio/gallery/{cat}/reuse").json["request"]
    # what the user asked (the character expands it again when drawn), with the picture's own seed
    assert reused == {"prompt": "a red cat", "character": ids["mei"], "width": 64, "height": 64, "steps": 3,
                      "guidance": 5.0, "seed": 9, "batch": 1, "model": str(tiny["sd"])}
    png = client.get(made["mei"]["url"])
    assert png.status_code == 200 and png.mimetype == "image/png"
    again = runtime.studio.generate(reused)  # reuse draws the same picture (here: from the cache)
    assert np.array_equal(np.asarray(Image.open(runtime.studio.gallery.path(again.images[0]))),
                          np.asarray(Image.open(runtime.home / "studio" / made["mei"]["file"])))
    os.symlink("/etc/passwd", runtime.home / "studio" / "leak.png")
    assert client.get("/api/studio/files/leak.png").status_code == 404
    assert client.get("/api/studio/files/../zishu.db").status_code == 404
    assert client.get("/api/studio/gallery/99999").status_code == 404
    token_less = client.application.test_client()
    assert token_less.get("/api/studio/gallery").status_code in (401, 403)


def test_zishu_image_draws_with_a_progress_bar_into_the_gallery_and_out(tmp_path, tiny):
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}
    out = tmp_path / "out" / "cat.png"
    result = zishu(env, "image", "a cat", "--model", str(tiny["sd"]), "--width", "64", "--height", "64",
                   "--steps", "2", "--seed", "3", "--batch", "2", "--out", str(out))
    assert result.stdout.split() == [str(out), str(out.with_name("cat-2.png"))]
    with Image.open(out) as png:
        assert read_parameters(png.info["parameters"])["Seed"] == "3"
    again = zishu(env, "image", "a cat", "--model", str(tiny["sd"]), "--width", "64", "--height", "64",
                  "--steps", "2", "--seed", "3", "--batch", "2")
    assert "from the cache" in again.stderr
    bad = zishu(env, "image", "a cat", "--model", str(tiny["sd"]), "--width", "65", check=False)
    assert bad.returncode == 2 and "width: must be a multiple of 8" in bad.stderr
    # --style goes through the studio's expanders: its template, and its size and steps where no option is given
    styles = tmp_path / "home" / "styles"
    styles.mkdir()
    (styles / "ink.yaml").write_text("prompt: 'ink drawing of {prompt}'\nwidth: 64\nheight: 72\nsteps: 1\n")
    inked = zishu(env, "image", "a cat", "--style", "ink", "--model", str(tiny["sd"]), "--height", "64")
    with Image.open(inked.stdout.split()[0]) as png:
        read = read_parameters(png.info["parameters"])
        assert png.size == (64, 64) and read["Prompt"] == "ink drawing of a cat" and read["Steps"] == "1"


def test_the_job_check_fills_in_the_model_and_refuses_bad_input(runtime, tiny):
    params = check({"prompt": "a cat", "model": str(tiny["sd"])}, runtime.jobs.service)
    assert params == {"prompt": "a cat", "model": str(tiny["sd"])}  # what was asked; defaults filled when drawn
    with pytest.raises(UsageError, match=r"^batch: "):
        check({"prompt": "a cat", "batch": 0, "model": str(tiny["sd"])}, runtime.jobs.service)
    assert callable(draw_images)


def test_safe_mode_refuses_a_filtered_prompt_and_keeps_a_blocked_picture_marked(runtime, tiny):
    from zishu import plugins
    from zishu.hookspecs import hookimpl

    with pytest.raises(UsageError, match=r"^prompt: safe mode: the prompt contains nude"):
        runtime.jobs.submit("image", {"prompt": "a nude figure", "model": str(tiny["sd"]), **SMALL, "steps": 1})
    assert not records.Job.select().where(records.Job.kind == "image").exists()  # nothing was queued

    class BlockEverything:
        @hookimpl
        def check_image(self, image, context):
            return {"blocked": context["safe_mode"], "reason": "test classifier: blocked", "scores": {"x": 1.0}}

    plugins.pm.register(BlockEverything(), name="block-everything")
    try:
        result = runtime.studio.generate({"prompt": "a cat", "model": str(tiny["sd"]), **SMALL, "steps": 1})
    finally:
        plugins.pm.unregister(name="block-everything")
    [row] = result.images
    assert row.blocked and row.blocked_reason == "test classifier: blocked"
    assert runtime.studio.gallery.path(row).is_file()  # kept in the gallery, marked, never dropped
