"""The ONNX post-processing engines (plugins/zishu_onnx_vision) with the real onnxruntime, on a tiny
random upscaler and segmenter that ``tiny_postprocess`` writes with ``onnx``: the factor read from the
model, tiles that do not show, alpha kept, fixed-size and any-size segmenters, the host's path to them
and every refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tiny_postprocess import write_tiny_segmenter, write_tiny_upscaler
from zishu.engines import ModelRef, use
from zishu.errors import EngineError
from zishu_onnx_vision import BackgroundEngine, UpscaleEngine, register_engines


def ref(path: Path, **spec) -> ModelRef:
    return ModelRef(key=str(path), path=path, format="onnx", spec=spec)


def picture(width: int = 50, height: int = 30, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx-vision")
    return {"x2": write_tiny_upscaler(folder / "x2" / "tiny-x2.onnx", scale=2),
            "x4": write_tiny_upscaler(folder / "x4.onnx", scale=4, seed=1),
            "segmenter": write_tiny_segmenter(folder / "seg" / "tiny-seg.onnx", side=32),
            "any_size": write_tiny_segmenter(folder / "any.onnx", side=None, seed=1)}


def test_the_engines_describe_themselves():
    up, cut = UpscaleEngine(), BackgroundEngine()
    assert (up.info.kind, up.info.name, up.info.formats) == ("upscale", "onnx-upscale", ("onnx",))
    assert (cut.info.kind, cut.info.name, cut.info.formats) == ("background", "onnx-background", ("onnx",))
    assert up.unavailable() is None and cut.unavailable() is None
    assert up.devices()[0] == "cpu"


def test_the_factor_is_read_from_the_model_and_tiles_do_not_show(models):
    x2, x4 = UpscaleEngine().load(ref(models["x2"])), UpscaleEngine().load(ref(models["x4"]))
    assert (x2.factor, x4.factor) == (2, 4)
    source = picture(50, 30)
    whole = x2.upscale(source)
    assert (whole.size, whole.mode) == ((100, 60), "RGB")
    assert x4.upscale(source).size == (200, 120)
    tiled = UpscaleEngine().load(ref(models["x2"], tile=8))  # 50×30 in 8-pixel tiles: 28 windows
    assert tiled.window < 50
    assert np.array_equal(np.asarray(tiled.upscale(source)), np.asarray(whole))
    # the model did the work: not a plain resize of the picture
    plain = np.asarray(source.resize((100, 60), Image.Resampling.NEAREST)).astype(int)
    assert np.abs(np.asarray(whole).astype(int) - plain).mean() > 1


def test_another_scale_resizes_the_result_and_alpha_is_kept(models):
    x2 = UpscaleEngine().load(ref(models["x2"]))
    assert x2.upscale(picture(), scale=3).size == (150, 90)
    assert x2.upscale(picture(), scale=1.5).size == (75, 45)
    rgba = picture().convert("RGBA")
    half = Image.new("L", rgba.size, 0)
    half.paste(255, (0, 0, 25, 30))
    rgba.putalpha(half)
    big = x2.upscale(rgba)
    assert big.mode == "RGBA" and big.size == (100, 60)
    alpha = np.asarray(big.getchannel("A")).astype(int)
    assert alpha[:, :45].min() > 200 and alpha[:, 55:].max() < 50


def test_background_removal_puts_the_mask_in_alpha(models):
    remover = BackgroundEngine().load(ref(models["segmenter"]))
    assert remover.side == (32, 32)  # fixed by the model
    source = picture(50, 30)
    cut = remover.remove_background(source)
    assert (cut.size, cut.mode) == ((50, 30), "RGBA")
    assert np.array_equal(np.asarray(cut)[..., :3], np.asarray(source))  # colours untouched
    alpha = np.asarray(cut.getchannel("A"))
    assert np.array_equal(alpha, np.asarray(remover.mask(source)))
    assert alpha.std() > 5  # a real mask, not all one value
    # a picture that already had alpha keeps it where it was clear
    clear = source.convert("RGBA")
    clear.putalpha(Image.new("L", source.size, 0))
    assert np.asarray(remover.remove_background(clear).getchannel("A")).max() == 0


def test_a_segmenter_of_any_size_uses_the_manifests_size(models):
    remover = BackgroundEngine().load(ref(models["any_size"], size=48))
    assert remover.side == (48, 48)
    assert remover.remove_background(picture(20, 60)).size == (20, 60)
    assert BackgroundEngine().load(ref(models["any_size"])).side == (1024, 1024)


def test_the_host_loads_them_by_kind_through_the_cache(runtime, models):
    register_engines(runtime.engines.register)
    ready = use(runtime, "upscale", str(models["x2"]))
    assert (ready.engine.info.name, ready.device) == ("onnx-upscale", "cpu")
    assert ready.handle.upscale(picture()).size == (100, 60)
    assert use(runtime, "upscale", str(models["x2"])).handle is ready.handle
    cut = use(runtime, "background", str(models["segmenter"])).handle
    assert cut.remove_background(picture()).mode == "RGBA"


def test_what_is_not_an_upscaler_or_a_segmenter_is_refused_by_name(models, tmp_path):
    with pytest.raises(EngineError, match=r"\[1, 1, 40, 40\], not a 3-channel picture a whole number of times larger"):
        UpscaleEngine().load(ref(models["any_size"]))
    with pytest.raises(EngineError, match=r"\[1, 32, 32\], not a 16×16 mask; is this a segmentation model"):
        BackgroundEngine().load(ref(models["x2"], size=16)).remove_background(picture())
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(EngineError, match=r"broken.onnx is not an ONNX model onnxruntime can run"):
        UpscaleEngine().load(ref(broken))
    with pytest.raises(EngineError, match=r"spec.tile must be a whole number"):
        UpscaleEngine().load(ref(models["x2"], tile="big"))
    x2 = UpscaleEngine().load(ref(models["x2"]))
    with pytest.raises(EngineError, match="scale must be a number from 1 to 8"):
        x2.upscale(picture(), scale=0.5)
    with pytest.raises(EngineError, match="would pass 16384 pixels a side"):
        x2.upscale(Image.new("RGB", (9000, 8)))
    with pytest.raises(EngineError, match="cuda was asked for, but this onnxruntime has no CUDA"):
        UpscaleEngine().load(ref(models["x2"]), device="cuda")
