"""The spandrel upscaling engine (plugins/zishu_spandrel) with tiny random ESRGANs that spandrel loads from
``.pth`` and ``.safetensors``: the factor read from the weights, tiles that match the whole picture, the
studio choosing it for catalog upscalers in those formats (and ONNX Runtime for ``.onnx``), the gallery's
upscale route, and each refusal naming what was wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import install_resource
from tiny_postprocess import write_tiny_esrgan, write_tiny_upscaler
from zishu.engines import ModelRef, use
from zishu.errors import EngineError
from zishu.studio import postprocess
from zishu_onnx_vision import register_engines as register_onnx
from zishu_spandrel import SpandrelUpscaleEngine
from zishu_spandrel import register_engines as register_spandrel


def ref(path: Path, **spec) -> ModelRef:
    return ModelRef(key=str(path), path=path, spec=spec)


def picture(width: int = 50, height: int = 30, seed: int = 0, alpha: bool = False) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    if alpha:
        image.putalpha(Image.linear_gradient("L").resize((width, height)))
    return image


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("spandrel")
    return {"pth": write_tiny_esrgan(folder / "esrgan-x2.pth"),
            "safetensors": write_tiny_esrgan(folder / "esrgan-x4.safetensors", scale=4, seed=1),
            "onnx": write_tiny_upscaler(folder / "up.onnx")}


def test_the_engine_describes_itself():
    engine = SpandrelUpscaleEngine()
    assert (engine.info.kind, engine.info.name, engine.info.formats) == ("upscale", "spandrel-upscale",
                                                                         ("pytorch", "safetensors"))
    assert engine.unavailable() is None and "cpu" in engine.devices()


def test_pth_and_safetensors_weights_load_with_their_own_factor(models):
    x2 = SpandrelUpscaleEngine().load(ref(models["pth"]))
    x4 = SpandrelUpscaleEngine().load(ref(models["safetensors"]))
    assert (x2.factor, x2.architecture, x4.factor) == (2, "ESRGAN", 4)
    assert x2.upscale(picture()).size == (100, 60)
    assert x4.upscale(picture()).size == (200, 120)
    assert x4.upscale(picture(), scale=2).size == (100, 60)  # another scale resizes the model's result
    drawn = np.asarray(x2.upscale(picture()), np.float32)
    assert drawn.std() > 1  # the random network draws something, not a flat picture
    with_alpha = x2.upscale(picture(alpha=True))
    assert with_alpha.mode == "RGBA" and with_alpha.getchannel("A").getextrema()[1] > 200


def test_tiles_match_the_whole_picture(models):
    whole = SpandrelUpscaleEngine().load(ref(models["pth"]))
    tiled = SpandrelUpscaleEngine().load(ref(models["pth"], tile=16))
    image = picture(64, 40, seed=4)
    a = np.asarray(whole.upscale(image), np.float32)
    b = np.asarray(tiled.upscale(image), np.float32)
    assert a.shape == b.shape == (80, 128, 3)
    # 12 tiles of 16 pixels, each drawn with a 16-pixel margin: the seams do not show
    assert np.abs(a - b).mean() < 1.0, np.abs(a - b).mean()


def test_the_host_loads_it_by_format_through_the_cache(runtime, models):
    register_onnx(runtime.engines.register)
    register_spandrel(runtime.engines.register)
    ready = use(runtime, "upscale", str(models["pth"]))
    assert (ready.engine.info.name, ready.device) == ("spandrel-upscale", "cpu")
    assert use(runtime, "upscale", str(models["pth"])).handle is ready.handle
    assert use(runtime, "upscale", str(models["onnx"])).engine.info.name == "onnx-upscale"


def test_the_studio_upscales_with_an_installed_real_esrgan_model(runtime, models):
    register_onnx(runtime.engines.register)
    register_spandrel(runtime.engines.register)
    install_resource(runtime.home, "acme/esrgan", {"format": "safetensors", "role": "upscale"},
                     files={"RealESRGAN_x4.safetensors": models["safetensors"]})
    assert postprocess.upscale(runtime, picture(40, 24)).size == (160, 96)
    assert use(runtime, "upscale", "acme/esrgan").engine.info.name == "spandrel-upscale"
    install_resource(runtime.home, "acme/onnx-up", {"format": "onnx", "role": "upscale"},
                     files={"up.onnx": models["onnx"]})
    assert use(runtime, "upscale", "acme/onnx-up").engine.info.name == "onnx-upscale"
    assert postprocess.upscale(runtime, picture(40, 24), scale=2, model="acme/onnx-up").size == (80, 48)


def test_the_gallery_upscale_route_uses_it(runtime, models):
    register_onnx(runtime.engines.register)
    register_spandrel(runtime.engines.register)
    install_resource(runtime.home, "acme/esrgan", {"format": "pytorch", "role": "upscale"},
                     files={"RealESRGAN_x2plus.pth": models["pth"]})
    from zishu.web.app import create_app

    client = create_app(runtime, "s3cret").test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    row = runtime.studio.gallery.add(picture(24, 16), parameters="a cat", fields={
        "prompt": "a cat", "negative_prompt": "", "character": None, "model": "acme/tiny-sd@1.0.0",
        "model_hash": "0123456789", "seed": 7, "width": 24, "height": 16, "steps": 4, "guidance": 5.0,
        "request": '{"prompt": "a cat", "seed": 7}', "batch_index": 0})
    answer = client.post(f"/api/studio/gallery/{row.id}/upscale", json={"scale": 2, "model": "acme/esrgan"})
    assert answer.status_code == 201, answer.json
    bigger = answer.json["image"]
    assert bigger["id"] != row.id and (bigger["width"], bigger["height"]) == (48, 32)
    with Image.open(runtime.home / "studio" / bigger["file"]) as png:
        assert png.size == (48, 32) and png.info["parameters"] == "a cat" and np.asarray(png).std() > 1


def test_what_is_not_an_upscaler_is_refused_by_name(models, tmp_path):
    import torch

    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a model")
    with pytest.raises(EngineError, match=r"broken.pth is not a model file spandrel can load"):
        SpandrelUpscaleEngine().load(ref(broken))
    broken_st = tmp_path / "broken.safetensors"
    broken_st.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(EngineError, match=r"broken.safetensors is not a model file spandrel can load"):
        SpandrelUpscaleEngine().load(ref(broken_st))
    strange = tmp_path / "strange.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, strange)
    with pytest.raises(EngineError, match=r"strange.pth holds weights of no architecture spandrel knows"):
        SpandrelUpscaleEngine().load(ref(strange))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EngineError, match=r"expected one .pth/.pt/.safetensors file"):
        SpandrelUpscaleEngine().load(ref(empty))
    with pytest.raises(EngineError, match=r"spec.tile must be a whole number"):
        SpandrelUpscaleEngine().load(ref(models["pth"], tile="big"))
    with pytest.raises(EngineError, match=r"runs on cpu or cuda, not 'tpu'"):
        SpandrelUpscaleEngine().load(ref(models["pth"]), device="tpu")
    x2 = SpandrelUpscaleEngine().load(ref(models["pth"]))
    with pytest.raises(EngineError, match="scale must be a number from 1 to 8"):
        x2.upscale(picture(), scale=0.5)
    with pytest.raises(EngineError, match="would pass 16384 pixels a side"):
        x2.upscale(Image.new("RGB", (9000, 8)))
    x2.close()
    with pytest.raises(EngineError, match="was unloaded"):
        x2.upscale(picture())
