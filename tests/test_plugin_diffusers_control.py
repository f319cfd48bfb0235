"""Drawing from pictures with the diffusers engine (plugins/zishu_diffusers/control.py), with the real
diffusers on tiny random pipelines and a tiny random ControlNet: img2img, inpainting with a mask,
canny control computed here, pose/depth pictures used as given, and every refusal naming its field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tiny_diffusers import write_tiny_sd, write_tiny_sdxl
from tiny_postprocess import write_tiny_controlnet
from zishu.engines import ImageRequest, ModelRef
from zishu.errors import EngineError
from zishu_diffusers import DiffusersEngine
from zishu_diffusers.control import control_picture

engine = DiffusersEngine()
CAT = ImageRequest("a cat on a mat", width=64, height=48, steps=4, guidance=5.0, seed=7)


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("control")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "xl": write_tiny_sdxl(folder / "xl"), "controlnet": write_tiny_controlnet(folder / "cn", sd)}


@pytest.fixture(scope="module")
def sd(files):
    handle = engine.load(ModelRef(key=str(files["sd"]), path=files["sd"]))
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def plain(sd):
    return sd.draw(CAT)[0]


def test_the_engine_declares_what_it_draws_from_pictures():
    assert {"img2img", "inpaint", "controlnet"} <= engine.info.capabilities


def test_img2img_starts_from_the_picture_and_strength_says_how_far_it_goes(sd, plain):
    seen = []
    near = sd.draw(replace(CAT, init_image=plain, strength=0.25), progress=lambda *a: seen.append(a))[0]
    far = sd.draw(replace(CAT, init_image=plain, strength=1.0))[0]
    assert near.size == (64, 48) and near.info["seed"] == 7
    assert seen == [(1, 1)]  # strength 0.25 of 4 steps: one step drawn
    assert np.abs(pixels(near) - pixels(plain)).mean() < np.abs(pixels(far) - pixels(plain)).mean()
    # the same request twice is the same picture; a picture of another size is fitted to the request
    assert np.array_equal(pixels(sd.draw(replace(CAT, init_image=plain, strength=0.25))[0]), pixels(near))
    assert sd.draw(replace(CAT, init_image=plain.resize((20, 30)), strength=0.5))[0].size == (64, 48)


def test_inpainting_repaints_only_where_the_mask_is_white(sd, plain):
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))  # the left half
    images = sd.draw(replace(CAT, init_image=plain, mask_image=mask, strength=1.0, batch=2))
    for image in images:
        assert np.array_equal(pixels(image)[:, 32:], pixels(plain)[:, 32:])  # kept exactly
        assert np.abs(pixels(image)[:, :32] - pixels(plain)[:, :32]).mean() > 5  # repainted
    assert [image.info["seed"] for image in images] == [7, 8]
    assert not np.array_equal(pixels(images[0]), pixels(images[1]))


def test_canny_edges_are_found_here_and_pose_or_depth_pictures_are_used_as_given():
    square = Image.new("RGB", (40, 40), "black")
    square.paste((255, 255, 255), (10, 10, 30, 30))
    edges = pixels(control_picture(square, "canny", 40, 40))
    assert edges.shape == (40, 40, 3) and set(np.unique(edges)) == {0, 255}
    assert edges[20, 20].sum() == 0 and edges[0, 0].sum() == 0  # inside and outside: no edge
    assert edges[9:11, 20].max() == 255 and edges[20, 29:31].max() == 255  # the square's sides
    depth = Image.linear_gradient("L").convert("RGB").resize((40, 40))
    assert np.array_equal(pixels(control_picture(depth, "depth", 40, 40)), pixels(depth))
    assert control_picture(depth, "pose", 64, 48).size == (64, 48)


def test_a_controlnet_follows_its_control_picture_and_its_scale(sd, plain, files):
    seen = []
    canny = replace(CAT, control_image=plain, control_kind="canny", control_model=files["controlnet"])
    drawn = sd.draw(canny, progress=lambda *a: seen.append(a))[0]
    assert drawn.size == (64, 48) and seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert np.abs(pixels(drawn) - pixels(plain)).mean() > 1  # the control changed the picture
    off = sd.draw(replace(canny, control_scale=0.0))[0]
    assert np.abs(pixels(off) - pixels(plain)).max() <= 2  # scale 0: as if there were no ControlNet
    other = Image.new("RGB", (64, 48), "white")
    other.paste((0, 0, 0), (16, 8, 48, 40))
    assert not np.array_equal(pixels(sd.draw(replace(canny, control_image=other))[0]), pixels(drawn))
    # a pose picture, and control on top of img2img
    posed = sd.draw(replace(canny, control_kind="pose", init_image=plain, strength=0.5))[0]
    assert posed.size == (64, 48)


def test_a_missing_or_foreign_controlnet_says_what_to_install(sd, plain, files):
    with pytest.raises(EngineError, match=r"pose ControlNet is not installed.*catalog role 'controlnet'.*'pose'"):
        sd.draw(replace(CAT, control_image=plain, control_kind="pose"))
    xl = engine.load(ModelRef(key=str(files["xl"]), path=files["xl"]))
    try:
        with pytest.raises(EngineError, match="made for another base model family"):
            xl.draw(replace(CAT, control_image=plain, control_kind="canny", control_model=files["controlnet"]))
    finally:
        xl.close()
    with pytest.raises(EngineError, match="not a diffusers ControlNet folder"):
        sd.draw(replace(CAT, control_image=plain, control_kind="canny", control_model=files["sd"]))


@pytest.mark.parametrize(("change", "message"), [
    ({"init_image": "cat.png"}, r"ImageRequest.init_image must be a picture"),
    ({"mask_image": Image.new("L", (8, 8))}, r"ImageRequest.mask_image needs ImageRequest.init_image"),
    ({"init_image": Image.new("RGB", (8, 8)), "strength": 0}, r"ImageRequest.strength must be .* above 0"),
    ({"init_image": Image.new("RGB", (8, 8)), "strength": 1.5}, r"ImageRequest.strength"),
    ({"init_image": Image.new("RGB", (8, 8)), "strength": 0.1}, r"leaves no step to draw"),
    ({"control_image": Image.new("RGB", (8, 8)), "control_kind": "scribble"}, r"ImageRequest.control_kind must be"),
    ({"control_image": Image.new("RGB", (8, 8)), "control_kind": "canny", "control_scale": 3},
     r"ImageRequest.control_scale must be"),
])
def test_bad_picture_fields_are_refused_by_name_before_drawing(sd, change, message):
    steps = []
    with pytest.raises(EngineError, match=message):
        sd.draw(replace(CAT, **change), progress=lambda *a: steps.append(a))
    assert steps == []
