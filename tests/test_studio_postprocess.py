"""The studio's control and post-processing (host/zishu/studio/postprocess.py) with installed tiny models:
what each capability needs and says to install, upscaling and background removal by catalog role, the
ControlNet found for a model's family and drawn with, and PNG/WebP/JPEG files that carry A1111's
``parameters`` the way A1111 writes them."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import install_resource
from tiny_diffusers import write_tiny_sd
from tiny_postprocess import write_tiny_controlnet, write_tiny_segmenter, write_tiny_upscaler
from zishu.engines import ImageRequest, resolve_model, use
from zishu.errors import ResourceNotAvailable, UsageError
from zishu.studio import postprocess
from zishu_onnx_vision import register_engines

PARAMETERS = ("a cat on a mat, 猫\nNegative prompt: dogs\n"
              "Steps: 4, Sampler: Euler, CFG scale: 5, Seed: 7, Size: 64x48, Model: acme/tiny-sd")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio-post")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "controlnet": write_tiny_controlnet(folder / "cn", sd),
            "upscaler": write_tiny_upscaler(folder / "up.onnx"), "segmenter": write_tiny_segmenter(folder / "seg.onnx")}


@pytest.fixture
def studio(runtime, models):
    register_engines(runtime.engines.register)
    install_resource(runtime.home, "acme/tiny-sd", {"format": "diffusers", "role": "image", "base_model": "sd15"},
                     files={p.name: p for p in models["sd"].iterdir()})
    return runtime


def picture(width: int = 40, height: int = 24) -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_capabilities_say_what_to_install_until_it_is(studio, models):
    sd = resolve_model("acme/tiny-sd", studio.registry)
    found = postprocess.capabilities(studio.engines, studio.registry, sd)
    assert list(found) == list(postprocess.CAPABILITIES)
    assert all(found[name].ok for name in ("img2img", "inpaint", "png", "jpeg"))
    assert found["img2img"].message == "drawn by the diffusers engine"
    canny = found["controlnet_canny"]
    assert not canny.ok and "role 'controlnet'" in canny.message and "acme/tiny-sd or sd15" in canny.message
    assert canny.install is None  # no catalog given: nothing to suggest
    assert "role 'upscale'" in found["upscale"].message and "role 'background'" in found["background"].message
    assert postprocess.capabilities(studio.engines, studio.registry)["controlnet_pose"].message == \
        "choose an image model first"
    install_resource(studio.home, "acme/canny", {"format": "diffusers", "role": "controlnet", "base_model": "sd15"},
                     files={p.name: p for p in models["controlnet"].iterdir()}, tags=["canny"])
    install_resource(studio.home, "acme/up", {"format": "onnx", "role": "upscale"},
                     files={"up.onnx": models["upscaler"]})
    install_resource(studio.home, "acme/cut", {"format": "onnx", "role": "background"},
                     files={"seg.onnx": models["segmenter"]})
    found = postprocess.capabilities(studio.engines, studio.registry, sd)
    assert [(found[k].ok, found[k].message) for k in ("controlnet_canny", "upscale", "background")] == [
        (True, "acme/canny@1.0.0"), (True, "acme/up@1.0.0"), (True, "acme/cut@1.0.0")]
    assert not found["controlnet_pose"].ok and "tagged 'pose'" in found["controlnet_pose"].message
    assert found["upscale"].as_dict() == {"ok": True, "message": "acme/up@1.0.0", "install": None}


def test_a_controlnet_is_found_for_the_models_family_and_drawn_with(studio, models):
    sd = resolve_model("acme/tiny-sd", studio.registry)
    with pytest.raises(ResourceNotAvailable, match="no canny ControlNet is installed for acme/tiny-sd"):
        postprocess.controlnet_model(studio, sd, "canny")
    install_resource(studio.home, "acme/xl-canny", {"format": "diffusers", "role": "controlnet", "base_model": "sdxl"},
                     files={p.name: p for p in models["controlnet"].iterdir()}, tags=["canny"])
    assert postprocess.controlnet_for(studio.registry, sd, "canny") is None  # another family
    install_resource(studio.home, "acme/any-control", {"format": "diffusers", "role": "controlnet",
                                                       "base_model": "acme/tiny-sd"},
                     files={p.name: p for p in models["controlnet"].iterdir()})
    control = postprocess.controlnet_model(studio, sd, "depth")
    assert control.id == "acme/any-control"
    with pytest.raises(UsageError, match="control_kind must be one of canny, pose, depth"):
        postprocess.controlnet_for(studio.registry, sd, "scribble")
    drawer = use(studio, "image", "acme/tiny-sd").handle
    request = ImageRequest("a cat", width=64, height=48, steps=2, seed=7)
    plain = drawer.draw(request)[0]
    followed = drawer.draw(replace(request, control_image=picture(), control_kind="depth", control_model=control))[0]
    assert followed.size == (64, 48) and not np.array_equal(np.asarray(followed), np.asarray(plain))


def test_upscale_and_background_removal_use_the_installed_model_of_their_role(studio, models):
    with pytest.raises(ResourceNotAvailable, match="no upscale model is installed: install an upscaler"):
        postprocess.upscale(studio, picture())
    with pytest.raises(ResourceNotAvailable, match="no background model is installed"):
        postprocess.remove_background(studio, picture())
    install_resource(studio.home, "acme/up", {"format": "onnx", "role": "upscale"},
                     files={"up.onnx": models["upscaler"]})
    install_resource(studio.home, "acme/cut", {"format": "onnx", "role": "background"},
                     files={"seg.onnx": models["segmenter"]})
    assert postprocess.upscale(studio, picture()).size == (80, 48)
    assert postprocess.upscale(studio, picture(), scale=3, model="acme/up").size == (120, 72)
    cut = postprocess.remove_background(studio, picture())
    assert (cut.mode, cut.size) == ("RGBA", (40, 24))


def test_png_keeps_alpha_and_the_parameters_text_chunk():
    image = picture().convert("RGBA")
    image.putalpha(128)
    data = postprocess.encode(image, "png", parameters=PARAMETERS)
    back = Image.open(io.BytesIO(data))
    assert back.format == "PNG" and back.mode == "RGBA"
    assert back.text["parameters"] == PARAMETERS  # what A1111, Civitai and ComfyUI read
    assert np.array_equal(np.asarray(back), np.asarray(image))
    assert postprocess.read_parameters(data) == PARAMETERS


@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_webp_and_jpeg_carry_the_parameters_in_exif_user_comment(fmt):
    image = picture().convert("RGBA")
    image.putalpha(0)  # fully clear: JPEG shows the white it is flattened onto
    data = postprocess.encode(image, fmt, quality=95, parameters=PARAMETERS)
    back = Image.open(io.BytesIO(data))
    assert back.format == fmt.upper()
    comment = back.getexif().get_ifd(0x8769)[0x9286]
    assert comment == b"UNICODE\0" + PARAMETERS.encode("utf-16-be")  # piexif's UserComment.dump(encoding="unicode")
    assert postprocess.read_parameters(data) == PARAMETERS
    if fmt == "jpeg":
        assert back.mode == "RGB" and np.asarray(back).min() > 240
    else:
        assert back.mode == "RGBA" and np.asarray(back.getchannel("A")).max() == 0


def test_quality_changes_the_size_and_bad_choices_are_refused_by_name():
    image = picture(200, 120)
    assert len(postprocess.encode(image, "jpeg", quality=20)) < len(postprocess.encode(image, "jpeg", quality=95))
    assert postprocess.read_parameters(postprocess.encode(image, "webp")) is None
    assert Image.open(io.BytesIO(postprocess.encode(image, "JPG"))).format == "JPEG"
    with pytest.raises(UsageError, match="format must be one of png, webp, jpeg, got 'gif'"):
        postprocess.encode(image, "gif")
    with pytest.raises(UsageError, match="quality must be a whole number from 1 to 100, got 0"):
        postprocess.encode(image, "webp", quality=0)
