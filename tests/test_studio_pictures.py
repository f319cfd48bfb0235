"""Drawing from pictures through the studio (issue 15, item 5): img2img from a gallery picture,
inpainting with a painted mask sent as a data URL, and ControlNet (canny computed locally) with the
ControlNet found for the model's family, end to end through ``Studio.generate`` and the real diffusers
engine on a tiny random pipeline. Each bad picture field is refused naming it, and a missing
ControlNet is a 400 that says what to install."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import install_resource
from tiny_diffusers import write_tiny_sd
from tiny_postprocess import write_tiny_controlnet
from zishu.errors import NotFound, ResourceNotAvailable, UsageError

CAT = {"prompt": "a cat on a mat", "width": 64, "height": 64, "steps": 4, "guidance": 5.0, "seed": 7}


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def data_url(image: Image.Image, plain: bool = False) -> str:
    out = io.BytesIO()
    image.save(out, "PNG")
    text = base64.b64encode(out.getvalue()).decode("ascii")
    return text if plain else "data:image/png;base64," + text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("picture-models")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "controlnet": write_tiny_controlnet(folder / "cn", sd)}


@pytest.fixture
def studio(runtime, tiny):
    install_resource(runtime.home, "acme/tiny-sd", {"format": "diffusers", "role": "image", "base_model": "sd15"},
                     files={p.name: p for p in tiny["sd"].iterdir()})
    return runtime.studio


def opened(studio, row) -> Image.Image:
    with Image.open(studio.gallery.path(row)) as picture:
        return picture.convert("RGB")


def test_img2img_and_inpainting_from_a_gallery_picture(studio):
    [plain] = studio.generate(CAT).images
    original = opened(studio, plain)
    seen: list[tuple[int, int]] = []
    [near] = studio.generate({**CAT, "init_image": plain.id, "strength": 0.25},
                             progress=lambda *step: seen.append(step)).images
    [far] = studio.generate({**CAT, "init_image": str(plain.id), "strength": 1.0}).images
    assert seen == [(1, 1)]  # strength 0.25 of 4 steps: the engine drew from the picture, one step
    distance = [np.abs(pixels(opened(studio, row)) - pixels(original)).mean() for row in (near, far)]
    assert distance[0] < distance[1]
    assert studio.gallery.reuse(near.id)["init_image"] == str(plain.id)  # reuse draws from the same picture
    # a mask painted on a clear canvas (white strokes on the left half), sent as a data URL; the
    # picture as plain base64, as A1111 clients send it
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    mask.paste((255, 255, 255, 255), (0, 0, 32, 64))
    [painted] = studio.generate({**CAT, "init_image": data_url(original, plain=True), "mask": data_url(mask),
                                 "strength": 1.0}).images
    result = pixels(opened(studio, painted))
    assert np.array_equal(result[:, 32:], pixels(original)[:, 32:])  # kept exactly where the mask is clear
    assert np.abs(result[:, :32] - pixels(original)[:, :32]).mean() > 5  # repainted where it is white


def test_controlnet_canny_needs_its_model_then_follows_the_picture(studio, runtime, tiny):
    from zishu.web.app import create_app

    [plain] = studio.generate(CAT).images
    canny = {**CAT, "control": {"type": "canny", "image": plain.id}}
    with pytest.raises(UsageError, match=r"^control: no canny ControlNet is installed for acme/tiny-sd@1.0.0: "
                                         r"install a canny ControlNet for acme/tiny-sd or sd15"):
        studio.prepare(canny)
    client = create_app(runtime, "s3cret").test_client()
    answer = client.post("/api/studio/images", json=canny, headers={"X-Zishu-Token": "s3cret"})
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith("control: no canny ControlNet")
    install_resource(runtime.home, "acme/canny", {"format": "diffusers", "role": "controlnet", "base_model": "sd15"},
                     files={p.name: p for p in tiny["controlnet"].iterdir()}, tags=["canny"])
    prepared = studio.prepare(canny)
    assert prepared.pictures.control_model.id == "acme/canny" and prepared.pictures.control_image.size == (64, 64)
    [followed] = studio.generate(prepared).images
    assert np.abs(pixels(opened(studio, followed)) - pixels(opened(studio, plain))).mean() > 1
    [off] = studio.generate({**canny, "control": {**canny["control"], "weight": 0.0}}).images
    assert np.abs(pixels(opened(studio, off)) - pixels(opened(studio, plain))).max() <= 2  # weight 0: no control


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"init_image": "not a picture!"}, UsageError, r"^init_image: expected a gallery image id, a data:image"),
    ({"init_image": base64.b64encode(b"hello").decode()}, UsageError, r"^init_image: not a picture Pillow can read"),
    ({"init_image": "data:image/png,abc"}, UsageError, r"^init_image: a data URL must be base64"),
    ({"init_image": 999}, NotFound, r"^init_image: no picture 999 in the gallery"),
    ({"mask": "1"}, UsageError, r"^mask: needs init_image"),
    ({"init_image": "1", "strength": 0.1}, UsageError, r"^strength: 0.1 × steps 4 leaves no step to draw"),
    ({"control": {"type": "scribble", "image": "1"}}, UsageError, r"^control.type: must be one of canny, pose, depth"),
    ({"control": {"type": "pose", "image": "1", "model": "acme/nothing"}}, ResourceNotAvailable, r"^control.model: "),
    ({"control": {"type": "pose"}}, UsageError, r"^control.image: required"),
])
def test_bad_pictures_are_refused_naming_the_field(studio, change, error, message):
    studio.gallery.add(Image.new("RGB", (64, 64), "grey"), parameters="grey", fields={
        "prompt": "grey", "negative_prompt": "", "model": "m", "model_hash": "0", "seed": 1, "width": 64,
        "height": 64, "steps": 1, "guidance": 1.0, "request": "{}", "batch_index": 0})
    with pytest.raises(error, match=message):
        studio.prepare({**CAT, **change})


def test_a_blocked_picture_is_never_drawn_from(studio):
    row = studio.gallery.add(Image.new("RGB", (64, 64), "grey"), parameters="grey", fields={
        "prompt": "grey", "negative_prompt": "", "model": "m", "model_hash": "0", "seed": 1, "width": 64,
        "height": 64, "steps": 1, "guidance": 1.0, "request": "{}", "batch_index": 0})
    studio.gallery.mark_blocked(row.id, "classifier: nsfw 0.97")
    with pytest.raises(UsageError, match=rf"^init_image: picture {row.id} was blocked by safe mode "
                                         r"\(classifier: nsfw 0.97\)"):
        studio.prepare({**CAT, "init_image": row.id})


def test_a_request_carrying_a_large_picture_is_taken_over_rest(studio, runtime):
    from zishu.web.app import create_app

    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (720, 720, 3), dtype=np.uint8))
    body = {**CAT, "init_image": data_url(noise), "strength": 0.5}
    assert len(str(body)) > 2**20  # past the app's usual 1 MiB body limit
    client = create_app(runtime, "s3cret").test_client()
    answer = client.post("/api/studio/images", json=body, headers={"X-Zishu-Token": "s3cret"})
    assert answer.status_code == 202, answer.json
    assert answer.json["job"]["params"]["init_image"] == body["init_image"]
