"""The studio routes the Studio panel calls (issue 15, items 4 and 5), behind the secret: capabilities
with what to install (from the catalog), upscale and background removal into new gallery rows,
downloads as PNG/WebP/JPEG carrying A1111's parameters, and "Draw this character", its expression
sheet and "use as avatar" from gallery pictures. Every rejection has its case."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import install_resource, make_manifest, publish_catalog, write_manifest
from tiny_diffusers import write_tiny_sd
from tiny_postprocess import write_tiny_segmenter, write_tiny_upscaler
from zishu.companion.characters import create_character
from zishu.jobs import records
from zishu.studio.postprocess import read_parameters
from zishu.studio.styles import save_style
from zishu_onnx_vision import register_engines

PARAMETERS = "a cat\nNegative prompt: dogs\nSteps: 4, Sampler: Euler, CFG scale: 5, Seed: 7, Size: 24x16, Model: sd"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("route-models")
    return {"sd": write_tiny_sd(folder / "sd"), "upscaler": write_tiny_upscaler(folder / "up.onnx"),
            "segmenter": write_tiny_segmenter(folder / "seg.onnx")}


@pytest.fixture
def app(runtime, tiny, registry, tmp_path, monkeypatch):
    # a real catalog that offers a ControlNet and an upscaler
    write_manifest(registry, make_manifest("acme/canny-net", tags=["canny"], spec={
        "format": "diffusers", "role": "controlnet", "base_model": "sd15"}))
    write_manifest(registry, make_manifest("acme/esrgan", tags=["upscale"], spec={"format": "onnx", "role": "upscale"}))
    monkeypatch.setenv("ZISHU_CATALOG", publish_catalog(registry, tmp_path / "catalog"))
    register_engines(runtime.engines.register)
    install_resource(runtime.home, "acme/tiny-sd", {"format": "diffusers", "role": "image", "base_model": "sd15"},
                     files={p.name: p for p in tiny["sd"].iterdir()})
    from zishu.web.app import create_app

    client = create_app(runtime, "s3cret").test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return client


def add_picture(runtime, colour=None, size=(24, 16), character=None):
    rng = np.random.default_rng(5)
    picture = (Image.new("RGB", size, colour) if colour else
               Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)))
    return runtime.studio.gallery.add(picture, parameters=PARAMETERS, fields={
        "prompt": "a cat", "negative_prompt": "dogs", "character": character, "model": "acme/tiny-sd@1.0.0",
        "model_hash": "0123456789", "seed": 7, "width": size[0], "height": size[1], "steps": 4, "guidance": 5.0,
        "request": '{"prompt": "a cat", "seed": 7}', "batch_index": 0})


def test_capabilities_say_what_works_and_what_to_install(app, runtime, tiny):
    found = app.get("/api/studio/capabilities").json["capabilities"]
    assert set(found) == {"img2img", "inpaint", "controlnet_canny", "controlnet_pose", "controlnet_depth", "upscale",
                          "background", "png", "webp", "jpeg"}
    assert found["img2img"] == {"ok": True, "message": "drawn by the diffusers engine", "install": None}
    assert found["controlnet_canny"]["ok"] is False and found["controlnet_canny"]["install"] == "acme/canny-net"
    assert found["controlnet_pose"]["install"] is None  # the catalog's ControlNet is tagged canny only
    assert found["upscale"]["install"] == "acme/esrgan" and "role 'upscale'" in found["upscale"]["message"]
    assert found["background"] == {"ok": False, "install": None, "message": found["background"]["message"]}
    install_resource(runtime.home, "acme/up", {"format": "onnx", "role": "upscale"},
                     files={"up.onnx": tiny["upscaler"]})
    found = app.get("/api/studio/capabilities?model=acme/tiny-sd").json["capabilities"]
    assert found["upscale"] == {"ok": True, "message": "acme/up@1.0.0", "install": None}
    missing = app.get("/api/studio/capabilities?model=acme/nothing")
    assert missing.status_code == 404 and missing.json["error"]["message"].startswith("model: ")


def test_upscale_and_background_make_new_gallery_rows(app, runtime, tiny):
    row = add_picture(runtime)
    none = app.post(f"/api/studio/gallery/{row.id}/upscale", json={"scale": 2})
    assert none.status_code == 404 and "role 'upscale'" in none.json["error"]["message"]
    install_resource(runtime.home, "acme/up", {"format": "onnx", "role": "upscale"},
                     files={"up.onnx": tiny["upscaler"]})
    install_resource(runtime.home, "acme/cut", {"format": "onnx", "role": "background"},
                     files={"seg.onnx": tiny["segmenter"]})
    answer = app.post(f"/api/studio/gallery/{row.id}/upscale", json={"scale": 4})
    assert answer.status_code == 201, answer.json
    bigger = answer.json["image"]
    assert bigger["id"] != row.id and (bigger["width"], bigger["height"]) == (96, 64)
    assert bigger["parent"] == row.id and app.get(f"/api/studio/gallery/{row.id}").json["image"]["parent"] is None
    assert bigger["parameters"] == PARAMETERS and bigger["prompt"] == "a cat" and bigger["seed"] == 7
    with Image.open(runtime.home / "studio" / bigger["file"]) as png:
        assert png.size == (96, 64) and png.info["parameters"] == PARAMETERS
    assert app.get(f"/api/studio/gallery/{row.id}").json["image"]["width"] == 24  # the original stays
    assert app.get(f"/api/studio/gallery/{bigger['id']}/reuse").json["request"] == {"prompt": "a cat", "seed": 7}
    cut = app.post(f"/api/studio/gallery/{row.id}/background", json={})
    assert cut.status_code == 201 and cut.json["image"]["parent"] == row.id
    with Image.open(runtime.home / "studio" / cut.json["image"]["file"]) as png:
        assert png.mode == "RGBA" and png.size == (24, 16)
    for body, message in (({"scale": 3}, "scale: must be 2 or 4, got 3"), ({"scale": True}, "scale: must be 2 or 4"),
                          ({"model": 5}, "model: expected an upscaler"), ({"size": 2}, "size: unknown field")):
        bad = app.post(f"/api/studio/gallery/{row.id}/upscale", json=body)
        assert bad.status_code == 400 and bad.json["error"]["message"].startswith(message), body
    assert app.post("/api/studio/gallery/999/upscale", json={}).status_code == 404
    assert app.post("/api/studio/gallery/999/background", json={}).status_code == 404
    blocked = runtime.studio.gallery.mark_blocked(add_picture(runtime).id, "classifier: nsfw")
    refused = app.post(f"/api/studio/gallery/{blocked.id}/upscale", json={})
    assert refused.status_code == 400
    assert "was blocked by safe mode (classifier: nsfw)" in refused.json["error"]["message"]


def test_downloads_carry_the_a1111_parameters_in_each_format(app, runtime):
    row = add_picture(runtime)
    for format, mimetype, extension in (("png", "image/png", "png"), ("webp", "image/webp", "webp"),
                                        ("jpeg", "image/jpeg", "jpg"), ("jpg", "image/jpeg", "jpg")):
        answer = app.get(f"/api/studio/gallery/{row.id}/download?format={format}&quality=80")
        assert answer.status_code == 200 and answer.mimetype == mimetype
        assert answer.headers["Content-Disposition"] == f'attachment; filename="zishu-{row.id}.{extension}"'
        assert read_parameters(answer.data) == PARAMETERS
        assert Image.open(io.BytesIO(answer.data)).size == (24, 16)
    assert app.get(f"/api/studio/gallery/{row.id}/download").mimetype == "image/png"  # PNG by default
    for query, message in (("format=gif", "format: must be one of png, webp, jpeg, got 'gif'"),
                           ("quality=0", "quality='0': expected a whole number from 1 to 100"),
                           ("quality=high", "quality='high'")):
        bad = app.get(f"/api/studio/gallery/{row.id}/download?{query}")
        assert bad.status_code == 400 and bad.json["error"]["message"].startswith(message), query
    assert app.get("/api/studio/gallery/999/download").status_code == 404
    blocked = runtime.studio.gallery.mark_blocked(add_picture(runtime).id, "nsfw")
    assert app.get(f"/api/studio/gallery/{blocked.id}/download").status_code == 400


def test_draw_this_character_and_its_sheet_queue_image_jobs(app, runtime):
    rid = create_character(runtime, {"name": "Aoi", "persona": "A fox spirit.", "emotions": {
        "happy": {"expression": "F05"}, "sad": {"expression": "F04"}}, "image_style": {"prompt_prefix": "fox girl"}})
    owner, name = rid.split("/")
    drawn = app.post(f"/api/studio/characters/{owner}/{name}/draw", json={"prompt": "reading", "batch": 2})
    assert drawn.status_code == 202
    assert drawn.json["job"]["params"] == {"prompt": "reading", "batch": 2, "character": rid,
                                           "model": "acme/tiny-sd@1.0.0"}
    sheet = app.post(f"/api/studio/characters/{owner}/{name}/sheet", json={"style": "anime"})
    assert sheet.status_code == 202 and list(sheet.json["jobs"]) == ["happy", "sad"]
    assert sheet.json["jobs"]["sad"]["params"] == {"character": rid, "prompt": "sad expression, portrait, upper body",
                                                   "style": "anime", "model": "acme/tiny-sd@1.0.0"}
    queued = len(records.recent())
    save_style(runtime.home, "inked", {"prompt": "ink {prompt}", "loras": [{"id": "acme/ink-lora"}]})
    cases = [
        ("draw", {"batch": 9}, 400, "batch: must be a whole number from 1 to 8"),
        ("draw", {"seed": 1}, 400, "seed: unknown field (known: prompt, style, batch)"),
        ("draw", {"prompt": 5}, 400, "prompt: expected text"),
        ("sheet", {"batch": 2}, 400, "batch: a sheet draws one picture per emotion"),
        ("sheet", {"style": "inked"}, 404, "style: inked draws with acme/ink-lora, which is not installed"),
    ]
    for action, body, status, message in cases:
        bad = app.post(f"/api/studio/characters/{owner}/{name}/{action}", json=body)
        assert bad.status_code == status and bad.json["error"]["message"].startswith(message), (action, body)
    assert len(records.recent()) == queued  # nothing was queued for a refused sheet
    for action in ("draw", "sheet"):
        gone = app.post(f"/api/studio/characters/local/nobody/{action}", json={})
        assert gone.status_code == 404 and gone.json["error"]["message"].startswith("character: ")
    assert app.post(f"/api/studio/characters/{owner}/BAD!/draw", json={}).status_code == 400


def test_gallery_pictures_become_the_characters_avatar(app, runtime):
    rid = create_character(runtime, {"name": "Aoi", "persona": "A fox spirit."})
    owner, name = rid.split("/")
    neutral, happy = add_picture(runtime, "red"), add_picture(runtime, "green")
    answer = app.post(f"/api/studio/characters/{owner}/{name}/avatar",
                      json={"images": {"neutral": neutral.id, "开心": happy.id}})
    assert answer.status_code == 200, answer.json
    assert answer.json == {"character": rid, "version": "1.0.1", "changed": True, "forked_from": None}
    info = app.get(f"/api/avatar/{owner}/{name}").json
    assert app.get(info["sheet"]["happy"]).data == runtime.studio.gallery.path(happy).read_bytes()
    assert app.get(info["image_url"]).data == runtime.studio.gallery.path(neutral).read_bytes()
    single = app.post(f"/api/studio/characters/{owner}/{name}/avatar", json={"images": {"neutral": happy.id}})
    assert single.status_code == 200 and single.json["version"] == "1.0.2"  # "use as avatar"
    blocked = runtime.studio.gallery.mark_blocked(add_picture(runtime, "blue").id, "classifier: nsfw")
    cases = [
        ({"images": {"happy": blocked.id}}, 400, f"images.happy: picture {blocked.id} was blocked by safe mode"),
        ({"images": {"happy": 999}}, 404, "images.happy: no picture 999 in the gallery"),
        ({"images": {"happy": "1"}}, 400, "images.happy: expected a gallery image id"),
        ({"images": {"a/b": neutral.id}}, 400, "images.a/b: 'a/b' is not an emotion name"),
        ({"images": {}}, 400, "images: expected"),
        ({"images": [1]}, 400, "images: expected"),
        ({"pictures": {}}, 400, "pictures: unknown field (known: images)"),
    ]
    for body, status, message in cases:
        bad = app.post(f"/api/studio/characters/{owner}/{name}/avatar", json=body)
        assert bad.status_code == status and bad.json["error"]["message"].startswith(message), body
    gone = app.post("/api/studio/characters/local/nobody/avatar", json={"images": {"neutral": neutral.id}})
    assert gone.status_code == 404 and gone.json["error"]["message"].startswith("character: ")
    token_less = app.application.test_client()
    assert token_less.post(f"/api/studio/characters/{owner}/{name}/avatar", json={}).status_code in (401, 403)


def test_a_finished_jobs_files_download_by_number_and_every_wrong_ask_is_named(app, runtime):
    from test_studio import wait

    dropped = runtime.jobs.submit("image", {"prompt": "never", "model": "acme/tiny-sd", "width": 64, "height": 64,
                                            "steps": 2})
    runtime.jobs.cancel(dropped.id)  # before any consumer runs: it never draws
    refused = app.get(f"/api/jobs/{dropped.id}/files/0")
    assert refused.status_code == 400 and refused.json["error"]["message"] == (
        f"job {dropped.id} is CANCELLED; its files are there once it has succeeded")

    runtime.jobs.start_consumer(1)
    sent = app.post("/api/jobs", json={"kind": "image", "params": {
        "prompt": "a red cat", "model": "acme/tiny-sd", "width": 64, "height": 64, "steps": 2, "seed": 3, "batch": 2}})
    assert sent.status_code == 202
    job = sent.get_json()["job"]["id"]
    done = wait(runtime, job)
    assert done["status"] == "SUCCESS", done
    assert done["result"]["files"] == [f"studio/{i['file']}" for i in done["result"]["images"]]
    for n, image in enumerate(done["result"]["images"]):
        got = app.get(f"/api/jobs/{job}/files/{n}")
        assert got.status_code == 200 and got.mimetype == "image/png"
        assert got.data == (runtime.home / "studio" / image["file"]).read_bytes()

    past = app.get(f"/api/jobs/{job}/files/2")
    assert past.status_code == 404 and past.json["error"]["message"].endswith("made files 0 to 1; there is no file 2")
    assert app.get(f"/api/jobs/{job}/files/-1").status_code == 400
    assert "index='x'" in app.get(f"/api/jobs/{job}/files/x").json["error"]["message"]
    assert app.get("/api/jobs/999999/files/0").status_code == 404
    (runtime.home / "studio" / done["result"]["images"][0]["file"]).unlink()  # deleted behind the app's back
    gone = app.get(f"/api/jobs/{job}/files/0")
    assert gone.status_code == 404 and "no longer in ZISHU_HOME" in gone.json["error"]["message"]
